//! Coinbase Commerce: `X-CC-Webhook-Signature` is the lowercase hex
//! HMAC-SHA256 of the raw body, keyed by the endpoint's shared secret as
//! UTF-8 (a preset of the generic scheme). No timestamp is signed.
//!
//! A delivery is `{"id", "scheduled_for", "attempt_number", "event": {…}}`;
//! the outer `id` counts deliveries, the event's own `event.id` is the
//! provider event id. Only `charge:confirmed` is normalized: the charge was
//! paid and the payment confirmed on chain. `charge:created`,
//! `charge:pending`, `charge:failed`, `charge:delayed` and `charge:resolved`
//! are ignored (a resolved charge was settled by hand after an under- or
//! overpayment, so its priced amount is not what was paid).
//!
//! The payload needs no more than pointers, so the normalizer is a mapping.
//! The payment id is the charge's `code` (`event.data.code`, the id shown in
//! the dashboard and the hosted URL): one charge is one payment, whichever
//! event announces it. The amount is the charge's price in the merchant's
//! currency, `event.data.pricing.local` (`amount`, `currency`), never a
//! crypto amount. The merchant reference is `event.data.metadata.<key>`
//! (source key `merchant_reference_metadata_key`, default `order_id`). There
//! is no opaque customer id (`metadata.customer_id` is whatever the merchant
//! put there, possibly an e-mail), so `customer_id` is always null. Payloads
//! do not say live or test: that is the source key `livemode`.
//!
//! UNCONFIRMED: that `pricing.local.amount` is a major-unit decimal (`"100.00"`)
//! for current API versions. Source key `amount_unit`: `"major"` (default)
//! or `"minor"`.

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

const SIGNATURE: Preset = Preset(&["x-cc-webhook-signature"], Algorithm::Sha256, Encoding::Hex);

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let scheme = Hmac::preset(&SIGNATURE, settings)?;
    let key = settings.string("merchant_reference_metadata_key")?.unwrap_or_else(|| "order_id".into());
    let data = |field: &str| format!("/event/data/{field}");
    let mapping = Mapping {
        livemode: settings.bool("livemode")?.unwrap_or(false),
        event_id: EventId::Field("/event/id".into()),
        amount_unit: AmountUnit::configure(settings, AmountUnit::Major)?,
        occurred_at: vec!["/event/created_at".into()],
        merchant_reference: vec![fields::child(&data("metadata"), &key)],
        ..Mapping::fixed(
            "coinbase",
            include_str!("samples/coinbase.json"),
            ["/event/type", &data("code"), &data("pricing/local/amount"), &data("pricing/local/currency")],
            &["charge:confirmed"],
        )
    };
    Ok(Provider::new(scheme, mapping))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        domain::Normalized,
        providers::{
            testing::{self, payment},
            Source,
        },
    };

    fn coinbase() -> Source {
        testing::source("coinbase", &json!({"secrets": ["test_secret_123"]})).unwrap()
    }

    fn delivery(event_type: &str, data: Value) -> Vec<u8> {
        json!({"id": 7, "attempt_number": 1, "event": {"id": "evt-uuid", "type": event_type,
               "created_at": "2024-05-01T10:00:00Z", "data": data}})
        .to_string()
        .into_bytes()
    }

    fn confirmed(amount: Value, currency: &str) -> Vec<u8> {
        delivery(
            "charge:confirmed",
            json!({"id": "c-uuid", "code": "66BEOV2A", "metadata": {"order_id": "A-17", "customer_id": "jane@example.com"},
                   "pricing": {"local": {"amount": amount, "currency": currency}, "bitcoin": {"amount": "1.0", "currency": "BTC"}}}),
        )
    }

    #[test]
    fn a_confirmed_charge_is_keyed_by_its_code_in_local_currency() {
        let facts = payment(&coinbase(), &[], &confirmed(json!("100.00"), "USD"));
        assert_eq!(facts.payment_id.as_str(), "66BEOV2A");
        assert_eq!((facts.amount.get(), facts.currency.code()), (10_000, "USD"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("A-17"));
        assert_eq!(facts.customer_id, None, "metadata.customer_id is merchant text, not a provider id");
        assert_eq!(facts.provider_event_id.as_deref(), Some("evt-uuid"));
        assert_eq!(facts.occurred_at.to_rfc3339(), "2024-05-01T10:00:00+00:00");
        let yen = payment(&coinbase(), &[], &confirmed(json!("1500"), "JPY"));
        assert_eq!(yen.amount.get(), 1500);
    }

    #[test]
    fn amount_unit_and_reference_key_are_configurable() {
        let settings =
            json!({"secrets": ["k"], "amount_unit": "minor", "merchant_reference_metadata_key": "customer_id"});
        let source = testing::source("coinbase", &settings).unwrap();
        let facts = payment(&source, &[], &confirmed(json!("10000"), "USD"));
        assert_eq!((facts.amount.get(), facts.merchant_reference.as_deref()), (10_000, Some("jane@example.com")));
        let bad = testing::source("coinbase", &json!({"secrets": ["k"], "amount_unit": "cents"})).unwrap_err();
        assert!(bad.to_string().starts_with("sources[0].amount_unit"), "{bad}");
    }

    #[test]
    fn other_events_are_ignored() {
        for event_type in ["charge:created", "charge:pending", "charge:failed", "charge:resolved"] {
            let normalized = testing::normalize(&coinbase(), &[], &delivery(event_type, json!({}))).unwrap();
            assert_eq!(normalized, vec![Normalized::Ignored { event_type: event_type.into() }]);
        }
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |body: &[u8]| testing::normalize(&coinbase(), &[], body).unwrap_err().reason();
        assert_eq!(reason(b"not json"), "unparseable_payload");
        assert_eq!(reason(b"{\"id\": 1}"), "schema_violation");
        assert_eq!(reason(&delivery("charge:confirmed", json!({"code": "X"}))), "schema_violation");
        assert_eq!(reason(&confirmed(json!("100.001"), "USD")), "invalid_amount");
        assert_eq!(reason(&confirmed(json!("1e3"), "USD")), "invalid_amount");
        assert_eq!(reason(&confirmed(json!("1"), "BTC")), "unsupported_currency");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = coinbase();
        let facts = testing::sample_round_trip(&source);
        assert_eq!((facts.amount.get(), facts.currency.code()), (10_000, "USD"));
        let minor = testing::source("coinbase", &json!({"secrets": ["k"], "amount_unit": "minor"})).unwrap();
        assert_eq!(testing::sample_round_trip(&minor).amount.get(), 10_000);
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
