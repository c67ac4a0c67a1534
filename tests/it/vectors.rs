//! Requests signed by the providers' official SDKs (the fixtures made by
//! `scripts/gen-vectors`) get the SDK's verdict over real HTTP: 200 when the
//! SDK accepts them, 401 when it refuses them.

use payhook::{app::Role, config::SourceConfig};
use serde_json::Value;

use crate::harness::{source, TestApp};

/// Providers that sign a timestamp. The fixtures were signed when they were
/// generated, so their sources get a wide tolerance here; time checks are
/// covered by the unit tests with a pinned clock.
const TIMED: [&str; 5] = ["stripe", "standard-webhooks", "paddle", "hmac", "paypal"];
const CENTURY: i64 = 100 * 365 * 24 * 3600;

struct Case {
    source: String,
    name: String,
    headers: Vec<(String, String)>,
    body: String,
    valid: bool,
}

/// Every case of every vector file, each with a source of its own.
fn cases() -> (Vec<Case>, Vec<SourceConfig>) {
    let mut files: Vec<_> = std::fs::read_dir("tests/fixtures/vectors")
        .expect("the vectors folder exists")
        .map(|e| e.expect("a readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut cases, mut sources) = (Vec::new(), Vec::new());
    for (f, path) in files.iter().enumerate() {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let provider = file["provider"].as_str().unwrap();
        for (c, case) in file["cases"].as_array().unwrap().iter().enumerate() {
            let source_name = format!("v{f}-{c}");
            let mut settings: toml::Table = serde_json::from_value(case["settings"].clone()).unwrap();
            if TIMED.contains(&provider) {
                settings.insert("tolerance_secs".into(), CENTURY.into());
            }
            sources.push(source(&source_name, provider, settings));
            cases.push(Case {
                source: source_name,
                name: format!("{provider}: {}", case["name"].as_str().unwrap()),
                headers: case["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().into()))
                    .collect(),
                body: case["body"].as_str().unwrap().to_owned(),
                valid: case["valid"].as_bool().unwrap(),
            });
        }
    }
    (cases, sources)
}

#[tokio::test]
async fn sdk_signed_requests_get_the_sdks_verdict_over_http() {
    let (cases, sources) = cases();
    let app = TestApp::spawn_with(Role::Ingress, |c| c.sources.extend(sources)).await;
    for case in &cases {
        let status = app.post(&case.source, case.body.as_bytes(), &case.headers).await.status().as_u16();
        let expected = if case.valid { 200 } else { 401 };
        assert_eq!(status, expected, "{}", case.name);
    }
    assert!(cases.len() >= 19, "every vector file was read: {}", cases.len());
}
