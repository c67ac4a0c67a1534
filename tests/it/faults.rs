//! Faults under load: every payment answered 2xx ends up published exactly
//! once, whatever dies and whenever.

use std::{collections::HashMap, time::Duration};

use payhook::app::Role;

use crate::harness::{config, stripe_payment_intent, Gateway, Load, RedisServer, Sent, TestApp};

/// Published events per payment id, across `partitions`.
async fn published(redis: &RedisServer, partitions: u32) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for partition in 0..partitions {
        for event in redis.events(partition).await {
            *counts.entry(event["data"]["paymentId"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Asserts the promise: no payment twice, none answered 2xx missing.
fn assert_exactly_once(outcomes: &[Sent], counts: &HashMap<String, usize>) -> (usize, usize) {
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
    let acknowledged: Vec<&Sent> =
        outcomes.iter().filter(|s| s.status.is_some_and(|c| (200..300).contains(&c))).collect();
    let missing: Vec<_> = acknowledged.iter().filter(|s| !counts.contains_key(&s.payment_id)).collect();
    assert!(
        missing.is_empty(),
        "{} payments answered 2xx are missing: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    (acknowledged.len(), outcomes.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_under_load_loses_no_acknowledged_payment() {
    let redis = RedisServer::start_aof();
    let mut reclaiming = config(&redis);
    reclaiming.processing.visibility_timeout_secs = 1;
    let mut gateway = Gateway::start(reclaiming).await;
    let load = Load::start(gateway.base.clone(), 8, Duration::from_millis(2), "k9");
    load.until_sent(300).await;

    gateway.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.restart().await;
    load.until_sent(load.sent.load(std::sync::atomic::Ordering::Relaxed) + 300).await;
    let outcomes = load.stop().await;
    redis.wait_processed().await;

    let (acknowledged, total) = assert_exactly_once(&outcomes, &published(&redis, 1).await);
    let refused = outcomes.iter().filter(|s| s.status.is_none()).count();
    assert!(acknowledged >= 500 && refused >= 1, "{acknowledged} acknowledged, {refused} refused of {total}");
    eprintln!(
        "kill -9 gateway: {total} sent, {acknowledged} acknowledged, {refused} without answer, all published once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sigkill_mid_load_gets_503s_never_2xx_and_loses_nothing_acknowledged() {
    let redis = RedisServer::start_aof();
    let mut config = config(&redis);
    config.server.request_timeout_ms = 1_000;
    let mut app = TestApp::spawn_on(redis, config, Role::All).await;
    let load = Load::start(app.base.clone(), 8, Duration::from_millis(2), "rk");
    load.until_sent(300).await;

    app.redis.kill();
    let during = load.sent.load(std::sync::atomic::Ordering::Relaxed);
    load.until_sent(during + 100).await;
    app.redis.restart();
    load.until_sent(load.sent.load(std::sync::atomic::Ordering::Relaxed) + 300).await;
    let outcomes = load.stop().await;
    app.wait_processed().await;

    let statuses: std::collections::BTreeSet<Option<u16>> = outcomes.iter().map(|s| s.status).collect();
    assert!(statuses.iter().all(|s| matches!(s, Some(200) | Some(503))), "only 200 or 503: {statuses:?}");
    let unavailable = outcomes.iter().filter(|s| s.status == Some(503)).count();
    assert!(unavailable >= 50, "requests during the outage got 503: {unavailable}");
    let (acknowledged, total) = assert_exactly_once(&outcomes, &published(&app.redis, 1).await);
    eprintln!("redis SIGKILL: {total} sent, {acknowledged} acknowledged, {unavailable} answered 503, all acknowledged published once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_requests_and_loses_nothing() {
    let redis = RedisServer::start_aof();
    let mut gateway = Gateway::start(config(&redis)).await;
    let load = Load::start(gateway.base.clone(), 8, Duration::from_millis(2), "st");
    load.until_sent(300).await;

    let status = gateway.sigterm(Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "a graceful exit, in time");
    let outcomes = load.stop().await;
    // Whatever was acknowledged before the exit is processed by the next gateway.
    gateway.restart().await;
    redis.wait_processed().await;

    let (acknowledged, total) = assert_exactly_once(&outcomes, &published(&redis, 1).await);
    let odd: Vec<_> = outcomes.iter().filter(|s| s.status.is_some_and(|c| c != 200)).collect();
    assert!(odd.is_empty(), "in-flight requests completed normally: {:?}", &odd[..odd.len().min(5)]);
    eprintln!("SIGTERM: {total} sent, {acknowledged} acknowledged before the exit, all published once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_storm_under_load_gives_one_event_and_a_conflict_goes_to_the_dlq() {
    let app = TestApp::spawn_with(Role::All, |c| c.redis.partitions = std::num::NonZeroU32::new(4).unwrap()).await;
    let load = Load::start(app.base.clone(), 4, Duration::from_millis(2), "ds");
    let storm = serde_json::to_vec(&stripe_payment_intent("evt_storm", "pi_storm", 4200, "eur")).unwrap();
    let copies = (0..200).map(|_| app.post_stripe(&storm));
    let statuses: Vec<u16> = futures::future::join_all(copies).await.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200));
    let conflict = serde_json::to_vec(&stripe_payment_intent("evt_storm2", "pi_storm", 4201, "eur")).unwrap();
    assert_eq!(app.post_stripe(&conflict).await.status(), 200);
    let outcomes = load.stop().await;
    app.wait_processed().await;

    let counts = published(&app.redis, 4).await;
    assert_eq!(counts.get("pi_storm"), Some(&1));
    assert_exactly_once(&outcomes, &counts);
    let dlq = app.entries("payhook:dlq").await;
    let reasons: Vec<String> = dlq.iter().map(|e| e.get::<String>("reason").unwrap()).collect();
    assert_eq!(reasons, ["idempotency_conflict"]);
    let metrics = app.metrics().await;
    assert_eq!(crate::harness::metric(&metrics, "payhook_duplicates_total{source=\"stripe\"}"), 199.0);
    assert_eq!(crate::harness::metric(&metrics, "payhook_idempotency_conflicts_total{source=\"stripe\"}"), 1.0);
}

#[tokio::test]
async fn acknowledged_arrivals_are_trimmed_by_age() {
    // Processors run: they acknowledge (here: dead-letter) what they read,
    // and their maintenance task trims it once past the retention.
    let app = TestApp::spawn().await;
    let mut conn = app.redis.conn().await;
    // 300 arrivals "from long ago" fill whole stream nodes, which `MINID ~` can drop.
    for i in 0..300 {
        let _: String = redis::cmd("XADD")
            .arg("payhook:arrivals")
            .arg(format!("{}-0", 1_000 + i))
            .arg("f")
            .arg("v")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let body = serde_json::to_vec(&stripe_payment_intent("evt_t", "pi_t", 1, "eur")).unwrap();
    let response = app.post_stripe(&body).await;
    let recent = response.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut len = u64::MAX;
    while len >= 300 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        len = redis::cmd("XLEN").arg("payhook:arrivals").query_async(&mut conn).await.unwrap();
    }
    assert!(len < 300, "old acknowledged arrivals were trimmed: {len} left");
    let ids: Vec<String> = app.entries("payhook:arrivals").await.into_iter().map(|e| e.id).collect();
    assert!(ids.contains(&recent), "the recent arrival is kept");
}
