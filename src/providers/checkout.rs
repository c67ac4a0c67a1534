//! Checkout.com: `Cko-Signature` is the lowercase hex HMAC-SHA256 of the raw
//! body, keyed by the webhook's signature key used as UTF-8 text: a preset of
//! the generic scheme. No timestamp is signed, so replays are stopped by
//! event-id dedupe only. Checkout.com can also send a static "Authorization
//! header key" in `Authorization`; when the source configures one
//! (`authorization_key`), a request must carry it too (see `signature.rs`).
//!
//! Normalizes `payment_captured` (funds captured) and, when the source lists
//! it in `succeeded_on`, `payment_approved` (an authorisation, which is a
//! success only with auto-capture). Both key the payment by `data.id`
//! (`pay_…`), so a merchant subscribed to both gets one event per payment;
//! `data.action_id` names the action, not the payment. Amounts are minor
//! units. The provider event id is the event's `id` (`evt_…`). The payload
//! needs no more than pointers, so the normalizer is a mapping.
//!
//! UNCONFIRMED, and how payhook handles it:
//! - Whether the signature key is decoded before use: used verbatim (UTF-8),
//!   as the docs' "using your webhook's signature key as the hash key" reads.
//! - Which of `created_on` (older examples) and `timestamp` (newer ones) is
//!   current: either is accepted, then `data.processed_on`.
//! - The payload does not say live or test (the sandbox host in `_links` is
//!   only a heuristic), so it is the source key `livemode` (default false).
//!
//! Config keys: `secrets`/`secrets_env` (signature keys),
//! `succeeded_on` (`["payment_captured"]`; may add `"payment_approved"`),
//! `authorization_key`/`authorization_key_env` (optional), `livemode` (false).

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

const SIGNATURE: Preset = Preset(&["cko-signature"], Algorithm::Sha256, Encoding::Hex);

/// The events that may mean "payment succeeded", by configuration.
const SUCCESS_EVENTS: [&str; 2] = ["payment_captured", "payment_approved"];

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let scheme = Hmac::preset(&SIGNATURE, settings)?;
    let succeeded_types = super::succeeded_on(settings, &SUCCESS_EVENTS, &SUCCESS_EVENTS[..1], Some("event type"))?;
    let credential = Credential::key(settings, "authorization_key")?;
    let mapping = Mapping {
        livemode: settings.bool("livemode")?.unwrap_or(false),
        succeeded_types,
        event_id: EventId::Field("/id".into()),
        occurred_at: ["/created_on", "/timestamp", "/data/processed_on"].map(String::from).to_vec(),
        merchant_reference: vec!["/data/reference".into()],
        customer_id: Some("/data/customer/id".into()),
        payment_method: Some("/data/source/type".into()),
        ..Mapping::fixed(
            "checkout",
            include_str!("samples/checkout.json"),
            ["/type", "/data/id", "/data/amount", "/data/currency"],
            &[],
        )
    };
    Ok(Provider::new(scheme, mapping).with_credential(credential))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        domain::Normalized,
        providers::{
            testing::{self, payment},
            Rejection, SignatureMatch, Source,
        },
    };

    const CAPTURED: &str = include_str!("../../tests/fixtures/payloads/checkout-payment_captured.json");
    const APPROVED: &str = include_str!("../../tests/fixtures/payloads/checkout-payment_approved.json");

    fn checkout(extra: Value) -> Source {
        let mut settings = json!({"secrets": ["sig_key"]});
        settings.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        testing::source("checkout", &settings).unwrap()
    }

    fn verify(source: &Source, headers: &[(&str, &str)], body: &str) -> Result<SignatureMatch, Rejection> {
        testing::verify_now(source, &testing::request(source, headers, body.as_bytes(), 1_700_000_000))
    }

    #[test]
    fn a_configured_authorization_key_is_required() {
        let source = checkout(json!({"authorization_key": "auth_key_1"}));
        let sig = source.sign(b"{}", Utc::now());
        let cko = sig.iter().find(|(k, _)| k == "cko-signature").unwrap().1.clone();
        assert!(verify(&source, &[("Cko-Signature", &cko), ("Authorization", "auth_key_1")], "{}").is_ok());
        assert_eq!(verify(&source, &[("Cko-Signature", &cko)], "{}"), Err(Rejection::MissingSignature));
        let wrong = [("Cko-Signature", cko.as_str()), ("Authorization", "auth_key_2")];
        assert_eq!(verify(&source, &wrong, "{}"), Err(Rejection::InvalidSignature));
        // Without the option the header is not needed.
        let plain = checkout(json!({}));
        let sig = plain.sign(b"{}", Utc::now());
        assert!(verify(&plain, &[("Cko-Signature", &sig[0].1)], "{}").is_ok());
    }

    #[test]
    fn documented_payment_captured_normalizes() {
        let facts = payment(&checkout(json!({})), &[], CAPTURED.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "pay_waji5li3mqtetnaor77xmow4bq");
        assert_eq!((facts.amount.get(), facts.currency.code()), (10000, "EUR"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("ORD-5023-4E89"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("evt_6aznipgxbuaure3qen5qbzyswy"));
        assert_eq!(facts.occurred_at.to_rfc3339(), "2019-06-07T08:25:22+00:00");
        assert_eq!(facts.customer_id, None);
        assert!(!facts.livemode);
    }

    #[test]
    fn approved_counts_only_when_configured_and_shares_the_payment_id() {
        let default = testing::normalize(&checkout(json!({})), &[], APPROVED.as_bytes()).unwrap();
        assert_eq!(default, vec![Normalized::Ignored { event_type: "payment_approved".into() }]);
        let both = checkout(json!({"succeeded_on": ["payment_captured", "payment_approved"], "livemode": true}));
        let approved = payment(&both, &[], APPROVED.as_bytes());
        let captured = payment(&both, &[], CAPTURED.as_bytes());
        assert_eq!(approved.idempotency_key("checkout"), captured.idempotency_key("checkout"));
        assert_eq!(approved.customer_id.as_deref(), Some("cus_gs47qn23bqmefhkmlpokm7vzxm"));
        assert_eq!(approved.payment_method.as_deref(), Some("card"));
        assert!(approved.livemode);
    }

    #[test]
    fn other_events_are_ignored() {
        let body = json!({"id": "evt_1", "type": "payment_declined", "data": {"id": "pay_1"}}).to_string();
        let normalized = testing::normalize(&checkout(json!({})), &[], body.as_bytes()).unwrap();
        assert_eq!(normalized, vec![Normalized::Ignored { event_type: "payment_declined".into() }]);
    }

    #[test]
    fn newer_events_dated_by_timestamp_normalize() {
        let body = json!({"id": "evt_1", "type": "payment_captured", "timestamp": "2024-01-02T03:04:05Z",
            "data": {"id": "pay_1", "amount": 5, "currency": "KWD"}});
        let facts = payment(&checkout(json!({})), &[], body.to_string().as_bytes());
        assert_eq!((facts.amount.get(), facts.occurred_at.to_rfc3339()), (5, "2024-01-02T03:04:05+00:00".into()));
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |body: Value| {
            testing::normalize(&checkout(json!({})), &[], body.to_string().as_bytes()).unwrap_err().reason()
        };
        let captured = |data: Value| json!({"id": "evt_1", "type": "payment_captured", "created_on": "2019-06-07T08:25:22Z", "data": data});
        assert_eq!(testing::normalize(&checkout(json!({})), &[], b"{").unwrap_err().reason(), "unparseable_payload");
        assert_eq!(reason(json!({"id": "evt_1"})), "schema_violation");
        assert_eq!(reason(captured(json!({"id": "pay_1", "currency": "EUR"}))), "schema_violation");
        assert_eq!(reason(captured(json!({"id": "pay_1", "amount": 1.5, "currency": "EUR"}))), "schema_violation");
        assert_eq!(reason(captured(json!({"id": "pay_1", "amount": 1, "currency": "EURO"}))), "unsupported_currency");
        assert_eq!(reason(captured(json!({"amount": 1, "currency": "EUR"}))), "schema_violation");
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = testing::source("checkout", &json!({"secrets": ["k"], "succeeded_on": ["payment_paid"]}));
        assert!(err.unwrap_err().to_string().starts_with("sources[0].succeeded_on"));
        let err = testing::source("checkout", &json!({"secrets": ["k"], "succeeded_on": []}));
        assert!(err.unwrap_err().to_string().starts_with("sources[0].succeeded_on"));
        let err = testing::source("checkout", &json!({"secrets": ["k"], "authorization_key_env": "UNSET_VAR"}));
        assert!(err.unwrap_err().to_string().starts_with("sources[0].authorization_key_env"));
        let err = testing::source("checkout", &json!({}));
        assert!(err.unwrap_err().to_string().starts_with("sources[0].secrets"));
    }

    #[test]
    fn samples_verify_and_normalize() {
        let facts = testing::sample_round_trip(&checkout(json!({})));
        assert_eq!(facts.provider_event_type, "payment_captured");
        testing::sample_round_trip(&checkout(json!({"authorization_key": "auth_key_1"})));
    }
}
