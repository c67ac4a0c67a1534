//! Every provider end to end: its signed sample in, one schema-valid
//! `payment.succeeded.v1` out; and the generic `hmac` scheme standing in for
//! named providers by config alone.

use chrono::Utc;
use payhook::{
    app::{Role, Runtime},
    providers,
};
use serde_json::Value;

use crate::harness::{config, source, sources, RedisServer, TestApp};

/// One source per provider, as an operator would configure it.
const SOURCES: &str = r#"
[[sources]]
name = "adyen"
provider = "adyen"
secrets = ["44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"]
basic_auth_username = "adyen"
basic_auth_password = "s3cret"
[[sources]]
name = "braintree"
provider = "braintree"
public_key = "pub_test"
private_key = "priv_test"
[[sources]]
name = "checkout"
provider = "checkout"
secrets = ["cko_signature_key"]
[[sources]]
name = "coinbase"
provider = "coinbase"
secrets = ["cc_shared_secret"]
[[sources]]
name = "lemonsqueezy"
provider = "lemonsqueezy"
secrets = ["ls_signing_secret"]
[[sources]]
name = "paddle"
provider = "paddle"
secrets = ["pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"]
[[sources]]
name = "paypal"
provider = "paypal"
webhook_id = "1JE4291016473214C"
cert_path = "tests/fixtures/vectors/paypal-cert.pem"
signing_key_path = "tests/fixtures/vectors/paypal-key.pem"
[[sources]]
name = "paystack"
provider = "paystack"
secrets = ["sk_test_paystack"]
[[sources]]
name = "razorpay"
provider = "razorpay"
secrets = ["rzp_webhook_secret"]
[[sources]]
name = "shopify"
provider = "shopify"
secrets = ["shopify_client_secret"]
[[sources]]
name = "square"
provider = "square"
secrets = ["square_signature_key"]
notification_url = "https://payhook.example.com/webhooks/square"
[[sources]]
name = "generic"
provider = "hmac"
secrets = ["generic_secret"]
header = "X-Signature-256"
prefix = "sha256="
timestamp_header = "X-Timestamp"
signed_content = "{timestamp}.{body}"
[sources.mapping]
event_type = "/type"
succeeded_types = ["payment.succeeded"]
payment_id = "/data/id"
amount = "/data/amount"
amount_unit = "major"
currency = "/data/currency"
"#;

const NAMED: [&str; 12] = [
    "adyen",
    "braintree",
    "checkout",
    "coinbase",
    "lemonsqueezy",
    "paddle",
    "paypal",
    "paystack",
    "razorpay",
    "shopify",
    "square",
    "generic",
];

/// A gateway with [`SOURCES`], and their providers to sign with.
async fn with_every_provider(role: Role) -> (Runtime, TestApp) {
    let redis = RedisServer::start();
    let mut config = config(&redis);
    config.sources.extend(sources(SOURCES));
    let runtime = Runtime::build(&config).unwrap();
    (runtime, TestApp::spawn_on(redis, config, role).await)
}

#[tokio::test]
async fn every_providers_signed_sample_becomes_one_schema_valid_event() {
    let (runtime, app) = with_every_provider(Role::All).await;
    for name in ["stripe", "dodo"].iter().chain(NAMED.iter()) {
        let source = runtime.sources.get(name).unwrap();
        let (body, headers) = providers::signed_sample(source, None, Utc::now());
        let response = app.post(name, &body, &headers).await;
        assert_eq!(response.status(), 200, "{name}: {:?}", response.text().await);
    }
    app.wait_processed().await;
    let events = app.events(0).await;
    let sources: Vec<&str> = events.iter().map(|e| e["data"]["source"].as_str().unwrap()).collect();
    assert_eq!(events.len(), NAMED.len() + 2, "one event per provider: {sources:?}");
    for name in NAMED {
        assert!(sources.contains(&name), "{name} published");
    }
    assert!(app.entries("payhook:dlq").await.is_empty());
}

#[tokio::test]
async fn adyen_is_answered_with_its_required_body() {
    let (runtime, app) = with_every_provider(Role::Ingress).await;
    let (body, headers) = providers::signed_sample(runtime.sources.get("adyen").unwrap(), None, Utc::now());
    let response = app.post("adyen", &body, &headers).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-payhook-arrival-id"));
    assert_eq!(response.text().await.unwrap(), "[accepted]");
    let stored = app.entries("payhook:arrivals").await;
    assert!(!stored[0].get::<String>("headers").unwrap().contains("authorization"), "credentials are never stored");
}

/// The generic scheme, configured like `provider`, gets the provider SDK's
/// verdict on each of its vectors that use `header` and need no setting but
/// secrets (an extra credential such as Checkout.com's `Authorization` key is
/// beyond a signature scheme).
async fn hmac_reproduces(provider: &str, header: &str, encoding: &str) -> usize {
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("tests/fixtures/vectors/{provider}.json")).unwrap())
            .unwrap();
    let cases: Vec<&Value> = file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["headers"].get(header).is_some() && c["settings"].as_object().unwrap().len() == 1)
        .collect();
    let as_hmac = cases.iter().enumerate().map(|(i, case)| {
        let secrets: Vec<String> = serde_json::from_value(case["settings"]["secrets"].clone()).unwrap();
        let mut settings = toml::toml! {
            header = header
            encoding = encoding
            [mapping]
            event_type = "/event"
            succeeded_types = ["payment.captured"]
            payment_id = "/id"
            amount = "/amount"
            currency = "/currency"
        };
        settings.insert("secrets".into(), secrets.into());
        source(&format!("as-{i}"), "hmac", settings)
    });
    let app = TestApp::spawn_with(Role::Ingress, |c| c.sources.extend(as_hmac)).await;
    for (i, case) in cases.iter().enumerate() {
        let headers: Vec<(String, String)> =
            case["headers"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().into())).collect();
        let status = app.post(&format!("as-{i}"), case["body"].as_str().unwrap().as_bytes(), &headers).await.status();
        let expected = if case["valid"].as_bool().unwrap() { 200 } else { 401 };
        assert_eq!(status, expected, "hmac as {provider}: {}", case["name"]);
    }
    cases.len()
}

#[tokio::test]
async fn the_generic_hmac_scheme_reproduces_named_providers_by_config_alone() {
    assert!(hmac_reproduces("razorpay", "X-Razorpay-Signature", "hex").await >= 5);
    assert!(hmac_reproduces("shopify", "X-Shopify-Hmac-Sha256", "base64").await >= 5);
    assert!(hmac_reproduces("checkout", "Cko-Signature", "hex").await >= 5);
}
