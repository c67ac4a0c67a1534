//! Item 3: Adyen signs `psp:origRef:merchantAccount:merchantRef:value:currency:eventCode:success`
//! without escaping, and its top-level `live` flag is not signed at all.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::rejected_reasons;
use payhook::{app::Role, config::SourceConfig};

use crate::harness::{source, TestApp};

/// An Adyen HMAC key, hex as the Customer Area shows it.
const KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

fn sources() -> [SourceConfig; 3] {
    [
        source("adyen", "adyen", toml::toml! { secrets = [KEY] }),
        source("adyen_accounts", "adyen", toml::toml! { secrets = [KEY] merchant_accounts = ["TestMerchant"] }),
        source("adyen_live", "adyen", toml::toml! { secrets = [KEY] livemode = true }),
    ]
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(Role::All, |c| c.sources.extend(sources())).await
}

/// Adyen's signing string, written from its documentation: the eight fields
/// joined with `:`, absent ones empty, no escaping.
fn hmac_signature(item: &Value) -> String {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let fields = [
        "/pspReference",
        "/originalReference",
        "/merchantAccountCode",
        "/merchantReference",
        "/amount/value",
        "/amount/currency",
        "/eventCode",
        "/success",
    ];
    let signed: Vec<String> = fields.iter().map(|f| text(item.pointer(f))).collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(KEY).unwrap()).unwrap();
    mac.update(signed.join(":").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A genuine AUTHORISATION item for `merchant`, signed.
fn authorisation(psp: &str, merchant: &str, reference: &str) -> Value {
    let mut item = json!({
        "pspReference": psp, "merchantAccountCode": merchant, "merchantReference": reference,
        "amount": {"value": 4200, "currency": "EUR"}, "eventCode": "AUTHORISATION", "success": "true",
        "eventDate": "2026-06-02T09:30:00+02:00", "paymentMethod": "visa"
    });
    item["additionalData"] = json!({"hmacSignature": hmac_signature(&item)});
    item
}

/// A notification body; `live` absent when `None`.
fn notification(live: Option<&str>, items: &[Value]) -> Vec<u8> {
    let items: Vec<Value> = items.iter().map(|i| json!({"NotificationRequestItem": i})).collect();
    let mut body = json!({"notificationItems": items});
    if let Some(live) = live {
        body["live"] = json!(live);
    }
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn a_genuine_adyen_item_with_its_fields_shifted_under_the_same_hmac_is_refused() {
    // Arrange: a genuine item whose merchant reference holds a ':'.
    let app = spawn().await;
    let genuine = authorisation("8815000000000042", "TestMerchant", "order:42");
    let response = app.post("adyen", &notification(Some("false"), std::slice::from_ref(&genuine)), &[]).await;
    assert_eq!(response.status(), 200);
    app.wait_processed().await;
    assert_eq!(app.events(0).await.len(), 1, "the genuine item is published once");

    // Act: the shift. The signing string, and so the HMAC, is unchanged.
    let mut shifted = genuine.clone();
    shifted["pspReference"] = json!("8815000000000042:");
    shifted["originalReference"] = json!("TestMerchant");
    shifted["merchantAccountCode"] = json!("order");
    shifted["merchantReference"] = json!("42");
    assert_eq!(hmac_signature(&shifted), hmac_signature(&genuine), "the shift keeps the signature");
    let response = app.post("adyen", &notification(Some("false"), &[shifted]), &[]).await;

    // Assert
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"error": "invalid_signature"}));
    assert_eq!(rejected_reasons(&app.redis, 1).await, ["invalid_signature"]);
    app.wait_processed().await;
    assert_eq!(app.events(0).await.len(), 1, "no second event for the same money");
    assert_eq!(app.entries("payhook:arrivals").await.len(), 1, "the shifted copy is not stored");
}

#[tokio::test]
async fn an_adyen_batch_with_an_item_for_an_unlisted_merchant_account_is_refused() {
    // Arrange
    let app = spawn().await;
    let listed = authorisation("8815000000000051", "TestMerchant", "order-51");
    let other = authorisation("8815000000000052", "OtherMerchant", "order-52");

    // Act
    let refused = app.post("adyen_accounts", &notification(Some("false"), &[listed.clone(), other]), &[]).await;
    let accepted = app.post("adyen_accounts", &notification(Some("false"), &[listed]), &[]).await;

    // Assert
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap(), json!({"error": "invalid_signature"}));
    assert_eq!(accepted.status(), 200);
    assert_eq!(rejected_reasons(&app.redis, 1).await, ["invalid_signature"]);
    app.wait_processed().await;
    let events = app.events(0).await;
    let payments: Vec<&str> = events.iter().map(|e| e["data"]["paymentId"].as_str().unwrap()).collect();
    assert_eq!(payments, ["8815000000000051"]);
}

#[tokio::test]
async fn adyen_livemode_comes_from_the_source_and_a_flipped_live_flag_is_a_dead_letter() {
    // Arrange: a test source (the default) and a live one.
    let app = spawn().await;
    let post = |source: &'static str, live: Option<&'static str>, psp: &'static str| {
        let body = notification(live, &[authorisation(psp, "TestMerchant", psp)]);
        let app = &app;
        async move { app.post(source, &body, &[]).await.status() }
    };

    // Act: `live` is unsigned, so anyone holding one delivery can flip it.
    let statuses = [
        post("adyen", Some("false"), "8815000000000061").await,
        post("adyen", Some("true"), "8815000000000062").await,
        post("adyen_live", Some("true"), "8815000000000063").await,
        post("adyen_live", None, "8815000000000064").await,
        post("adyen_live", Some("false"), "8815000000000065").await,
    ];

    // Assert: all stored (the ingress only verifies); processing decides.
    assert_eq!(statuses, [200; 5]);
    app.wait_processed().await;
    let events = app.events(0).await;
    let mut livemodes: Vec<(String, bool)> = events
        .iter()
        .map(|e| (e["data"]["paymentId"].as_str().unwrap().to_owned(), e["data"]["livemode"].as_bool().unwrap()))
        .collect();
    livemodes.sort();
    assert_eq!(
        livemodes,
        [
            ("8815000000000061".to_owned(), false),
            ("8815000000000063".to_owned(), true),
            ("8815000000000064".to_owned(), true),
        ]
    );
    let dlq = app.entries("payhook:dlq").await;
    let mut letters: Vec<(String, String)> =
        dlq.iter().map(|e| (e.get::<String>("source").unwrap(), e.get::<String>("reason").unwrap())).collect();
    letters.sort();
    assert_eq!(
        letters,
        [
            ("adyen".to_owned(), "livemode_mismatch".to_owned()),
            ("adyen_live".to_owned(), "livemode_mismatch".to_owned()),
        ]
    );
}
