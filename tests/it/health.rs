//! `/healthz`, `/readyz` and `/metrics`.

use payhook::app::Role;

use crate::harness::{config, metric, source, RedisServer, TestApp};

#[tokio::test]
async fn readiness_follows_redis_and_liveness_does_not() {
    let mut app = TestApp::spawn().await;
    for base in [&app.base, &app.admin] {
        assert_eq!(app.http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(app.http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    }
    app.redis.kill();
    for base in [&app.base, &app.admin] {
        assert_eq!(app.http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(app.http.get(format!("{base}/readyz")).send().await.unwrap().status(), 503);
    }
}

#[tokio::test]
async fn metrics_count_arrivals_and_publications() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&crate::harness::stripe_payment_intent("evt_m", "pi_m", 100, "eur")).unwrap();
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    app.wait_processed().await;
    let text = app.metrics().await;
    assert_eq!(metric(&text, "payhook_arrivals_total{source=\"stripe\",outcome=\"accepted\"}"), 2.0);
    assert_eq!(metric(&text, "payhook_events_published_total{source=\"stripe\",type=\"payment.succeeded.v1\"}"), 1.0);
    assert_eq!(metric(&text, "payhook_duplicates_total{source=\"stripe\"}"), 1.0);
    assert!(text.contains("payhook_ingest_duration_seconds_count 2"), "{text}");
    assert!(text.contains("payhook_end_to_end_seconds_count 1"), "{text}");
    assert_eq!(metric(&text, "payhook_processing_attempts_total{source=\"stripe\"}"), 2.0);
    assert_eq!(metric(&text, "payhook_secret_matches_total{source=\"stripe\",secret_index=\"0\"}"), 2.0);
    for gauge in [
        "payhook_backlog_pending 0",
        "payhook_backlog_lag 0",
        "payhook_dlq_size 0",
        "payhook_backlog_oldest_age_seconds 0",
    ] {
        assert!(text.contains(gauge), "{gauge} in {text}");
    }
    assert_eq!(app.post_stripe(b"not json").await.status(), 200);
    app.wait_processed().await;
    let text = app.metrics().await;
    assert!(text.contains("payhook_dlq_size 1"), "the DLQ gauge is read at scrape time");
    assert_eq!(metric(&text, "payhook_dead_lettered_total{source=\"stripe\",reason=\"unparseable_payload\"}"), 1.0);
    for series in
        ["payhook_idempotency_conflicts_total{source=\"stripe\"} 0", "payhook_ignored_total{source=\"dodo\"} 0"]
    {
        assert!(text.contains(series), "{series} is exported at zero before any event");
    }
}

#[tokio::test]
async fn readiness_says_how_durable_redis_is() {
    let volatile = TestApp::ingress().await;
    let body: serde_json::Value =
        volatile.http.get(format!("{}/readyz", volatile.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["durability"]["appendonly"], "no");
    assert_eq!(body["durability"]["can_lose_acknowledged"], true);

    let redis = RedisServer::start_aof();
    let config = config(&redis);
    let durable = TestApp::spawn_on(redis, config, Role::Ingress).await;
    let body: serde_json::Value =
        durable.http.get(format!("{}/readyz", durable.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (body["durability"]["appendonly"].as_str(), body["durability"]["appendfsync"].as_str()),
        (Some("yes"), Some("always"))
    );
    assert_eq!(body["durability"]["can_lose_acknowledged"], false);
}

#[tokio::test]
async fn waiting_for_replicas_that_do_not_exist_answers_503_not_2xx() {
    let app = TestApp::spawn_with(Role::Ingress, |c| {
        c.redis.wait_replicas = 1;
        c.redis.wait_timeout_ms = 100;
    })
    .await;
    let body = serde_json::to_vec(&crate::harness::stripe_payment_intent("evt_w", "pi_w", 100, "eur")).unwrap();
    let response = app.post_stripe(&body).await;
    assert_eq!(response.status(), 503, "stored on the primary only: the provider must retry");
    assert!(response.headers().contains_key("retry-after"));
    let ready: serde_json::Value =
        app.http.get(format!("{}/readyz", app.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["durability"]["wait_replicas"], 1);
}

#[tokio::test]
async fn secret_matches_tell_which_secret_of_a_rotation_verified() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-secret");
    std::fs::write(&old, "whsec_old_secret\n").unwrap();
    let old = old.to_str().unwrap();
    let rotating = source("rotating", "stripe", toml::toml! { secrets = ["whsec_new_secret"] secrets_file = [old] });
    let app = TestApp::spawn_with(Role::Ingress, |c| c.sources.push(rotating)).await;
    let body = serde_json::to_vec(&crate::harness::stripe_payment_intent("evt_rot", "pi_rot", 100, "eur")).unwrap();
    for (secret, t) in [("whsec_old_secret", 0), ("whsec_old_secret", 1), ("whsec_new_secret", 2)] {
        let header = crate::harness::stripe_header(secret, chrono::Utc::now().timestamp() - t, &body);
        assert_eq!(app.post("rotating", &body, &[("Stripe-Signature".into(), header)]).await.status(), 200);
    }
    let text = app.metrics().await;
    assert_eq!(metric(&text, "payhook_secret_matches_total{source=\"rotating\",secret_index=\"0\"}"), 1.0);
    assert_eq!(metric(&text, "payhook_secret_matches_total{source=\"rotating\",secret_index=\"1\"}"), 2.0);
}
