//! `/healthz`, `/readyz` and `/metrics`.

use crate::harness::{metric, TestApp};

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
    for series in
        ["payhook_idempotency_conflicts_total{source=\"stripe\"} 0", "payhook_ignored_total{source=\"dodo\"} 0"]
    {
        assert!(text.contains(series), "{series} is exported at zero before any event");
    }
}
