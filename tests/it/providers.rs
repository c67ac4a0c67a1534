//! Every provider end to end: its signed sample in, one schema-valid
//! `payment.succeeded.v1` out; and the generic `hmac` scheme standing in for
//! named providers by config alone.

use chrono::Utc;
use payhook::{
    app::{Role, Runtime},
    config::{Config, SourceConfig},
    providers,
};
use serde_json::Value;

use crate::harness::{sources, TestApp};

/// The sources of `tests/fixtures/sources.toml` (one or more per provider),
/// named `e2e-<name>` beside the harness's own `stripe` and `dodo`, and
/// which of them can sign (a source fetching PayPal's certificates verifies
/// nothing here, since nothing is fetched).
fn fixture_sources() -> (Vec<SourceConfig>, Vec<String>) {
    let mut doc: toml::Table =
        toml::from_str(&std::fs::read_to_string("tests/fixtures/sources.toml").unwrap()).unwrap();
    let mut signing = Vec::new();
    for table in doc.get_mut("sources").unwrap().as_array_mut().unwrap() {
        let table = table.as_table_mut().unwrap();
        let name = format!("e2e-{}", table["name"].as_str().unwrap());
        if !table.contains_key("cert_url_allowlist") {
            signing.push(name.clone());
        }
        table.insert("name".into(), name.into());
    }
    (sources(&toml::to_string(&doc).unwrap()), signing)
}

/// A gateway of `role` with the harness's sources and `extra`, and the
/// runtime objects of the same config (to sign as each source would).
async fn with_sources(role: Role, extra: Vec<SourceConfig>) -> (Runtime, TestApp) {
    let mut built = None;
    let app = TestApp::spawn_with(role, |c: &mut Config| {
        c.sources.extend(extra);
        built = Some(Runtime::build(c).expect("the fixture sources build"));
    })
    .await;
    (built.expect("the config was edited"), app)
}

#[tokio::test]
async fn every_providers_signed_sample_becomes_one_schema_valid_event() {
    let (fixture, signing) = fixture_sources();
    let (runtime, app) = with_sources(Role::All, fixture).await;
    let posted: Vec<&str> = ["stripe", "dodo"].into_iter().chain(signing.iter().map(String::as_str)).collect();
    for name in &posted {
        let source = runtime.sources.get(name).unwrap();
        let (body, headers) = providers::signed_sample(source, None, Utc::now());
        let response = app.post(name, &body, &headers).await;
        assert_eq!(response.status(), 200, "{name}: {:?}", response.text().await);
    }
    app.wait_processed().await;
    let events = app.events(0).await;
    let sources: Vec<&str> = events.iter().map(|e| e["data"]["source"].as_str().unwrap()).collect();
    assert_eq!(events.len(), posted.len(), "one event per source: {sources:?}");
    for name in &posted {
        assert!(sources.contains(name), "{name} published");
    }
    assert!(app.entries("payhook:dlq").await.is_empty());
}

#[tokio::test]
async fn adyen_is_answered_with_its_required_body() {
    let (runtime, app) = with_sources(Role::Ingress, fixture_sources().0).await;
    let (body, headers) = providers::signed_sample(runtime.sources.get("e2e-adyen").unwrap(), None, Utc::now());
    let response = app.post("e2e-adyen", &body, &headers).await;
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
    let mut sources = String::new();
    for (i, case) in cases.iter().enumerate() {
        let secrets = serde_json::to_string(&case["settings"]["secrets"]).unwrap();
        sources.push_str(&format!(
            "[[sources]]\nname = \"as-{i}\"\nprovider = \"hmac\"\nsecrets = {secrets}\nheader = \"{header}\"\nencoding = \"{encoding}\"\n\
             [sources.mapping]\nevent_type = \"/event\"\nsucceeded_types = [\"payment.captured\"]\npayment_id = \"/id\"\n\
             amount = \"/amount\"\ncurrency = \"/currency\"\n"
        ));
    }
    let (_, app) = with_sources(Role::Ingress, crate::harness::sources(&sources)).await;
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
