//! Every row of the HTTP contract for `POST /webhooks/{source}`.

use redis::AsyncCommands;
use serde_json::{json, Value};

use payhook::app::Role;

use crate::harness::{metric, stripe_header, stripe_payment_intent, TestApp, STRIPE_SECRET};

type Headers = Vec<(String, String)>;

/// One row of the HTTP table: what is sent and what must come back.
struct Case {
    name: &'static str,
    source: &'static str,
    body: Vec<u8>,
    headers: Headers,
    status: u16,
    code: &'static str,
}

impl Case {
    fn new(
        name: &'static str,
        source: &'static str,
        body: Vec<u8>,
        headers: Headers,
        status: u16,
        code: &'static str,
    ) -> Self {
        Self { name, source, body, headers, status, code }
    }
}

async fn arrivals(app: &TestApp) -> u64 {
    app.redis.conn().await.xlen("payhook:arrivals").await.unwrap()
}

async fn rejected(app: &TestApp) -> Vec<redis::streams::StreamId> {
    app.entries("payhook:rejected").await
}

async fn error_of(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    (status, request_id, response.json().await.unwrap())
}

fn body() -> Vec<u8> {
    serde_json::to_vec(&stripe_payment_intent("evt_1", "pi_1", 2000, "eur")).unwrap()
}

#[tokio::test]
async fn a_verified_delivery_is_stored_and_answered_with_its_arrival_id() {
    // Arrange
    let app = TestApp::ingress().await;
    // Act
    let response = app.post_stripe(&body()).await;
    // Assert
    assert_eq!(response.status(), 200);
    let arrival_id = response.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned();
    assert!(response.headers().contains_key("x-request-id"));
    let json: Value = response.json().await.unwrap();
    assert_eq!(json, json!({"status": "accepted", "arrival_id": arrival_id}));
    let stored = app.entries("payhook:arrivals").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, arrival_id);
}

#[tokio::test]
async fn the_stored_body_is_byte_identical_to_what_was_sent() {
    let app = TestApp::ingress().await;
    // Odd spacing, key order, escapes, non-ASCII and a trailing newline: all
    // must survive, since signatures are over these exact bytes.
    let body = "{ \"type\":\"payment_intent.succeeded\" ,\n\t\"id\":\"evt_ü\\u00e9\", \"data\":{\"object\":{}}, \"z\":1.50}\r\n";
    let response = app.post_stripe(body.as_bytes()).await;
    assert_eq!(response.status(), 200);
    let stored = app.entries("payhook:arrivals").await;
    let redis::Value::BulkString(bytes) = &stored[0].map["body"] else { panic!("body is a bulk string") };
    assert_eq!(bytes.as_slice(), body.as_bytes());
    let headers: Value = serde_json::from_slice(match &stored[0].map["headers"] {
        redis::Value::BulkString(b) => b,
        _ => panic!(),
    })
    .unwrap();
    assert!(headers["stripe-signature"].as_str().unwrap().starts_with("t="));
    for field in ["source", "provider", "received_at", "request_id"] {
        assert!(stored[0].map.contains_key(field), "{field}");
    }
}

#[tokio::test]
async fn the_callers_request_id_is_echoed() {
    let app = TestApp::ingress().await;
    let body = body();
    let header = stripe_header(STRIPE_SECRET, chrono::Utc::now().timestamp(), &body);
    let headers = [("Stripe-Signature".into(), header), ("x-request-id".into(), "req-test-42".into())];
    let response = app.post("stripe", &body, &headers).await;
    assert_eq!(response.headers()["x-request-id"], "req-test-42");
    let unknown = app.post("nope", b"{}", &[("x-request-id".into(), "req-test-43".into())]).await;
    assert_eq!(unknown.headers()["x-request-id"], "req-test-43");
}

#[tokio::test]
async fn every_rejection_row_answers_as_the_contract_says_and_stores_nothing() {
    let app = TestApp::spawn_with(Role::Ingress, |c| c.server.max_body_bytes = 4096).await;
    let body = body();
    let now = chrono::Utc::now().timestamp();
    let sig = |secret: &str, t: i64, b: &[u8]| vec![("Stripe-Signature".to_owned(), stripe_header(secret, t, b))];
    let big = vec![b' '; 4097];
    let cases = vec![
        Case::new("unknown source", "nope", body.clone(), sig(STRIPE_SECRET, now, &body), 404, "unknown_source"),
        Case::new("source name that cannot exist", "NO%20PE", body.clone(), vec![], 404, "unknown_source"),
        Case::new("no signature header", "stripe", body.clone(), vec![], 401, "missing_signature"),
        Case::new("wrong secret", "stripe", body.clone(), sig("whsec_other", now, &body), 401, "invalid_signature"),
        Case::new(
            "tampered body",
            "stripe",
            b"{\"id\":\"evt_2\"}".to_vec(),
            sig(STRIPE_SECRET, now, &body),
            401,
            "invalid_signature",
        ),
        Case::new(
            "garbage header",
            "stripe",
            body.clone(),
            vec![("Stripe-Signature".into(), "t=,v1=zz".into())],
            401,
            "invalid_signature",
        ),
        Case::new(
            "stale timestamp",
            "stripe",
            body.clone(),
            sig(STRIPE_SECRET, now - 310, &body),
            401,
            "timestamp_out_of_tolerance",
        ),
        Case::new(
            "future timestamp",
            "stripe",
            body.clone(),
            sig(STRIPE_SECRET, now + 310, &body),
            401,
            "timestamp_out_of_tolerance",
        ),
        Case::new("body too large", "stripe", big.clone(), sig(STRIPE_SECRET, now, &big), 413, "body_too_large"),
    ];
    for Case { name, source, body, headers, status, code } in cases {
        let (got_status, request_id, json) = error_of(app.post(source, &body, &headers).await).await;
        assert_eq!((got_status, json), (status, json!({"error": code})), "{name}");
        assert!(!request_id.is_empty(), "{name}");
    }
    assert_eq!(arrivals(&app).await, 0, "nothing stored for a rejected request");
    // Signature failures are kept for forensics, without body or signature.
    let forensics = rejected(&app).await;
    assert_eq!(forensics.len(), 6, "missing, invalid and out-of-tolerance signatures");
    for entry in &forensics {
        assert!(!entry.map.contains_key("body") && !entry.map.contains_key("signature"));
        assert!(entry.map.contains_key("remote_addr") && entry.map.contains_key("body_length"));
    }
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "payhook_arrivals_total{source=\"stripe\",outcome=\"invalid_signature\"}"), 3.0);
    assert_eq!(metric(&metrics, "payhook_arrivals_total{source=\"\",outcome=\"unknown_source\"}"), 2.0);
    assert_eq!(metric(&metrics, "payhook_arrivals_total{source=\"stripe\",outcome=\"body_too_large\"}"), 1.0);
    assert_eq!(metric(&metrics, "payhook_arrivals_total{source=\"stripe\",outcome=\"missing_signature\"}"), 1.0);
    assert_eq!(
        metric(&metrics, "payhook_arrivals_total{source=\"stripe\",outcome=\"timestamp_out_of_tolerance\"}"),
        2.0
    );
}

#[tokio::test]
async fn a_body_without_content_length_is_cut_off_at_the_limit() {
    let app = TestApp::spawn_with(Role::Ingress, |c| c.server.max_body_bytes = 1024).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b'x'; 512])).collect();
    let stream = futures::stream::iter(chunks);
    let response = app
        .http
        .post(format!("{}/webhooks/stripe", app.base))
        .header("Stripe-Signature", "t=1,v1=00")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(arrivals(&app).await, 0);
}

#[tokio::test]
async fn only_post_is_allowed_on_webhook_routes() {
    let app = TestApp::ingress().await;
    let response = app.http.get(format!("{}/webhooks/stripe", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn redis_down_means_503_with_retry_after_never_2xx() {
    let mut app = TestApp::spawn_with(Role::Ingress, |c| c.server.request_timeout_ms = 1_000).await;
    assert_eq!(app.post_stripe(&body()).await.status(), 200);
    app.redis.kill();
    let started = std::time::Instant::now();
    let response = app.post_stripe(&body()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"error": "unavailable"}));
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "no request hangs past the deadline");
    // When Redis returns, the same gateway stores again without a restart.
    app.redis.restart();
    let mut status = 0;
    for _ in 0..50 {
        status = app.post_stripe(&body()).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}
