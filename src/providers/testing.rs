//! Test support shared by every provider file: build a provider from
//! settings, the sources of `tests/fixtures/sources.toml`, verify SDK vectors
//! at their pinned time, make arrivals.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Rejection, SignatureMatch, Source, SourceTable, Verification, Verified, VerifiedArrival, VerifyError};
use crate::{
    config::{Env, SourceConfig},
    domain::{Arrival, ArrivalId, Normalized, PaymentFacts, RequestId, SourceName, WebhookRequest},
};

/// A source named `test` of `provider`, configured from JSON `settings`.
pub fn source(provider: &str, settings: &Value) -> Result<Source, crate::config::ConfigError> {
    let table: toml::Table = serde_json::from_value(settings.clone()).expect("settings are a TOML-able object");
    let config = SourceConfig::new(SourceName::parse("test").expect("a valid name"), provider, table);
    Source::configure(&config, config.settings(0, &Env::default()))
}

/// The sources of `tests/fixtures/sources.toml`, built once: one or more per
/// registered provider, with test secrets (the end-to-end test sends the same).
pub fn fixture_sources() -> &'static SourceTable {
    static SOURCES: OnceLock<SourceTable> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let text = include_str!("../../tests/fixtures/sources.toml");
        let doc: toml::Table = toml::from_str(text).expect("sources.toml is TOML");
        let tables = doc["sources"].as_array().expect("sources.toml lists [[sources]]");
        let env = Env::default();
        let sources = tables.iter().enumerate().map(|(i, table)| {
            let table = table.as_table().expect("each source is a table").clone();
            let config = SourceConfig::parse(i, table).unwrap_or_else(|e| panic!("sources.toml: {e}"));
            Source::configure(&config, config.settings(i, &env)).unwrap_or_else(|e| panic!("sources.toml: {e}"))
        });
        let table = SourceTable::new(sources.collect());
        assert_eq!(table.len(), tables.len(), "sources.toml names each source once");
        table
    })
}

/// The source of `tests/fixtures/sources.toml` named `name`.
pub fn fixture(name: &str) -> &'static Source {
    fixture_sources().get(name).unwrap_or_else(|| panic!("tests/fixtures/sources.toml has no source {name}"))
}

/// The request as the ingress would build it: only the headers the source keeps.
pub fn request(source: &Source, headers: &[(&str, &str)], body: &[u8], received_at: i64) -> WebhookRequest {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::try_from(*name).expect("test header names are valid");
        map.append(name, HeaderValue::from_str(value).expect("test header values are valid"));
    }
    WebhookRequest {
        headers: source.keep_headers(&map),
        body: Bytes::copy_from_slice(body),
        received_at: DateTime::from_timestamp(received_at, 0).expect("a valid test time"),
    }
}

/// The verdict of a verification that fetches nothing.
///
/// # Panics
/// When the scheme would fetch a key (nothing is fetched in unit tests).
fn decided(verification: Verification<'_>) -> Result<Verified, Rejection> {
    match verification {
        Verification::Decided(verdict) => verdict,
        Verification::Fetching(_) => panic!("test sources fetch no keys"),
    }
}

/// Verifies `request` on arrival (credential and signature), at once.
pub fn verified_now(source: &Source, request: &WebhookRequest) -> Result<Verified, Rejection> {
    decided(source.verify(request))
}

/// [`verified_now`], the matching secret only.
pub fn verify_now(source: &Source, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
    verified_now(source, request).map(|verified| verified.matched)
}

/// Verifies a stored `request` again (its signature alone), at once.
pub fn reverify_now(source: &Source, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
    decided(source.reverify(request)).map(|verified| verified.matched)
}

/// The verdict where nothing is fetched: a verification that would fetch a
/// key is dropped unpolled and counts as refused, as it is without the key.
/// `stored`: verify again as processing does (the signature alone).
pub fn verify_unfetched(source: &Source, request: &WebhookRequest, stored: bool) -> Result<SignatureMatch, Rejection> {
    match if stored { source.reverify(request) } else { source.verify(request) } {
        Verification::Decided(verdict) => verdict.map(|verified| verified.matched),
        Verification::Fetching(_) => Err(Rejection::InvalidSignature),
    }
}

/// What the ingress makes of `request`: [`super::verify`], at once.
pub fn arrive(source: &Source, request: WebhookRequest, id: RequestId) -> Result<VerifiedArrival, VerifyError> {
    verified_now(source, &request)?;
    let deadline = tokio::time::Instant::now();
    futures::FutureExt::now_or_never(super::verify(source, request, id, deadline)).expect("decided at once")
}

/// The replay guard of a request that verifies (none: the provider names no
/// delivery), as the ingress would compute it.
///
/// # Panics
/// When the request does not verify.
pub fn guard(source: &Source, headers: &[(&str, &str)], body: &[u8], received_at: i64) -> Option<super::Guard> {
    let request = request(source, headers, body, received_at);
    let verified = arrive(source, request, RequestId::generate()).expect("the test request verifies");
    verified.guard().cloned()
}

/// The arrival the processor would read for `request`.
pub fn arrival(source: &Source, request: WebhookRequest) -> Arrival {
    Arrival {
        id: ArrivalId::parse("1700000000000-0").expect("a valid id"),
        source: source.name.clone(),
        provider: source.provider_name.into(),
        request,
        request_id: RequestId::generate(),
    }
}

/// Normalizes `body` (with `headers`) through `source`.
pub fn normalize(
    source: &Source,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<Normalized>, super::NormalizeError> {
    let request = request(source, headers, body, Utc::now().timestamp());
    // The first failing notification stands for the delivery in these tests.
    source.normalize(&arrival(source, request)).and_then(|items| items.into_iter().collect())
}

/// The payment facts of `body`, panicking unless it is exactly one payment success.
pub fn payment(source: &Source, headers: &[(&str, &str)], body: &[u8]) -> PaymentFacts {
    match normalize(source, headers, body).as_deref() {
        Ok([Normalized::Payment(facts)]) => facts.clone(),
        other => panic!("expected one payment, got {other:?}"),
    }
}

/// Asserts that every case of a vector file (`tests/fixtures/vectors/*.json`)
/// gets the SDK's verdict at its pinned time. Returns the number of cases.
pub fn check_vectors(file: &str) -> usize {
    let file: Value = serde_json::from_str(file).expect("vector files are JSON");
    let provider = file["provider"].as_str().expect("vector files name their provider");
    let cases = file["cases"].as_array().expect("vector files hold cases");
    for case in cases {
        let name = &case["name"];
        let source = source(provider, &case["settings"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let headers: Vec<(&str, &str)> = case["headers"]
            .as_object()
            .expect("cases have headers")
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().expect("header values are strings")))
            .collect();
        let body = case["body"].as_str().expect("cases have a body").as_bytes();
        let at = case["received_at"].as_i64().expect("cases have a time");
        let verdict = verify_now(&source, &request(&source, &headers, body, at));
        assert_eq!(verdict.is_ok(), case["valid"].as_bool().expect("cases have a verdict"), "{name}: {verdict:?}");
    }
    cases.len()
}

/// Signs a fresh sample and checks it verifies and normalizes to a payment.
pub fn sample_round_trip(source: &Source) -> PaymentFacts {
    let at = Utc::now();
    let body = source.sample(at);
    assert!(!String::from_utf8_lossy(&body).contains("{{"), "every placeholder of the sample is filled in");
    let signed = source.sign(&body, at);
    let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let request = request(source, &headers, &body, at.timestamp());
    assert!(verify_now(source, &request).is_ok(), "a signed sample verifies");
    match source.normalize(&arrival(source, request)).as_deref() {
        Ok([Ok(Normalized::Payment(facts))]) => facts.clone(),
        other => panic!("a sample is one payment, got {other:?}"),
    }
}
