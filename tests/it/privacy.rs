//! What payhook writes about a payment: never a body, a secret, a signature or
//! personal data, in logs or events.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::harness::{config, stripe_header, Gateway, RedisServer, STRIPE_SECRET};

/// Personal data a payment payload may carry.
const PII: [&str; 7] = [
    "jane.doe@example.com",
    "Jane Doe",
    "4242424242424242",
    "4000 0566 5566 5556",
    "+44 20 7946 0958",
    "221B Baker Street",
    "DE89370400440532013000",
];

fn payment_full_of_pii(id: &str) -> serde_json::Value {
    json!({
        "id": format!("evt_{id}"), "type": "payment_intent.succeeded", "created": 1_721_948_610, "livemode": false,
        "data": {"object": {
            "id": format!("pi_{id}"), "amount_received": 1000, "currency": "eur", "customer": "cus_opaque",
            "receipt_email": PII[0], "metadata": {"order_id": "o_1", "buyer": PII[1], "card": PII[2]},
            "shipping": {"name": PII[1], "phone": PII[4], "address": {"line1": PII[5]}},
            "payment_method_details": {"card": {"number": PII[3]}, "iban": PII[6]},
            "payment_method_types": ["card"]
        }}
    })
}

#[tokio::test]
async fn logs_and_events_hold_no_personal_data_secrets_or_signatures() {
    let redis = RedisServer::start();
    let mut gateway = Gateway::start_logged(config(&redis)).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>, header: String| {
        client.post(format!("{}/webhooks/stripe", gateway.base)).header("Stripe-Signature", header).body(body).send()
    };
    let mut signatures = Vec::new();
    // A good payment, a non-JSON body, a forged one, one with a schema
    // violation: every path that logs.
    let good = serde_json::to_vec(&payment_full_of_pii("ok")).unwrap();
    let not_json = format!("email={}&name={}&card={}", PII[0], PII[1], PII[2]).into_bytes();
    let mut bad_schema = payment_full_of_pii("bad");
    bad_schema["data"]["object"]["amount_received"] = json!(PII[2]);
    let bad_schema = serde_json::to_vec(&bad_schema).unwrap();
    for body in [good.clone(), not_json, bad_schema] {
        let header = stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body);
        signatures.push(header.clone());
        assert_eq!(post(body, header).await.unwrap().status(), 200);
    }
    let forged = stripe_header("whsec_attacker", Utc::now().timestamp(), &good);
    assert_eq!(post(good, forged.clone()).await.unwrap().status(), 401);
    signatures.push(forged);
    redis.wait_processed().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    gateway.sigterm(Duration::from_secs(20));

    let log = gateway.log();
    assert!(log.contains("Event published.") && log.contains("Arrival dead-lettered."), "the log was captured");
    let published: serde_json::Value =
        serde_json::from_str(log.lines().find(|l| l.contains("Event published.")).unwrap()).unwrap();
    for field in [
        "arrival_id",
        "source",
        "request_id",
        "idempotency_key",
        "event_id",
        "event_type",
        "provider_event_id",
        "outcome",
    ] {
        assert!(published.get(field).is_some(), "the log line carries {field}: {published}");
    }
    let span = published["span"].to_string() + &published["spans"].to_string();
    assert!(span.contains("trace_id") && span.contains("attempt"), "trace id and attempt: {published}");
    let events: Vec<String> = redis.events(0).await.iter().map(|e| e.to_string()).collect();
    assert_eq!(events.len(), 1);
    let dlq = format!("{:?}", redis.entries("payhook:dlq").await);
    for (place, text) in [("log", &log), ("event", &events[0]), ("dlq", &dlq)] {
        for needle in PII.iter().copied().chain([STRIPE_SECRET, "whsec_attacker"]) {
            assert!(!text.contains(needle), "{place} holds {needle:?}");
        }
        for signature in &signatures {
            let mac = signature.split("v1=").nth(1).unwrap();
            assert!(!text.contains(mac), "{place} holds a signature");
        }
    }
}

#[tokio::test]
async fn with_encryption_redis_never_holds_a_readable_payload_and_everything_still_works() {
    use crate::harness::{with_admin_token, TestApp};
    let app = TestApp::spawn_with(payhook::app::Role::All, |c| {
        c.encryption.keys_env = vec!["PAYHOOK_TEST_BODY_KEY".into()];
        c.env.set("PAYHOOK_TEST_BODY_KEY", "2026-11:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        with_admin_token(c, "token");
    })
    .await;
    let body = serde_json::to_vec(&payment_full_of_pii("enc")).unwrap();
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    app.wait_processed().await;

    let stored = app.entries("payhook:arrivals").await;
    assert_eq!(stored[0].get::<String>("key_id").as_deref(), Some("2026-11"));
    let raw = match &stored[0].map["body"] {
        redis::Value::BulkString(bytes) => bytes.clone(),
        other => panic!("{other:?}"),
    };
    for needle in ["payment_intent", "pi_enc", PII[0], PII[2]] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle.as_bytes()), "sealed body holds {needle:?}");
    }
    let events = app.events(0).await;
    assert_eq!(events[0]["data"]["paymentId"], "pi_enc", "the processor opened the body");
    let since = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (_, replay) = app.admin_post("replay", "token", json!({"since": since})).await;
    assert_eq!(
        (replay["duplicate"].as_u64(), replay["failed"].as_u64()),
        (Some(1), Some(0)),
        "replay opens and re-verifies"
    );
}
