//! Keeping the arrivals stream and its group tidy without losing anything:
//! trimming spares every arrival not yet acknowledged, parked retries wait
//! for their backoff, and consumers of stopped gateways are removed.

use std::{
    collections::HashSet,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use payhook::{app::Role, config::Config};
use redis::{aio::MultiplexedConnection, streams::StreamInfoConsumersReply, AsyncCommands};

use crate::harness::{config, metric, stripe_payment_intent, Gateway, Load, RedisServer, Running, Sent, TestApp};

const ARRIVALS: &str = "payhook:arrivals";
const EVENTS: &str = "payhook:events:payment.succeeded.v1:{0}";
const GROUP: &str = "processors";

/// A short retention, with a retry schedule that fits inside it.
fn short_retention(config: &mut Config) {
    config.processing.retry_base_ms = 100;
    config.processing.arrival_retention_secs = 2;
    config.processing.retry_max_ms = 400;
}
const RETENTION: Duration = Duration::from_secs(2);

fn payment(id: &str) -> Vec<u8> {
    serde_json::to_vec(&stripe_payment_intent(&format!("evt_{id}"), id, 1000, "eur")).unwrap()
}

fn acknowledged(outcomes: &[Sent]) -> HashSet<String> {
    outcomes.iter().filter(|s| s.status == Some(200)).map(|s| s.payment_id.clone()).collect()
}

/// Waits (bounded) until the event stream holds `n` events; the caller asserts.
async fn wait_published(redis: &RedisServer, n: usize) {
    let mut conn = redis.conn().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if conn.xlen::<_, usize>(EVENTS).await.unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Payment ids of every published event.
async fn published(redis: &RedisServer) -> HashSet<String> {
    redis.events(0).await.iter().map(|e| e["data"]["paymentId"].as_str().unwrap().to_owned()).collect()
}

/// A processor read the oldest undelivered arrival and died.
async fn crashed_processor_reads(conn: &mut MultiplexedConnection, consumer: &str) {
    let created: redis::RedisResult<()> =
        redis::cmd("XGROUP").arg("CREATE").arg(ARRIVALS).arg(GROUP).arg("0").arg("MKSTREAM").query_async(conn).await;
    assert!(created.is_ok() || created.is_err_and(|e| e.code() == Some("BUSYGROUP")));
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(ARRIVALS)
        .arg(">")
        .query_async(conn)
        .await
        .unwrap();
}

async fn consumers(conn: &mut MultiplexedConnection) -> HashSet<String> {
    let reply: StreamInfoConsumersReply = conn.xinfo_consumers(ARRIVALS, GROUP).await.unwrap_or_default();
    reply.consumers.into_iter().map(|c| c.name).collect()
}

/// Waits until `n` consumers not in `known` exist, and returns them.
async fn new_consumers(conn: &mut MultiplexedConnection, known: &HashSet<String>, n: usize) -> HashSet<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh: HashSet<String> = consumers(conn).await.difference(known).cloned().collect();
        if fresh.len() >= n {
            return fresh;
        }
        assert!(Instant::now() < deadline, "{n} new consumers never appeared: {fresh:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_stored_while_every_processor_is_down_past_retention_are_all_published() {
    // Arrange: only the ingress runs, with a short retention.
    let ingress = TestApp::spawn_with(Role::Ingress, short_retention).await;
    let load = Load::start(ingress.base.clone(), 4, Duration::from_millis(2), "down");
    load.until_sent(300).await;

    // Act: more arrive after the first ones are older than the retention,
    // then the processors come back.
    tokio::time::sleep(RETENTION + Duration::from_millis(500)).await;
    load.until_sent(load.sent.load(Ordering::Relaxed) + 100).await;
    let outcomes = load.stop().await;
    let mut processing = config(&ingress.redis);
    short_retention(&mut processing);
    let _processors = Running::start(processing, Role::Processor).await;
    let acknowledged = acknowledged(&outcomes);
    wait_published(&ingress.redis, acknowledged.len()).await;

    // Assert: every payment answered 2xx is published.
    let published = published(&ingress.redis).await;
    let missing: Vec<&String> = acknowledged.difference(&published).collect();
    assert!(
        missing.is_empty(),
        "{} of {} payments answered 2xx were never published: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arrival_held_by_a_crashed_processor_outlives_the_retention_and_is_published() {
    // Arrange: a processor read a payment and died; it stays pending until
    // the visibility timeout, longer than the retention.
    let visible_past_retention = |c: &mut Config| {
        short_retention(c);
        c.processing.visibility_timeout_secs = 4;
    };
    let ingress = TestApp::spawn_with(Role::Ingress, visible_past_retention).await;
    assert_eq!(ingress.post_stripe(&payment("pi_held")).await.status(), 200);
    let mut conn = ingress.redis.conn().await;
    crashed_processor_reads(&mut conn, "crashed").await;

    // Act: processors run (and trim) while payments keep arriving past the retention.
    let mut processing = config(&ingress.redis);
    visible_past_retention(&mut processing);
    let _processors = Running::start(processing, Role::Processor).await;
    let load = Load::start(ingress.base.clone(), 2, Duration::from_millis(2), "live");
    tokio::time::sleep(RETENTION + Duration::from_secs(1)).await;
    let outcomes = load.stop().await;
    let mut expected = acknowledged(&outcomes);
    expected.insert("pi_held".to_owned());
    wait_published(&ingress.redis, expected.len()).await;

    // Assert
    let published = published(&ingress.redis).await;
    assert!(published.contains("pi_held"), "the held arrival was trimmed before it was reclaimed");
    assert_eq!(expected.difference(&published).count(), 0, "every acknowledged payment is published");
}

#[tokio::test]
async fn the_backlog_age_counts_arrivals_no_processor_has_read() {
    // Arrange: no processor has ever run.
    let app = TestApp::ingress().await;
    assert_eq!(app.post_stripe(&payment("pi_waiting")).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // Act
    let before_any_group = metric(&app.metrics().await, "payhook_backlog_oldest_age_seconds");
    // Processors ran once (the group exists) and are all down now.
    let mut conn = app.redis.conn().await;
    let _: () =
        redis::cmd("XGROUP").arg("CREATE").arg(ARRIVALS).arg(GROUP).arg("0").query_async(&mut conn).await.unwrap();
    let with_a_group = metric(&app.metrics().await, "payhook_backlog_oldest_age_seconds");

    // Assert
    assert!(before_any_group >= 1.0, "oldest unprocessed arrival with no group: {before_any_group}s");
    assert!(with_a_group >= 1.0, "oldest undelivered arrival: {with_a_group}s");
}

#[tokio::test]
async fn a_reclaimed_arrival_that_no_longer_exists_is_logged_and_counted_as_lost() {
    // Arrange: a processor read an arrival and died; then the entry was
    // deleted from the stream (an operator's XDEL, an older payhook's trim).
    let redis = RedisServer::start();
    let mut conn = redis.conn().await;
    let body = payment("pi_gone");
    let id: String = conn.xadd(ARRIVALS, "*", &[("body", body.as_slice())]).await.unwrap();
    crashed_processor_reads(&mut conn, "crashed").await;
    let _: u64 = conn.xdel(ARRIVALS, &[&id]).await.unwrap();

    // Act: a gateway reclaims it after the visibility timeout.
    let mut reclaiming = config(&redis);
    reclaiming.processing.visibility_timeout_secs = 1;
    let gateway = Gateway::start_logged(reclaiming).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut lost = 0.0;
    while lost < 1.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = reqwest::get(format!("{}/metrics", gateway.admin)).await.unwrap().text().await.unwrap();
        lost = metric(&text, "payhook_arrivals_lost_total");
    }

    // Assert
    assert_eq!(lost, 1.0, "the lost arrival is counted once");
    let log = gateway.log();
    let line = log.lines().find(|l| l.contains(&id)).unwrap_or_default();
    assert!(line.contains("lost"), "the lost arrival is logged by id: {line}");
    assert!(!log.contains("pi_gone"), "no payload in the log");
    let pending: redis::streams::StreamPendingReply = conn.xpending(ARRIVALS, GROUP).await.unwrap();
    assert_eq!(pending.count(), 0, "no longer pending");
}

/// Deliveries a failing arrival can have had `elapsed` after it was stored:
/// delivery n+1 comes at the earliest half of `base·2^(n-1)` after delivery n.
fn deliveries_allowed(elapsed: Duration, base: Duration) -> u32 {
    let (mut deliveries, mut earliest) = (1, Duration::ZERO);
    loop {
        earliest += base * 2u32.pow(deliveries - 1) / 2;
        if earliest > elapsed {
            return deliveries;
        }
        deliveries += 1;
    }
}

#[tokio::test]
async fn a_parked_arrival_waits_for_its_backoff_even_past_the_visibility_timeout() {
    // Arrange: a visibility timeout much shorter than the backoff, and a key
    // of the wrong type where events go, so every publish fails inside Redis.
    let base = Duration::from_secs(4);
    let app = TestApp::spawn_with(Role::All, |c| {
        c.processing.visibility_timeout_secs = 1;
        c.processing.retry_base_ms = 4_000;
        c.processing.max_attempts = std::num::NonZeroU32::new(5).unwrap();
    })
    .await;
    let mut conn = app.redis.conn().await;
    let _: () = conn.set(EVENTS, "not a stream").await.unwrap();
    assert_eq!(app.post_stripe(&payment("pi_backoff")).await.status(), 200);
    let stored = Instant::now();

    // Act
    tokio::time::sleep(Duration::from_secs(5)).await;
    let attempts = metric(&app.metrics().await, "payhook_processing_attempts_total{source=\"stripe\"}");
    let allowed = deliveries_allowed(stored.elapsed(), base);

    // Assert: no more attempts than the backoff allows, and none dead-lettered.
    assert!(attempts >= 1.0, "it was tried");
    assert!(attempts <= f64::from(allowed), "{attempts} attempts, the backoff allows {allowed}");
    assert!(app.entries("payhook:dlq").await.is_empty(), "max_attempts is not used up early");
    // Publishing works again: the next due retry publishes it.
    let _: () = conn.del(EVENTS).await.unwrap();
    wait_published(&app.redis, 1).await;
    assert_eq!(published(&app.redis).await, HashSet::from(["pi_backoff".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_of_stopped_gateways_are_removed_but_retry_and_consumers_holding_arrivals_stay() {
    // Arrange: a crashed processor holds an arrival; the retry pseudo-consumer exists.
    let redis = RedisServer::start();
    let mut conn = redis.conn().await;
    let _: String = conn.xadd(ARRIVALS, "*", &[("f", "v")]).await.unwrap();
    crashed_processor_reads(&mut conn, "crashed-host-1-0").await;
    let _: u8 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(ARRIVALS)
        .arg(GROUP)
        .arg("retry")
        .query_async(&mut conn)
        .await
        .unwrap();
    let kept: HashSet<String> = consumers(&mut conn).await;
    let mut config = config(&redis);
    config.processing.visibility_timeout_secs = 600;
    config.processing.idle_consumer_secs = 3;

    // Act: the gateway is restarted twice on the same Redis.
    let mut gateway = Gateway::start(config).await;
    let mut seen = kept.clone();
    let mut current = HashSet::new();
    for run in 0..3 {
        current = new_consumers(&mut conn, &seen, 2).await;
        seen.extend(current.iter().cloned());
        if run < 2 {
            assert!(gateway.sigterm(Duration::from_secs(20)).is_some(), "a graceful exit");
            gateway.restart().await;
        }
    }
    let stopped: HashSet<String> =
        seen.iter().filter(|n| !kept.contains(*n) && !current.contains(*n)).cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = consumers(&mut conn).await;
    while !left.is_disjoint(&stopped) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = consumers(&mut conn).await;
    }

    // Assert
    assert_eq!(seen.len(), kept.len() + 6, "every run's consumers have new names: {seen:?}");
    assert!(left.is_disjoint(&stopped), "the stopped gateways' consumers are removed: {left:?}");
    assert!(left.is_superset(&kept), "retry and the consumer holding an arrival stay: {left:?}");
    // (A live consumer idle that long may go too, holding nothing: Redis 7.0
    // counts only deliveries as activity. Its next read creates it again.)
    assert!(left.is_subset(&kept.union(&current).cloned().collect()), "{left:?}");
}

#[tokio::test]
async fn two_apps_in_one_process_use_different_consumer_names() {
    let (a, b) = (TestApp::spawn().await, TestApp::spawn().await);
    let none = HashSet::new();
    let names_a = new_consumers(&mut a.redis.conn().await, &none, 2).await;
    let names_b = new_consumers(&mut b.redis.conn().await, &none, 2).await;
    assert!(names_a.is_disjoint(&names_b), "{names_a:?} and {names_b:?}");
    let pid = std::process::id().to_string();
    assert!(names_a.iter().all(|n| n.contains(&pid)), "names tell the process: {names_a:?}");
}
