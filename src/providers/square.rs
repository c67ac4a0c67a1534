//! Square: `x-square-hmacsha256-signature` is the base64 HMAC-SHA256 of the
//! notification URL followed directly by the raw body (no separator), keyed
//! by the subscription's signature key as UTF-8: a preset of the generic
//! scheme, signing the URL as literal text. The URL must be exactly the
//! one registered with Square (scheme, host, path, query), so it is the
//! source key `notification_url` and never rebuilt from the request, which a
//! proxy may have rewritten. No timestamp is signed. The legacy HMAC-SHA1
//! `x-square-signature` (v1 webhooks) is not supported.
//!
//! Normalizes `payment.created` and `payment.updated` when
//! `data.object.payment.status` is `COMPLETED` (an immediately captured
//! payment may be created completed; UNCONFIRMED, so both are read and the
//! status decides). Both are keyed by the payment id
//! (`data.object.payment.id`), so the several events of one payment give one
//! event. Other statuses (`APPROVED`, `PENDING`, `FAILED`, `CANCELED`) and
//! other event types are ignored.
//!
//! The amount is `amount_money` (minor units) by default; `total_money` adds
//! tips and fees the buyer paid on top, chosen with the source key
//! `amount_field`. The merchant reference is the payment's `reference_id`,
//! else its Square `order_id`; `customer_id` is Square's customer id;
//! `merchant_id` is the seller, not a customer, and is not used. The
//! provider event id is `event_id`. Payloads do not say live or test
//! (sandbox apps have their own keys and URLs), so that is the source key
//! `livemode`.
//!
//! Keys: `secrets`/`secrets_env`, `notification_url` (required),
//! `amount_field` (`amount_money`, or `total_money`), `livemode` (false).

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

const SIGNATURE: Preset = Preset(&["x-square-hmacsha256-signature"], Algorithm::Sha256, Encoding::Base64);

const AMOUNT_FIELDS: [&str; 2] = ["amount_money", "total_money"];

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let scheme = Hmac::preset(&SIGNATURE, settings)?;
    let notification_url = settings.nonempty_string("notification_url", "must be the URL registered with Square")?;
    let amount_field = settings.choice("amount_field", &AMOUNT_FIELDS.map(|f| (f, f)), AMOUNT_FIELDS[0])?;
    let at = |field: &str| format!("/data/object/payment/{field}");
    let money = |field: &str| at(&format!("{amount_field}/{field}"));
    // A completed card payment of 10.00 USD, as Square shows it.
    let mapping = Mapping {
        livemode: settings.bool("livemode")?.unwrap_or(false),
        event_id: EventId::Field("/event_id".into()),
        occurred_at: vec!["/created_at".into()],
        merchant_reference: vec![at("reference_id"), at("order_id")],
        customer_id: Some(at("customer_id")),
        payment_method: Some(at("source_type")),
        refine: Some(lowercase_method),
        ..Mapping::fixed(
            "square",
            include_str!("samples/square.json"),
            ["/type", &at("id"), &money("amount"), &money("currency")],
            &["payment.created", "payment.updated"],
        )
        .when_status(&at("status"), &["COMPLETED"])
    };
    Ok(Provider::new(scheme.signing_after(notification_url), mapping))
}

/// Square's `source_type` (`CARD`) in the lower case other providers use.
fn lowercase_method(_: &Value, facts: &mut PaymentFacts) -> Result<(), NormalizeError> {
    facts.payment_method = facts.payment_method.take().map(|method| method.to_ascii_lowercase());
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        domain::Normalized,
        providers::{
            testing::{self, payment},
            Rejection, SignatureMatch, Source,
        },
    };

    const URL: &str = "https://example.com/webhooks/square";

    fn square() -> Source {
        testing::source("square", &json!({"secrets": ["test_secret_123"], "notification_url": URL})).unwrap()
    }

    fn verify(header: Option<&str>, body: &str) -> Result<SignatureMatch, Rejection> {
        let source = square();
        let headers: Vec<(&str, &str)> = header.map(|h| ("x-square-hmacsha256-signature", h)).into_iter().collect();
        testing::verify_now(&source, &testing::request(&source, &headers, body.as_bytes(), 1))
    }

    #[test]
    fn the_published_generic_vector_verifies_only_for_its_url() {
        let (sig, body) = ("GSRyhHXyNGXjR76WqLAZjGS7a4jVrQQ7qaKL3Q+S674=", r#"{"id":"evt_1","amount":1000}"#);
        assert_eq!(verify(Some(sig), body), Ok(SignatureMatch { secret_index: 0 }));
        let elsewhere = testing::source(
            "square",
            &json!({"secrets": ["test_secret_123"], "notification_url": "https://example.com/webhooks/square/"}),
        )
        .unwrap();
        let request = testing::request(&elsewhere, &[("x-square-hmacsha256-signature", sig)], body.as_bytes(), 1);
        assert_eq!(testing::verify_now(&elsewhere, &request), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn documented_payment_updated_normalizes() {
        let body = include_str!("../../tests/fixtures/payloads/square-payment.updated.json");
        let facts = payment(&square(), &[], body.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "hYy9pRFVxpDsO1FB05SunFWUe9JZY");
        assert_eq!((facts.amount.get(), facts.currency.code()), (100, "USD"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("03O3USaPaAaFnI6kkwB1JxGgBsUZY"));
        assert_eq!((facts.customer_id, facts.payment_method.as_deref()), (None, Some("card")));
        assert_eq!(facts.provider_event_id.as_deref(), Some("6a8f5f28-54a1-4eb0-a98a-3111513fd4fc"));
        assert_eq!(facts.occurred_at.timestamp_millis(), 1_581_024_454_308);
        assert!(!facts.livemode);
    }

    fn event(event_type: &str, payment: Value) -> Vec<u8> {
        json!({"merchant_id": "M1", "type": event_type, "event_id": "e1", "created_at": "2024-01-01T00:00:00Z",
               "data": {"type": "payment", "id": "p1", "object": {"payment": payment}}})
        .to_string()
        .into_bytes()
    }

    fn completed(extra: Value) -> Value {
        let mut payment = json!({"id": "p1", "status": "COMPLETED", "amount_money": {"amount": 1000, "currency": "USD"},
                                 "total_money": {"amount": 1150, "currency": "USD"}});
        if let (Some(payment), Value::Object(extra)) = (payment.as_object_mut(), extra) {
            payment.extend(extra);
        }
        payment
    }

    #[test]
    fn a_payment_created_completed_is_the_same_payment() {
        let created = payment(&square(), &[], &event("payment.created", completed(json!({}))));
        let updated = payment(&square(), &[], &event("payment.updated", completed(json!({}))));
        assert_eq!((created.payment_id, created.amount), (updated.payment_id, updated.amount));
    }

    #[test]
    fn reference_id_wins_over_order_id_and_customer_id_is_kept() {
        let body = event(
            "payment.updated",
            completed(json!({"reference_id": "ord-9", "order_id": "sqo", "customer_id": "CUST1"})),
        );
        let facts = payment(&square(), &[], &body);
        assert_eq!((facts.merchant_reference.as_deref(), facts.customer_id.as_deref()), (Some("ord-9"), Some("CUST1")));
    }

    #[test]
    fn total_money_is_chosen_by_amount_field() {
        let settings = json!({"secrets": ["k"], "notification_url": URL, "amount_field": "total_money"});
        let source = testing::source("square", &settings).unwrap();
        assert_eq!(payment(&source, &[], &event("payment.updated", completed(json!({})))).amount.get(), 1150);
        let bad = testing::source("square", &json!({"secrets": ["k"], "notification_url": URL, "amount_field": "tip"}));
        assert!(bad.unwrap_err().to_string().starts_with("sources[0].amount_field"));
    }

    #[test]
    fn notification_url_is_required() {
        for settings in [json!({"secrets": ["k"]}), json!({"secrets": ["k"], "notification_url": ""})] {
            let err = testing::source("square", &settings).unwrap_err().to_string();
            assert!(err.starts_with("sources[0].notification_url"), "{err}");
        }
    }

    #[test]
    fn other_statuses_and_events_are_ignored() {
        for status in ["APPROVED", "PENDING", "FAILED", "CANCELED"] {
            let body = event("payment.updated", completed(json!({"status": status})));
            assert!(matches!(testing::normalize(&square(), &[], &body).unwrap()[..], [Normalized::Ignored { .. }]));
        }
        let refund = event("refund.updated", completed(json!({})));
        let normalized = testing::normalize(&square(), &[], &refund).unwrap();
        assert_eq!(normalized, vec![Normalized::Ignored { event_type: "refund.updated".into() }]);
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |body: &[u8]| testing::normalize(&square(), &[], body).unwrap_err().reason();
        assert_eq!(reason(b"not json"), "unparseable_payload");
        assert_eq!(reason(b"{}"), "schema_violation");
        assert_eq!(reason(&event("payment.updated", json!({"id": "p1", "status": "COMPLETED"}))), "schema_violation");
        let status_not_text = event("payment.updated", json!({"id": "p1", "status": 3}));
        assert_eq!(reason(&status_not_text), "schema_violation");
        let bad_currency = completed(json!({"amount_money": {"amount": 1, "currency": "ZZZ"}}));
        assert_eq!(reason(&event("payment.updated", bad_currency)), "unsupported_currency");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = square();
        let facts = testing::sample_round_trip(&source);
        assert_eq!((facts.amount.get(), facts.currency.code()), (1000, "USD"));
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
