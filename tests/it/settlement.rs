//! What becomes of an arrival, decided the same way everywhere: each
//! notification of a batch settles on its own, and live processing, replay
//! and redrive make the same checks and give the same reasons.

use chrono::Utc;
use payhook::{app::Role, config::SourceConfig};
use serde_json::{json, Value};

use crate::harness::{
    config, source, standard_webhooks_headers, with_admin_token, RedisServer, Running, TestApp, SW_SECRET,
};

const TOKEN: &str = "admin-token-for-tests";
/// Adyen's HMAC key from its documentation, as hex.
const ADYEN_KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

/// A gateway with an Adyen source and the admin API.
async fn with_adyen() -> TestApp {
    TestApp::spawn_with(Role::All, |c| {
        c.sources.push(source("adyen", "adyen", toml::toml! { secrets = [ADYEN_KEY] }));
        with_admin_token(c, TOKEN);
    })
    .await
}

/// One `NotificationRequestItem` of a successful authorisation, signed as
/// Adyen documents it: HMAC-SHA256 (key hex-decoded) of
/// `psp:originalRef:merchantAccount:merchantRef:value:currency:eventCode:success`.
fn adyen_item(psp: &str, value: u64) -> Value {
    adyen_item_in(psp, value, "EUR")
}

fn adyen_item_in(psp: &str, value: u64, currency: &str) -> Value {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use hmac::{Hmac, Mac};
    let signed = format!("{psp}::TestMerchant:order_{psp}:{value}:{currency}:AUTHORISATION:true");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&hex::decode(ADYEN_KEY).unwrap()).unwrap();
    mac.update(signed.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    json!({"NotificationRequestItem": {
        "amount": {"currency": currency, "value": value}, "eventCode": "AUTHORISATION",
        "eventDate": "2024-07-25T23:03:30+02:00", "merchantAccountCode": "TestMerchant",
        "merchantReference": format!("order_{psp}"), "paymentMethod": "visa", "pspReference": psp,
        "success": "true", "additionalData": {"hmacSignature": signature}
    }})
}

fn adyen_batch(items: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"live": "false", "notificationItems": items})).unwrap()
}

async fn admin_get(app: &TestApp, path: &str) -> Value {
    let url = format!("{}/admin/{path}", app.admin);
    app.http.get(url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn one_conflicting_item_of_an_adyen_batch_dead_letters_alone_and_the_rest_is_published() {
    // Arrange: P1 is published.
    let app = with_adyen().await;
    let since = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let (p1, p2) = ("PSP1000000000001", "PSP2000000000002");
    let first = app.post("adyen", &adyen_batch(vec![adyen_item(p1, 1000)]), &[]).await;
    assert_eq!(first.status(), 200);
    app.wait_processed().await;
    assert_eq!(app.events(0).await.len(), 1);

    // Act: a batch of P1 with a changed amount (same pspReference) and P2.
    let batch = app.post("adyen", &adyen_batch(vec![adyen_item(p1, 1200), adyen_item(p2, 500)]), &[]).await;
    assert_eq!(batch.status(), 200);
    let batch_id = batch.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned();
    app.wait_processed().await;

    // Assert: P2 published, P1 once with its first amount, one letter for P1's item.
    let events = app.events(0).await;
    let amounts: Vec<(&str, u64)> = events
        .iter()
        .map(|e| (e["data"]["paymentId"].as_str().unwrap(), e["data"]["amount"].as_u64().unwrap()))
        .collect();
    assert_eq!(amounts, [(p1, 1000), (p2, 500)]);
    let letters = admin_get(&app, "dlq").await;
    assert_eq!(letters.as_array().map(Vec::len), Some(1), "{letters}");
    let letter = &letters[0];
    assert_eq!((letter["reason"].as_str(), letter["item"].as_u64()), (Some("idempotency_conflict"), Some(0)));
    assert_eq!((letter["arrival_id"].as_str(), letter["source"].as_str()), (Some(batch_id.as_str()), Some("adyen")));
    let stored = app.entries("payhook:dlq").await;
    assert_eq!(stored[0].get::<String>("item").as_deref(), Some("0"), "the stream names the item");

    // A redrive keeps P1's letter and publishes nothing more.
    let (status, redrive) = app.admin_post("dlq/redrive", TOKEN, json!({"all": true})).await;
    assert_eq!(status, 200, "{redrive}");
    assert_eq!((redrive["published"].as_u64(), redrive["failed"].as_u64()), (Some(0), Some(1)), "{redrive}");
    assert_eq!(redrive["reasons"], json!({"idempotency_conflict": 1}));
    assert_eq!(admin_get(&app, "dlq").await, letters, "the letter stays as it was");
    assert_eq!(app.events(0).await.len(), 2);

    // A replay of the range agrees, and so does its dry run.
    for dry_run in [true, false] {
        let (status, replay) = app.admin_post("replay", TOKEN, json!({"since": since, "dry_run": dry_run})).await;
        assert_eq!(status, 200, "{replay}");
        assert_eq!(replay["matched"], 2, "{replay}");
        assert_eq!((replay["published"].as_u64(), replay["duplicate"].as_u64()), (Some(0), Some(2)), "{replay}");
        assert_eq!((replay["failed"].as_u64(), &replay["reasons"]), (Some(1), &json!({"idempotency_conflict": 1})));
    }
    assert_eq!(app.events(0).await.len(), 2);
    assert_eq!(app.entries("payhook:dlq").await.len(), 1, "replay writes no dead letters");
}

#[tokio::test]
async fn an_item_of_an_adyen_batch_that_cannot_be_normalized_dead_letters_alone() {
    let app = with_adyen().await;
    let (p1, p2) = ("PSP3000000000003", "PSP4000000000004");
    let batch = adyen_batch(vec![adyen_item_in(p1, 1000, "ZZZ"), adyen_item(p2, 700)]);
    assert_eq!(app.post("adyen", &batch, &[]).await.status(), 200);
    app.wait_processed().await;
    let events = app.events(0).await;
    assert_eq!(events.len(), 1, "P2 is published although P1 is not a currency");
    assert_eq!(events[0]["data"]["paymentId"], p2);
    let letters = admin_get(&app, "dlq").await;
    assert_eq!(letters.as_array().map(Vec::len), Some(1), "{letters}");
    assert_eq!((letters[0]["reason"].as_str(), letters[0]["item"].as_u64()), (Some("unsupported_currency"), Some(0)));
}

/// `POST {admin}/admin/{path}` of `running` with the token, answered 200.
async fn admin_post(running: &Running, path: &str, body: Value) -> Value {
    let url = format!("{}/admin/{path}", running.admin);
    let response = reqwest::Client::new().post(url).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Source `shop`, run by `provider`.
fn shop(provider: &str) -> SourceConfig {
    let mut settings = match provider {
        "hmac" => toml::toml! { secrets = ["shop_secret"] header = "X-Shop-Signature" },
        _ => toml::toml! { secrets = [SW_SECRET] },
    };
    let mapping = toml::toml! {
        event_type = "/type"
        succeeded_types = ["payment.succeeded"]
        payment_id = "/data/payment_id"
        amount = "/data/total_amount"
        currency = "/data/currency"
    };
    settings.insert("mapping".into(), mapping.into());
    source("shop", provider, settings)
}

#[tokio::test]
async fn a_source_whose_provider_changed_gets_the_same_reason_live_on_replay_and_on_redrive() {
    // Arrange: an ingress-only gateway stores a delivery for `shop`, a
    // Standard Webhooks source.
    let redis = RedisServer::start();
    let shop_run_by = |provider: &str| {
        let mut config = config(&redis);
        config.sources.push(shop(provider));
        with_admin_token(&mut config, TOKEN);
        config
    };
    let ingress = Running::start(shop_run_by("standard-webhooks"), Role::Ingress).await;
    let body = serde_json::to_vec(
        &json!({"type": "payment.succeeded", "data": {"payment_id": "pay_m", "total_amount": 700, "currency": "EUR"}}),
    )
    .unwrap();
    let headers = standard_webhooks_headers("webhook", SW_SECRET, "msg_m", Utc::now().timestamp(), &body);
    let mut request = reqwest::Client::new().post(format!("{}/webhooks/shop", ingress.base)).body(body.clone());
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200);
    ingress.stop().await;
    let since = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();

    // Act: the source is re-pointed at another provider, the gateway restarts.
    let switched = Running::start(shop_run_by("hmac"), Role::All).await;
    redis.wait_processed().await;
    let live: Vec<String> =
        redis.entries("payhook:dlq").await.iter().map(|e| e.get::<String>("reason").unwrap()).collect();
    let replay = admin_post(&switched, "replay", json!({"since": since})).await;
    let dry_run = admin_post(&switched, "replay", json!({"since": since, "dry_run": true})).await;
    let redrive = admin_post(&switched, "dlq/redrive", json!({"all": true})).await;

    // Assert: one reason everywhere, and the letter stays.
    assert_eq!(live, ["provider_mismatch"]);
    for report in [&replay, &dry_run, &redrive] {
        assert_eq!((report["failed"].as_u64(), &report["reasons"]), (Some(1), &json!({"provider_mismatch": 1})));
    }
    assert_eq!(redis.entries("payhook:dlq").await.len(), 1);
    switched.stop().await;

    // With the provider restored, a dry run says what would be published (and
    // publishes nothing), and a redrive publishes it once.
    let restored = Running::start(shop_run_by("standard-webhooks"), Role::All).await;
    let dry_run = admin_post(&restored, "replay", json!({"since": since, "dry_run": true})).await;
    assert_eq!((dry_run["published"].as_u64(), dry_run["failed"].as_u64()), (Some(1), Some(0)), "{dry_run}");
    assert!(redis.events(0).await.is_empty(), "a dry run publishes nothing");
    let redrive = admin_post(&restored, "dlq/redrive", json!({"all": true})).await;
    assert_eq!((redrive["published"].as_u64(), redrive["failed"].as_u64()), (Some(1), Some(0)), "{redrive}");
    assert!(redis.entries("payhook:dlq").await.is_empty(), "the redriven letter left the DLQ");
    assert_eq!(redis.events(0).await.len(), 1);
    restored.stop().await;
}
