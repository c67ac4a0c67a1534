//! The exact-replay guard and what travels with an append: a copy of one
//! signed delivery is stored once whatever unsigned text it carries (issue 8
//! item 11), a PayPal transmission id is good for one body only (item 1),
//! replays wait for replicas like first copies (item 7), and recording a
//! rejection never holds up the 401 (item 12).

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{RsaKeyPair, RSA_PKCS1_SHA256},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{SecondsFormat, Utc};
use redis::AsyncCommands;
use serde_json::{json, Value};

use payhook::{
    app::Role,
    config::{Config, SourceConfig},
};

use crate::harness::{
    metric, source, standard_webhooks_headers, stripe_header, stripe_payment_intent, RedisServer, TestApp,
    STRIPE_SECRET, SW_SECRET,
};

const PAYPAL_WEBHOOK_ID: &str = "1JE4291016473214C";

/// A gateway with a PayPal source verifying with the test certificate, and
/// a generic HMAC source that signs a time but not its delivery-id header.
async fn ingress_with_sources() -> TestApp {
    let paypal = source(
        "paypal",
        "paypal",
        toml::toml! { webhook_id = PAYPAL_WEBHOOK_ID cert_path = "tests/fixtures/vectors/paypal-cert.pem" },
    );
    let generic = generic_source(
        "generic",
        toml::toml! { timestamp_header = "X-Timestamp" id_header = "X-Delivery" signed_content = "{timestamp}.{body}" },
    );
    TestApp::spawn_with(Role::Ingress, |c| c.sources.extend([paypal, generic])).await
}

/// A generic HMAC source keyed by `generic_secret` (signature in
/// `X-Signature`) for `{"type", "data": {"id", "amount", "currency"}}`
/// payloads, signing what `signing` says.
fn generic_source(name: &str, signing: toml::Table) -> SourceConfig {
    let mut settings = toml::toml! {
        secrets = ["generic_secret"]
        header = "X-Signature"
        [mapping]
        event_type = "/type"
        succeeded_types = ["payment.succeeded"]
        payment_id = "/data/id"
        amount = "/data/amount"
        currency = "/data/currency"
    };
    settings.extend(signing);
    source(name, "hmac", settings)
}

/// The hex HMAC-SHA256 of `parts` under `generic_secret`.
fn generic_mac(parts: &[&[u8]]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"generic_secret").unwrap();
    parts.iter().for_each(|part| mac.update(part));
    hex::encode(mac.finalize().into_bytes())
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn arrival_id(response: &reqwest::Response) -> String {
    response.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned()
}

async fn stream_len(app: &TestApp, key: &str) -> u64 {
    app.redis.conn().await.xlen(key).await.unwrap()
}

/// The keys of the replay guard.
async fn guard_keys(app: &TestApp) -> Vec<String> {
    app.redis.conn().await.keys("payhook:seen:*").await.unwrap()
}

// ---- PayPal, signed as PayPal signs (docs: `id|time|webhook_id|crc32`) ------

/// The five transmission headers for `body`, signed with the test key whose
/// certificate the `paypal` source pins.
fn paypal_headers(transmission_id: &str, time: &str, body: &[u8]) -> Vec<(String, String)> {
    let pem = std::fs::read("tests/fixtures/vectors/paypal-key.pem").unwrap();
    let (_, der) = x509_cert::der::pem::decode_vec(&pem).unwrap();
    let key = RsaKeyPair::from_pkcs8(&der).unwrap();
    let message = format!("{transmission_id}|{time}|{PAYPAL_WEBHOOK_ID}|{}", crc32fast::hash(body));
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut signature).unwrap();
    [
        ("PAYPAL-TRANSMISSION-ID", transmission_id.to_owned()),
        ("PAYPAL-TRANSMISSION-TIME", time.to_owned()),
        ("PAYPAL-TRANSMISSION-SIG", STANDARD.encode(signature)),
        ("PAYPAL-CERT-URL", "https://api.paypal.com/v1/notifications/certs/CERT-test".to_owned()),
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA".to_owned()),
    ]
    .map(|(name, value)| (name.to_owned(), value))
    .to_vec()
}

fn paypal_capture(capture_id: &str, value: &str) -> Vec<u8> {
    json_bytes(&json!({
        "id": format!("WH-{capture_id}"), "create_time": "2026-06-02T09:30:00Z", "resource_type": "capture",
        "event_type": "PAYMENT.CAPTURE.COMPLETED", "summary": "Payment completed",
        "resource": {"id": capture_id, "status": "COMPLETED", "amount": {"currency_code": "USD", "value": value},
                     "invoice_id": "INV-1"},
        "event_version": "1.0", "resource_version": "2.0"
    }))
}

/// `body` followed by 48 bytes of JSON whitespace (spaces and tabs) chosen so
/// that the result's CRC-32 is `wanted`: CRC-32 is affine over GF(2), so
/// the tab-or-space choices solve a linear system (the issue's attack).
fn crc32_collision(body: &[u8], wanted: u32) -> Vec<u8> {
    let mut forged = [body, &[b' '; 48]].concat();
    let base = crc32fast::hash(&forged);
    // What turning pad byte i from a space into a tab does to the CRC.
    let effects: Vec<u32> = (0..48)
        .map(|i| {
            let mut flipped = forged.clone();
            flipped[body.len() + i] = b'\t';
            crc32fast::hash(&flipped) ^ base
        })
        .collect();
    // Gaussian elimination: basis[bit] = (vector with top bit `bit`, which pad bytes make it).
    let mut basis: [Option<(u32, u64)>; 32] = [None; 32];
    for (i, effect) in effects.iter().enumerate() {
        let (mut vector, mut mask) = (*effect, 1u64 << i);
        while vector != 0 {
            let top = 31 - vector.leading_zeros() as usize;
            match basis[top] {
                Some((v, m)) => (vector, mask) = (vector ^ v, mask ^ m),
                None => {
                    basis[top] = Some((vector, mask));
                    break;
                }
            }
        }
    }
    let (mut target, mut mask) = (base ^ wanted, 0u64);
    while target != 0 {
        let top = 31 - target.leading_zeros() as usize;
        let (v, m) = basis[top].expect("48 random effects span all 32 bits");
        (target, mask) = (target ^ v, mask ^ m);
    }
    for i in (0..48).filter(|i| mask & (1 << i) != 0) {
        forged[body.len() + i] = b'\t';
    }
    forged
}

// ---- Item 1: a PayPal transmission id is accepted for one body only -------

#[tokio::test]
async fn a_paypal_transmission_id_is_accepted_for_one_body_only() {
    // Arrange: a genuine delivery and its captured headers.
    let app = ingress_with_sources().await;
    let genuine = paypal_capture("CAPTURE1", "10.00");
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let headers = paypal_headers("8e4a7a90-0f1b-11ef-9d5e-d3f2c1a0b001", &time, &genuine);
    let made_up = crc32_collision(&paypal_capture("FORGED1", "9999.00"), crc32fast::hash(&genuine));
    assert_eq!(crc32fast::hash(&made_up), crc32fast::hash(&genuine), "the forged body's CRC-32 collides");
    assert!(serde_json::from_slice::<Value>(&made_up).is_ok(), "and it is still valid JSON");

    // Act
    let first = app.post("paypal", &genuine, &headers).await;
    let again = app.post("paypal", &genuine, &headers).await;
    let forged = app.post("paypal", &made_up, &headers).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(again.status(), 200, "the identical delivery again is an exact replay");
    assert_eq!(arrival_id(&again), arrival_id(&first));
    assert_eq!(forged.status(), 401, "the same transmission id with another body is a forgery");
    assert_eq!(forged.json::<Value>().await.unwrap(), json!({"error": "invalid_signature"}));
    assert_eq!(stream_len(&app, "payhook:arrivals").await, 1, "stored once");
    let rejected = wait_for_rejections(&app, 1).await;
    assert_eq!(rejected[0].get::<String>("reason").unwrap(), "invalid_signature");
    assert_eq!(rejected[0].get::<String>("source").unwrap(), "paypal");
}

#[tokio::test]
async fn a_paypal_transmission_time_outside_the_default_tolerance_is_refused() {
    let app = ingress_with_sources().await;
    let body = paypal_capture("CAPTURE2", "10.00");
    let old = (Utc::now() - chrono::Duration::days(5)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let response =
        app.post("paypal", &body, &paypal_headers("8e4a7a90-0f1b-11ef-9d5e-d3f2c1a0b002", &old, &body)).await;
    assert_eq!(response.status(), 401, "captured headers older than PayPal's retry period are refused");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"error": "timestamp_out_of_tolerance"}));
}

/// The forensic records, once `count` of them have been written (they are
/// written after the 401 is sent).
async fn wait_for_rejections(app: &TestApp, count: usize) -> Vec<redis::streams::StreamId> {
    for _ in 0..250 {
        let entries = app.entries("payhook:rejected").await;
        if entries.len() >= count {
            return entries;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{count} rejection(s) never recorded");
}

// ---- Item 11: the fingerprint is built from what is signed ----------------

#[tokio::test]
async fn unsigned_additions_to_a_stripe_signature_do_not_make_a_copy_new() {
    let app = TestApp::ingress().await;
    let body = json_bytes(&stripe_payment_intent("evt_g1", "pi_g1", 100, "eur"));
    let signed = stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body);
    let first = app.post("stripe", &body, &[("Stripe-Signature".into(), signed.clone())]).await;
    assert_eq!(first.status(), 200);
    for (i, padded) in [
        format!("{signed},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"),
        format!("{signed},v1={}", "ab".repeat(32)),
        format!("{signed},v1={},v0=00,v1=cd", "12".repeat(32)),
    ]
    .iter()
    .enumerate()
    {
        let copy = app.post("stripe", &body, &[("Stripe-Signature".into(), padded.clone())]).await;
        assert_eq!(copy.status(), 200, "copy {i}");
        assert_eq!(arrival_id(&copy), arrival_id(&first), "copy {i} is the first delivery");
    }
    assert_eq!(stream_len(&app, "payhook:arrivals").await, 1, "a captured request cannot flood the stream");
}

#[tokio::test]
async fn during_a_rotation_a_copy_keeping_either_signature_is_the_same_delivery() {
    const NEW_SECRET: &str = "whsec_rotated_in";
    let app = TestApp::spawn_with(Role::Ingress, |c| {
        let stripe = c.sources.iter_mut().find(|s| s.name.as_str() == "stripe").unwrap();
        stripe.settings.insert("secrets".into(), toml::Value::from(vec![NEW_SECRET, STRIPE_SECRET]));
    })
    .await;
    let body = json_bytes(&stripe_payment_intent("evt_g6", "pi_g6", 100, "eur"));
    let t = Utc::now().timestamp();
    // Stripe signs with every active secret during a rotation.
    let (by_new, by_old) = (stripe_header(NEW_SECRET, t, &body), stripe_header(STRIPE_SECRET, t, &body));
    let both = format!("{by_new},{}", by_old.split_once(',').unwrap().1);
    let first = app.post("stripe", &body, &[("Stripe-Signature".into(), both)]).await;
    assert_eq!(first.status(), 200);
    // Dropping the first key's signature (unsigned text) does not make it new.
    for (i, kept) in [by_old, by_new].into_iter().enumerate() {
        let copy = app.post("stripe", &body, &[("Stripe-Signature".into(), kept)]).await;
        assert_eq!((copy.status().as_u16(), arrival_id(&copy)), (200, arrival_id(&first)), "copy {i}");
    }
    assert_eq!(stream_len(&app, "payhook:arrivals").await, 1);
}

#[tokio::test]
async fn a_padded_standard_webhooks_signature_list_does_not_make_a_copy_new() {
    let app = TestApp::ingress().await;
    let body = json_bytes(&json!({"type": "payment.succeeded", "data": {"payment_id": "pay_g2", "total_amount": 100,
                                  "currency": "EUR"}}));
    let headers = standard_webhooks_headers("webhook", SW_SECRET, "msg_g2", Utc::now().timestamp(), &body);
    let first = app.post("dodo", &body, &headers).await;
    assert_eq!(first.status(), 200);
    let pad = |extra: &str| {
        let mut copy = headers.clone();
        copy[2].1 = format!("{} {extra}", copy[2].1);
        copy
    };
    for padded in
        [pad("v1,AAAA"), pad("v1a,bm90IGEgc2lnbmF0dXJl v2,x"), pad(&format!("v1,{}", STANDARD.encode([7; 32])))]
    {
        let copy = app.post("dodo", &body, &padded).await;
        assert_eq!(copy.status(), 200);
        assert_eq!(arrival_id(&copy), arrival_id(&first));
    }
    // The same values under the `svix-*` spelling are the same delivery too.
    let svix: Vec<(String, String)> =
        headers.iter().map(|(name, value)| (name.replace("webhook-", "svix-"), value.clone())).collect();
    assert_eq!(arrival_id(&app.post("dodo", &body, &svix).await), arrival_id(&first));
    assert_eq!(stream_len(&app, "payhook:arrivals").await, 1);
}

#[tokio::test]
async fn an_unsigned_delivery_id_header_does_not_make_a_generic_hmac_copy_new() {
    let app = ingress_with_sources().await;
    let body =
        json_bytes(&json!({"type": "payment.succeeded", "data": {"id": "g3", "amount": 100, "currency": "EUR"}}));
    let t = Utc::now().timestamp().to_string();
    let mac = generic_mac(&[format!("{t}.").as_bytes(), &body]);
    let headers = |delivery: &str| {
        [("X-Signature", mac.clone()), ("X-Timestamp", t.clone()), ("X-Delivery", delivery.to_owned())]
            .map(|(n, v)| (n.to_owned(), v))
            .to_vec()
    };
    let first = app.post("generic", &body, &headers("dlv_1")).await;
    assert_eq!(first.status(), 200);
    let copy = app.post("generic", &body, &headers("dlv_2")).await;
    assert_eq!(copy.status(), 200);
    assert_eq!(arrival_id(&copy), arrival_id(&first), "the id header is not signed here, so it names nothing");
    assert_eq!(stream_len(&app, "payhook:arrivals").await, 1);
}

#[tokio::test]
async fn the_guard_forgets_a_delivery_once_it_could_no_longer_verify() {
    let app = TestApp::spawn_with(Role::Ingress, |c| {
        for source in &mut c.sources {
            source.settings.insert("tolerance_secs".into(), 60.into());
        }
    })
    .await;
    let signed_at = Utc::now().timestamp() - 30;
    let body = json_bytes(&stripe_payment_intent("evt_g4", "pi_g4", 100, "eur"));
    let header = stripe_header(STRIPE_SECRET, signed_at, &body);
    assert_eq!(app.post("stripe", &body, &[("Stripe-Signature".into(), header)]).await.status(), 200);
    // A copy verifies until signed_at + 60 (whole seconds, so one more): the
    // guard is in the hash of the deliveries that stop verifying then.
    let keys = guard_keys(&app).await;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with(&format!("payhook:seen:{{payhook:arrivals}}:t{}:", signed_at + 61)), "{keys:?}");
    let mut conn = app.redis.conn().await;
    let fields: usize = conn.hlen(&keys[0]).await.unwrap();
    assert_eq!(fields, 1, "one field per delivery");
    let ttl_ms: i64 = conn.pttl(&keys[0]).await.unwrap();
    // Signed 30 s ago with a 60 s tolerance: a copy verifies for about 31 s more.
    assert!(ttl_ms > 0 && ttl_ms <= 33_000, "the guard lives only while a copy would verify: {ttl_ms} ms");
}

#[tokio::test]
async fn a_delivery_signing_an_id_but_no_time_is_remembered_for_the_tolerance_after_each_copy() {
    let by_id = generic_source(
        "by-id",
        toml::toml! { id_header = "X-Delivery" signed_content = "{id}.{body}" tolerance_secs = 120 },
    );
    let app = TestApp::spawn_with(Role::Ingress, |c| c.sources.push(by_id)).await;
    let body =
        json_bytes(&json!({"type": "payment.succeeded", "data": {"id": "g5", "amount": 100, "currency": "EUR"}}));
    let mac = generic_mac(&[b"dlv_5.", &body]);
    let headers = [("X-Signature".to_owned(), mac), ("X-Delivery".to_owned(), "dlv_5".to_owned())];
    let first = app.post("by-id", &body, &headers).await;
    assert_eq!(first.status(), 200);
    let copy = app.post("by-id", &body, &headers).await;
    assert_eq!((copy.status().as_u16(), arrival_id(&copy)), (200, arrival_id(&first)), "an exact replay");
    assert_eq!(stream_len(&app, "payhook:arrivals").await, 1);
    // No signed time, so no shared instant: the guard is its own key, kept
    // for the tolerance after the latest copy.
    let keys = guard_keys(&app).await;
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].rsplit(':').next().unwrap().starts_with('t'), "not a bucket: {keys:?}");
    let ttl_ms: i64 = app.redis.conn().await.pttl(&keys[0]).await.unwrap();
    assert!(ttl_ms > 110_000 && ttl_ms <= 120_000, "{ttl_ms} ms");
}

// ---- Item 7: WAIT travels with the append, and replays wait too -----------

fn waiting_for_one_replica(config: &mut Config) {
    config.redis.wait_replicas = 1;
    config.redis.wait_timeout_ms = 200;
}

#[tokio::test]
async fn without_a_replica_a_retry_of_an_unreplicated_delivery_is_not_answered_2xx() {
    let app = TestApp::spawn_with(Role::Ingress, waiting_for_one_replica).await;
    let body = json_bytes(&stripe_payment_intent("evt_w1", "pi_w1", 100, "eur"));
    let header = vec![("Stripe-Signature".to_owned(), stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body))];
    let first = app.post("stripe", &body, &header).await;
    let retry = app.post("stripe", &body, &header).await;
    assert_eq!(first.status(), 503, "stored on the primary only");
    assert_eq!(retry.status(), 503, "the identical retry is not on a replica either");
    assert!(retry.headers().contains_key("retry-after"));
    assert_eq!(stream_len(&app, "payhook:arrivals").await, 1, "the retry did not store a second copy");
}

#[tokio::test]
async fn with_a_replica_a_delivery_and_its_exact_replay_are_both_answered_200() {
    // Arrange: a timed source (guarded) and an untimed one (plain append).
    let untimed = source("shop", "shopify", toml::toml! { secrets = ["shopify_secret"] });
    let app = TestApp::spawn_with(Role::Ingress, |c| {
        waiting_for_one_replica(c);
        c.sources.push(untimed);
    })
    .await;
    let replica = RedisServer::start_replica_of(&app.redis).await;
    let body = json_bytes(&stripe_payment_intent("evt_w2", "pi_w2", 100, "eur"));
    let header = vec![("Stripe-Signature".to_owned(), stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body))];
    let shop_body = br#"{"id":1}"#;
    let shop_mac = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"shopify_secret").unwrap();
        mac.update(shop_body);
        STANDARD.encode(mac.finalize().into_bytes())
    };

    // Act
    let first = app.post("stripe", &body, &header).await;
    let replay = app.post("stripe", &body, &header).await;
    let shop = app.post("shop", shop_body, &[("X-Shopify-Hmac-Sha256".into(), shop_mac)]).await;

    // Assert
    assert_eq!([&first, &replay, &shop].map(|r| r.status().as_u16()), [200; 3]);
    assert_eq!(arrival_id(&replay), arrival_id(&first));
    let on_replica: u64 = replica.conn().await.xlen("payhook:arrivals").await.unwrap();
    assert_eq!(on_replica, 2, "each acknowledged arrival is on the replica");
}

// ---- Item 12: recording a rejection never delays the 401 ------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_requests_are_refused_at_once_while_redis_is_frozen_and_hold_no_slots() {
    // Arrange: two slots, a deadline far beyond what the test needs.
    let app = TestApp::spawn_with(Role::Ingress, |c| {
        c.server.max_concurrent_requests = 2;
        c.server.request_timeout_ms = 10_000;
    })
    .await;
    let body = json_bytes(&stripe_payment_intent("evt_f1", "pi_f1", 100, "eur"));
    let forged = vec![("Stripe-Signature".to_owned(), format!("t={},v1={}", Utc::now().timestamp(), "00".repeat(32)))];
    assert_eq!(app.post("stripe", &body, &forged).await.status(), 401, "Redis is connected");
    app.redis.pause();

    // Act: six forgeries at once, three times the slots.
    let sends = (0..6).map(|_| app.post("stripe", &body, &forged));
    let statuses: Vec<u16> = futures::future::join_all(sends).await.iter().map(|r| r.status().as_u16()).collect();
    // A genuine delivery now finds a free slot, waits for Redis, and is stored once Redis is back.
    let genuine = {
        let (http, url) = (app.http.clone(), format!("{}/webhooks/stripe", app.base));
        let header = stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body);
        tokio::spawn(async move { http.post(url).header("Stripe-Signature", header).body(body).send().await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.redis.resume();
    let genuine = genuine.await.unwrap().unwrap();

    // Assert
    assert_eq!(statuses, [401; 6], "refused without waiting on Redis, never shed");
    let genuine_status = genuine.status();
    assert_eq!(genuine_status, 200, "not shed: {:?}", genuine.text().await);
    let rejected = wait_for_rejections(&app, 7).await;
    assert_eq!(rejected.len(), 7, "recorded once Redis answered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_records_beyond_the_bound_are_dropped_and_counted() {
    let app = TestApp::spawn_with(Role::Ingress, |c| {
        c.server.max_concurrent_requests = 1000;
        c.server.request_timeout_ms = 20_000;
    })
    .await;
    let body = b"{}".to_vec();
    let forged = vec![("Stripe-Signature".to_owned(), format!("t={},v1={}", Utc::now().timestamp(), "00".repeat(32)))];
    app.redis.pause();
    let sends = (0..400).map(|_| app.post("stripe", &body, &forged));
    let statuses: Vec<u16> = futures::future::join_all(sends).await.iter().map(|r| r.status().as_u16()).collect();
    app.redis.resume();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let unrecorded = metric(&app.metrics().await, "payhook_rejections_unrecorded_total") as usize;
    let recorded = wait_for_rejections(&app, 400 - unrecorded).await.len();
    assert!(unrecorded >= 400 - 256, "at most 256 records wait for Redis: {unrecorded} dropped");
    assert_eq!(recorded + unrecorded, 400, "every rejection is either recorded or counted");
}
