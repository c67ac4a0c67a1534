//! End to end: signed payments in, exactly one schema-valid event out.

use std::time::Duration;

use payhook::{
    app::{Role, Runtime},
    config::Config,
    processing::{BatchOutcome, Processor},
    telemetry::Metrics,
};
use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::harness::{config, standard_webhooks_headers, stripe_payment_intent, TestApp, SW_SECRET};

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[tokio::test]
async fn a_signed_payment_becomes_exactly_one_schema_valid_event() {
    // Arrange
    let app = TestApp::spawn().await;
    let body = json_bytes(&stripe_payment_intent("evt_1", "pi_3Nabc", 2000, "eur"));
    // Act
    let response = app.post_stripe(&body).await;
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    app.wait_processed().await;
    // Assert
    let events = app.events(0).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["type"], "payment.succeeded.v1");
    assert_eq!(event["source"], "/sources/stripe");
    assert_eq!(event["subject"], "payments/pi_3Nabc");
    assert_eq!(event["idempotencykey"], "stripe:pi_3Nabc");
    assert_eq!(event["correlationid"], request_id.as_str());
    let data = &event["data"];
    assert_eq!(
        (data["paymentId"].as_str(), data["amount"].as_u64(), data["currency"].as_str()),
        (Some("pi_3Nabc"), Some(2000), Some("EUR"))
    );
    assert_eq!(data["merchantReference"], "6735");
    assert_eq!(data["providerEventId"], "evt_1");
    assert_eq!(data["occurredAt"], "2024-07-25T23:03:30Z");
}

#[tokio::test]
async fn fifty_concurrent_copies_of_one_delivery_give_one_arrival_and_one_event() {
    let app = TestApp::spawn().await;
    let body = json_bytes(&stripe_payment_intent("evt_storm", "pi_storm", 990, "eur"));
    let signed = vec![(
        "Stripe-Signature".to_owned(),
        crate::harness::stripe_header(crate::harness::STRIPE_SECRET, chrono::Utc::now().timestamp(), &body),
    )];
    let sends = (0..50).map(|_| app.post("stripe", &body, &signed));
    let answers = futures::future::join_all(sends).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "copies are answered 200 like any delivery: {statuses:?}");
    let ids: std::collections::HashSet<_> = answers.iter().map(|r| &r.headers()["x-payhook-arrival-id"]).collect();
    assert_eq!(ids.len(), 1, "every copy is answered with the one stored arrival");
    app.wait_processed().await;
    assert_eq!(app.redis.conn().await.xlen::<_, u64>("payhook:arrivals").await.unwrap(), 1);
    let events = app.events(0).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["paymentId"], "pi_storm");
}

#[tokio::test]
async fn fifty_deliveries_of_one_payment_signed_apart_give_one_event() {
    let app = TestApp::spawn().await;
    let body = json_bytes(&stripe_payment_intent("evt_storm", "pi_storm", 990, "eur"));
    let sends = (0..50).map(|_| app.post_stripe(&body));
    let statuses: Vec<u16> = futures::future::join_all(sends).await.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "duplicates are answered 200 like any delivery: {statuses:?}");
    app.wait_processed().await;
    assert_eq!(app.redis.conn().await.xlen::<_, u64>("payhook:arrivals").await.unwrap(), 50);
    let events = app.events(0).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["paymentId"], "pi_storm");
}

#[tokio::test]
async fn payment_intent_then_charge_for_one_payment_give_one_event() {
    let app = TestApp::spawn().await;
    let intent = json_bytes(&stripe_payment_intent("evt_pi", "pi_both", 1500, "usd"));
    let charge = json!({"id": "evt_ch", "type": "charge.succeeded", "created": 1_721_948_611, "livemode": false,
        "data": {"object": {"id": "ch_1", "payment_intent": "pi_both", "paid": true, "captured": true,
        "amount": 1500, "amount_captured": 1500, "currency": "usd", "payment_method_details": {"type": "card"}}}});
    assert_eq!(app.post_stripe(&intent).await.status(), 200);
    assert_eq!(app.post_stripe(&json_bytes(&charge)).await.status(), 200);
    app.wait_processed().await;
    let events = app.events(0).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["providerEventType"], "payment_intent.succeeded");
    assert!(app.entries("payhook:dlq").await.is_empty());
}

#[tokio::test]
async fn a_conflicting_amount_for_one_payment_goes_to_the_dlq() {
    let app = TestApp::spawn().await;
    let first = json_bytes(&stripe_payment_intent("evt_a", "pi_conflict", 1000, "eur"));
    let second = json_bytes(&stripe_payment_intent("evt_b", "pi_conflict", 1001, "eur"));
    assert_eq!(app.post_stripe(&first).await.status(), 200);
    app.wait_processed().await;
    assert_eq!(app.post_stripe(&second).await.status(), 200);
    app.wait_processed().await;
    let events = app.events(0).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["amount"], 1000);
    let dlq = app.entries("payhook:dlq").await;
    assert_eq!(dlq.len(), 1);
    let field = |name: &str| dlq[0].get::<String>(name).unwrap();
    assert_eq!(field("reason"), "idempotency_conflict");
    assert_eq!(field("source"), "stripe");
    assert!(!field("error").contains("1001"), "the error holds no payload contents");
    let stored = app.entries("payhook:arrivals").await;
    assert_eq!(field("arrival_id"), stored[1].id);
}

#[tokio::test]
async fn a_zero_decimal_currency_keeps_its_amount() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post_stripe(&json_bytes(&stripe_payment_intent("evt_jpy", "pi_jpy", 5000, "jpy"))).await.status(),
        200
    );
    app.wait_processed().await;
    let events = app.events(0).await;
    assert_eq!(
        (events[0]["data"]["amount"].as_u64(), events[0]["data"]["currency"].as_str()),
        (Some(5000), Some("JPY"))
    );
}

#[tokio::test]
async fn standard_webhooks_in_either_spelling_map_to_one_event() {
    let app = TestApp::spawn().await;
    let body = json_bytes(&json!({"type": "payment.succeeded", "data": {"payment_id": "pay_sw1",
        "total_amount": 2500, "currency": "eur", "metadata": {"order_id": "ord_9"}}}));
    let now = chrono::Utc::now().timestamp();
    for (prefix, msg) in [("webhook", "msg_1"), ("svix", "msg_1")] {
        let response = app.post("dodo", &body, &standard_webhooks_headers(prefix, SW_SECRET, msg, now, &body)).await;
        assert_eq!(response.status(), 200, "{prefix}-* headers");
    }
    app.wait_processed().await;
    let events = app.events(0).await;
    assert_eq!(events.len(), 1);
    let data = &events[0]["data"];
    assert_eq!(events[0]["idempotencykey"], "dodo:pay_sw1", "a generic source keys payments by its own name");
    assert_eq!(data["provider"], "dodo");
    assert_eq!(
        (data["amount"].as_u64(), data["providerEventId"].as_str(), data["livemode"].as_bool()),
        (Some(2500), Some("msg_1"), Some(true))
    );
    assert_eq!(data["merchantReference"], "ord_9");
}

#[tokio::test]
async fn non_payment_events_are_acknowledged_and_ignored() {
    let app = TestApp::spawn().await;
    let body = json_bytes(&json!({"id": "evt_c", "type": "customer.created", "created": 1, "livemode": false,
        "data": {"object": {"id": "cus_1", "email": "jane@example.com"}}}));
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    app.wait_processed().await;
    assert!(app.events(0).await.is_empty());
    assert!(app.entries("payhook:dlq").await.is_empty());
    assert_eq!(crate::harness::metric(&app.metrics().await, "payhook_ignored_total{source=\"stripe\"}"), 1.0);
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_dead_lettered_and_does_not_block_others() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_stripe(b"amount=1000&email=jane@example.com").await.status(), 200);
    assert_eq!(app.post_stripe(&json_bytes(&stripe_payment_intent("evt_ok", "pi_ok", 10, "eur"))).await.status(), 200);
    app.wait_processed().await;
    assert_eq!(app.events(0).await.len(), 1);
    let dlq = app.entries("payhook:dlq").await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].get::<String>("reason").unwrap(), "unparseable_payload");
    assert!(!dlq[0].get::<String>("error").unwrap().contains("jane"));
}

#[tokio::test]
async fn events_spread_over_partitions_by_a_stable_hash() {
    let app = TestApp::spawn_with(Role::All, |c| c.redis.partitions = std::num::NonZeroU32::new(4).unwrap()).await;
    for i in 0..20 {
        let body = json_bytes(&stripe_payment_intent(&format!("evt_{i}"), &format!("pi_p{i}"), 100, "eur"));
        assert_eq!(app.post_stripe(&body).await.status(), 200);
    }
    app.wait_processed().await;
    let mut total = 0;
    for partition in 0..4 {
        for event in app.events(partition).await {
            let key = payhook::domain::IdempotencyKey::new(
                "stripe",
                &payhook::domain::PaymentId::parse(event["data"]["paymentId"].as_str().unwrap()).unwrap(),
            );
            let expected = payhook::domain::Partition::of(&key, std::num::NonZeroU32::new(4).unwrap());
            assert_eq!(expected.index(), partition);
            let idem: String = app.redis.conn().await.get(format!("payhook:idem:{{{partition}}}:{key}")).await.unwrap();
            assert_eq!(serde_json::from_str::<Value>(&idem).unwrap()["event_id"], event["id"]);
            total += 1;
        }
    }
    assert_eq!(total, 20);
}

/// A processor of the test config changed by `edit`, built by hand against
/// the app's Redis, so a test can drive the public step and read its outcome.
async fn processor(app: &TestApp, edit: impl FnOnce(&mut Config)) -> Processor {
    processor_with(app, edit, std::sync::Arc::new(Metrics::new())).await
}

async fn processor_with(app: &TestApp, edit: impl FnOnce(&mut Config), metrics: std::sync::Arc<Metrics>) -> Processor {
    let mut config = config(&app.redis);
    edit(&mut config);
    let runtime = Runtime::build(&config).unwrap();
    let store = runtime.store(&config).unwrap();
    let processor = Processor::new(&config, &runtime.sources, &store, metrics, 99).unwrap();
    processor.prepare().await.unwrap();
    processor
}

#[tokio::test]
async fn the_processing_step_reports_what_it_did() {
    let app = TestApp::ingress().await;
    let step = processor(&app, |_| {}).await;
    let pay = json_bytes(&stripe_payment_intent("evt_s1", "pi_s1", 10, "eur"));
    let ignored = json_bytes(&json!({"id": "evt_s2", "type": "charge.refunded", "created": 1, "data": {"object": {}}}));
    for body in [&pay, &pay, &ignored, &b"not json".to_vec()] {
        assert_eq!(app.post_stripe(body).await.status(), 200);
    }
    let outcome = step.process_batch(Duration::from_millis(100)).await.unwrap();
    assert_eq!(
        outcome,
        BatchOutcome { read: 4, published: 1, duplicates: 1, ignored: 1, dead_lettered: 1, retried: 0 }
    );
    let again = step.process_batch(Duration::from_millis(100)).await.unwrap();
    assert_eq!(again, BatchOutcome::default(), "everything was acknowledged");
}

#[tokio::test]
async fn arrivals_abandoned_by_a_crashed_processor_are_reclaimed_and_published_once() {
    let app = TestApp::ingress().await;
    let step = processor(&app, |c| c.processing.visibility_timeout_secs = 1).await;
    for i in 0..3 {
        assert_eq!(
            app.post_stripe(&json_bytes(&stripe_payment_intent(&format!("evt_c{i}"), &format!("pi_c{i}"), 10, "eur")))
                .await
                .status(),
            200
        );
    }
    // A processor that read the batch and died before acknowledging it.
    let mut conn = app.redis.conn().await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("processors")
        .arg("crashed")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg("payhook:arrivals")
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let before = step.process_batch(Duration::from_millis(50)).await.unwrap();
    assert_eq!(before.read, 0, "not reclaimed before the visibility timeout");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reclaimed = step.process_batch(Duration::from_millis(50)).await.unwrap();
    assert_eq!((reclaimed.read, reclaimed.published), (3, 3));
    assert_eq!(app.events(0).await.len(), 3);
}

#[tokio::test]
async fn a_publish_that_keeps_failing_is_retried_after_its_backoff_then_dead_lettered() {
    // Delays long enough that a loaded CI machine cannot blur them.
    let app = TestApp::ingress().await;
    let metrics = std::sync::Arc::new(Metrics::new());
    let retrying = |c: &mut Config| {
        c.processing.retry_base_ms = 800;
        c.processing.max_attempts = std::num::NonZeroU32::new(3).unwrap();
    };
    let step = processor_with(&app, retrying, metrics.clone()).await;
    // A dedupe record the script cannot decode makes every publish of this
    // payment fail inside Redis, as a corrupted key would.
    let _: () = app.redis.conn().await.set("payhook:idem:{0}:stripe:pi_poison", "not json").await.unwrap();
    let poison = json_bytes(&stripe_payment_intent("evt_p", "pi_poison", 10, "eur"));
    let good = json_bytes(&stripe_payment_intent("evt_g", "pi_good", 10, "eur"));
    assert_eq!(app.post_stripe(&poison).await.status(), 200);
    assert_eq!(app.post_stripe(&good).await.status(), 200);

    let first = step.process_batch(Duration::from_millis(50)).await.unwrap();
    assert_eq!((first.published, first.retried, first.dead_lettered), (1, 1, 0), "the good payment is not blocked");
    let too_early = step.process_batch(Duration::from_millis(10)).await.unwrap();
    assert_eq!(too_early.read, 0, "a parked arrival waits for its backoff (400 to 800 ms)");
    tokio::time::sleep(Duration::from_millis(850)).await;
    let second = step.process_batch(Duration::from_millis(10)).await.unwrap();
    assert_eq!((second.read, second.retried), (1, 1), "retried once its backoff passed");
    tokio::time::sleep(Duration::from_millis(1650)).await; // the second delay doubles
    let third = step.process_batch(Duration::from_millis(10)).await.unwrap();
    assert_eq!((third.read, third.dead_lettered), (1, 1), "dead-lettered at max_attempts");

    let dlq = app.entries("payhook:dlq").await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].get::<String>("reason").unwrap(), "publish_failed");
    assert_eq!(dlq[0].get::<String>("attempts").unwrap(), "3");
    let text = metrics.render();
    let series = |s: &str| crate::harness::metric(&text, s);
    assert_eq!(series("payhook_processing_errors_total{source=\"stripe\",reason=\"publish_failed\"}"), 2.0);
    assert_eq!(series("payhook_dead_lettered_total{source=\"stripe\",reason=\"publish_failed\"}"), 1.0);
    assert_eq!(
        series("payhook_processing_attempts_total{source=\"stripe\"}"),
        4.0,
        "the good one once, the poison three times"
    );
    assert_eq!(app.events(0).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(850)).await;
    let after = step.process_batch(Duration::from_millis(10)).await.unwrap();
    assert_eq!(after, BatchOutcome::default(), "nothing is left pending");
}

#[tokio::test]
async fn events_continue_the_deliverys_trace_or_start_one() {
    let app = TestApp::spawn().await;
    let traced = json_bytes(&stripe_payment_intent("evt_t1", "pi_t1", 10, "eur"));
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let header = crate::harness::stripe_header(crate::harness::STRIPE_SECRET, chrono::Utc::now().timestamp(), &traced);
    let headers = [("Stripe-Signature".to_owned(), header), ("traceparent".to_owned(), parent.to_owned())];
    assert_eq!(app.post("stripe", &traced, &headers).await.status(), 200);
    assert_eq!(app.post_stripe(&json_bytes(&stripe_payment_intent("evt_t2", "pi_t2", 10, "eur"))).await.status(), 200);
    app.wait_processed().await;
    let events = app.events(0).await;
    let trace_of = |pi: &str| {
        let event = events.iter().find(|e| e["data"]["paymentId"] == pi).unwrap();
        event["traceparent"].as_str().unwrap().to_owned()
    };
    let continued = trace_of("pi_t1");
    assert!(continued.starts_with("00-0af7651916cd43dd8448eb211c80319c-"), "same trace: {continued}");
    assert_ne!(continued, parent, "a new span of it");
    let started = trace_of("pi_t2");
    assert!(
        payhook::domain::TraceContext::parse(&started).is_some(),
        "a delivery without a trace starts one: {started}"
    );
}
