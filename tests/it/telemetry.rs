//! Span export for real: the `payhook` binary (the global subscriber is one
//! per process, so not the in-process app) exports over OTLP/HTTP to a
//! collector stand-in the test runs on loopback.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};
use chrono::Utc;
use payhook::domain::TraceContext;

use crate::harness::{config, stripe_header, stripe_payment_intent, Gateway, RedisServer, STRIPE_SECRET};

/// The bodies of the export requests a [`Collector`] accepted.
// A std mutex: held only to push or copy, never across an await.
type Received = Arc<Mutex<Vec<Bytes>>>;

/// A stand-in OTLP/HTTP collector: accepts `POST /v1/traces` with a protobuf
/// body and keeps the body; anything else is refused.
struct Collector {
    /// `http://127.0.0.1:<port>`, the value for `otlp_endpoint`.
    endpoint: String,
    received: Received,
}

impl Collector {
    /// Serves on a thread and runtime of its own: payhook flushes its spans
    /// while [`Gateway::sigterm`] blocks the test's runtime waiting for it.
    fn start() -> Self {
        let received = Received::default();
        let router = Router::new().route("/v1/traces", post(accept)).with_state(received.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router).await
            })
        });
        Self { endpoint, received }
    }

    fn bodies(&self) -> Vec<Bytes> {
        self.received.lock().expect("no test thread panicked holding it").clone()
    }
}

/// 200 with an empty body, an empty `ExportTraceServiceResponse` (full
/// success), for protobuf bodies.
async fn accept(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    received.lock().expect("no test thread panicked holding it").push(body);
    StatusCode::OK
}

fn holds(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|window| window == needle)
}

fn hex_bytes(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

#[tokio::test]
async fn the_deliverys_trace_is_exported_and_the_event_continues_an_exported_span() {
    // Arrange
    let collector = Collector::start();
    let redis = RedisServer::start();
    let mut exporting = config(&redis);
    exporting.telemetry.otlp_endpoint = Some(collector.endpoint.parse().unwrap());
    exporting.telemetry.service_name = "payhook-test".into();
    let mut gateway = Gateway::start(exporting).await;
    let (trace_id, parent_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let body = serde_json::to_vec(&stripe_payment_intent("evt_otlp", "pi_otlp", 1200, "eur")).unwrap();
    // Act
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", gateway.base))
        .header("Stripe-Signature", stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    redis.wait_processed().await;
    let exit = gateway.sigterm(Duration::from_secs(20)).expect("payhook exits on SIGTERM");
    // Assert
    assert!(exit.success(), "{exit:?}");
    let bodies = collector.bodies();
    assert!(!bodies.is_empty(), "the exit flushed the spans to the collector");
    let exported = bodies.concat();
    assert!(holds(&exported, &hex_bytes(trace_id)), "the exported spans are in the delivery's trace");
    assert!(holds(&exported, &hex_bytes(parent_id)), "the delivery's span is their parent");
    assert!(holds(&exported, b"payhook-test"), "service.name is the configured one");
    let events = redis.events(0).await;
    let traceparent = TraceContext::parse(events[0]["traceparent"].as_str().unwrap()).unwrap().to_string();
    let (event_trace, event_span) = (&traceparent[3..35], &traceparent[36..52]);
    assert_eq!(event_trace, trace_id, "the event continues the delivery's trace");
    assert!(holds(&exported, &hex_bytes(event_span)), "the event's parent is an exported span (process)");
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_events_still_continue_the_trace() {
    // Arrange
    let redis = RedisServer::start();
    let mut gateway = Gateway::start(config(&redis)).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4737";
    let body = serde_json::to_vec(&stripe_payment_intent("evt_off", "pi_off", 1200, "eur")).unwrap();
    // Act
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", gateway.base))
        .header("Stripe-Signature", stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .body(body)
        .send()
        .await
        .unwrap();
    redis.wait_processed().await;
    // Assert
    assert_eq!(response.status(), 200);
    assert!(gateway.sigterm(Duration::from_secs(20)).expect("payhook exits on SIGTERM").success());
    let events = redis.events(0).await;
    let traceparent = events[0]["traceparent"].as_str().unwrap();
    assert!(traceparent.starts_with(&format!("00-{trace_id}-")), "{traceparent}");
}
