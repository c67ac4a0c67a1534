//! Requests signed by the providers' official SDKs (fixtures made by
//! `scripts/gen-vectors`) get the SDK's verdict over real HTTP.

use serde_json::Value;

use crate::harness::{TestApp, TestConfig};

/// The fixtures are old (signed when generated), so this gateway's tolerance
/// is wide: time checks are covered by the unit tests with a pinned clock.
const CENTURY: u64 = 100 * 365 * 24 * 3600;

async fn check(app: &TestApp, source: &str, file: &str) -> usize {
    let vectors: Value = serde_json::from_str(file).unwrap();
    let mut checked = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let secrets = case["secrets"].as_array().unwrap();
        if secrets.len() != 1 || secrets[0] != configured_secret(source) {
            continue; // vectors for other secret lists are covered by unit tests
        }
        let headers: Vec<(String, String)> = match case.get("header") {
            Some(h) => vec![("Stripe-Signature".into(), h.as_str().unwrap().into())],
            None => case["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().into()))
                .collect(),
        };
        let status = app.post(source, case["payload"].as_str().unwrap().as_bytes(), &headers).await.status();
        let expected = if case["valid"].as_bool().unwrap() { 200 } else { 401 };
        assert_eq!(status, expected, "{source}: {}", case["name"]);
        checked += 1;
    }
    checked
}

fn configured_secret(source: &str) -> &'static str {
    match source {
        "stripe" => crate::harness::STRIPE_SECRET,
        _ => crate::harness::SW_SECRET,
    }
}

#[tokio::test]
async fn sdk_signed_requests_get_the_sdks_verdict_over_http() {
    let app = TestApp::spawn_with(TestConfig { tolerance_secs: CENTURY, ..TestConfig::ingress() }).await;
    let stripe = check(&app, "stripe", include_str!("../fixtures/vectors/stripe.json")).await;
    let sw = check(&app, "dodo", include_str!("../fixtures/vectors/standard-webhooks.json")).await;
    assert!(stripe >= 7 && sw >= 8, "stripe {stripe}, standard webhooks {sw}");
}
