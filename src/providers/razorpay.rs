//! Razorpay: `X-Razorpay-Signature` is the lowercase hex HMAC-SHA256 of the
//! raw body, keyed by the webhook secret as UTF-8 (the secret set on the
//! webhook, not the API key secret): a preset of the generic scheme. No
//! timestamp is signed. Razorpay signs retries of older events with the
//! secret they were first sent with, so a source lists every secret still in
//! use (rotation).
//!
//! Normalizes, by a mapping, `payment.captured` and `order.paid`. Both carry
//! the payment entity and both are keyed by its id
//! (`payload.payment.entity.id`, `pay_…`), so a merchant subscribed to both
//! gets one event per payment. The amount is `payload.payment.entity.amount`
//! in the currency's smallest unit (paise), the merchant reference the
//! Razorpay order id (`payload.payment.entity.order_id`), present in both
//! events; the merchant's own receipt exists only in `order.paid` and is not
//! used, so both announcements of one payment carry the same facts.
//! `payment.authorized` and `payment.failed` are ignored: Razorpay may send
//! `payment.captured` after a `payment.failed` for the same payment.
//!
//! The provider event id is the `x-razorpay-event-id` header (the body has
//! none). Payloads do not say live or test (Razorpay configures test and live
//! webhooks separately), so that comes from the source key `livemode`.

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

const SIGNATURE: Preset = Preset(&["x-razorpay-signature"], Algorithm::Sha256, Encoding::Hex);

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let scheme = Hmac::preset(&SIGNATURE, settings)?;
    let at = |field: &str| format!("/payload/payment/entity/{field}");
    // A captured card payment as Razorpay shows it (no contact details).
    let mapping = Mapping {
        livemode: settings.bool("livemode")?.unwrap_or(false),
        event_id: EventId::ProviderHeader("x-razorpay-event-id"),
        occurred_at: vec!["/created_at".into()],
        merchant_reference: vec![at("order_id")],
        customer_id: Some(at("customer_id")),
        payment_method: Some(at("method")),
        ..Mapping::fixed(
            "razorpay",
            include_str!("samples/razorpay.json"),
            ["/event", &at("id"), &at("amount"), &at("currency")],
            &["payment.captured", "order.paid"],
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

    fn razorpay() -> Source {
        testing::source("razorpay", &json!({"secrets": ["test_secret_123"]})).unwrap()
    }

    #[test]
    fn documented_payment_captured_normalizes() {
        let body = include_str!("../../tests/fixtures/payloads/razorpay-payment.captured.json");
        let facts = payment(&razorpay(), &[("x-razorpay-event-id", "evt_1")], body.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "pay_DESlfW9H8K9uqM");
        assert_eq!((facts.amount.get(), facts.currency.code()), (100, "INR"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("order_DESlLckIVRkHWj"));
        assert_eq!(facts.payment_method.as_deref(), Some("netbanking"));
        assert_eq!(facts.customer_id, None);
        assert_eq!(facts.provider_event_id.as_deref(), Some("evt_1"));
        assert_eq!(facts.occurred_at.timestamp(), 1_567_674_606);
        assert!(!facts.livemode);
    }

    fn event(event_type: &str, payment: Value) -> Vec<u8> {
        json!({"entity": "event", "event": event_type, "created_at": 1,
               "payload": {"payment": {"entity": payment}, "order": {"entity": {"id": "order_1", "receipt": "r1"}}}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn order_paid_is_keyed_by_the_payment_like_payment_captured() {
        let entity = json!({"id": "pay_1", "amount": 2500, "currency": "inr", "order_id": "order_1"});
        let captured = payment(&razorpay(), &[], &event("payment.captured", entity.clone()));
        let paid = payment(&razorpay(), &[], &event("order.paid", entity));
        assert_eq!(captured.payment_id, paid.payment_id);
        assert_eq!(
            (paid.amount, paid.currency, paid.merchant_reference),
            (captured.amount, captured.currency, captured.merchant_reference)
        );
        assert_eq!(paid.provider_event_type, "order.paid");
    }

    #[test]
    fn other_events_are_ignored() {
        for event_type in ["payment.authorized", "payment.failed", "refund.created"] {
            let body = event(event_type, json!({"id": "pay_1"}));
            let normalized = testing::normalize(&razorpay(), &[], &body).unwrap();
            assert_eq!(normalized, vec![Normalized::Ignored { event_type: event_type.into() }]);
        }
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |body: &[u8]| testing::normalize(&razorpay(), &[], body).unwrap_err().reason();
        assert_eq!(reason(b"not json"), "unparseable_payload");
        assert_eq!(reason(b"{}"), "schema_violation");
        assert_eq!(reason(&event("payment.captured", json!({"id": "pay_1", "currency": "INR"}))), "schema_violation");
        let fractional = json!({"id": "pay_1", "amount": 10.5, "currency": "INR"});
        assert_eq!(reason(&event("payment.captured", fractional)), "schema_violation");
        let bad_currency = json!({"id": "pay_1", "amount": 1, "currency": "ZZZ"});
        assert_eq!(reason(&event("payment.captured", bad_currency)), "unsupported_currency");
    }

    #[test]
    fn livemode_comes_from_the_source() {
        let live = testing::source("razorpay", &json!({"secrets": ["k"], "livemode": true})).unwrap();
        assert!(testing::sample_round_trip(&live).livemode);
        let bad = testing::source("razorpay", &json!({"secrets": ["k"], "livemode": "yes"})).unwrap_err();
        assert!(bad.to_string().starts_with("sources[0].livemode"), "{bad}");
        let none = testing::source("razorpay", &json!({})).unwrap_err();
        assert!(none.to_string().starts_with("sources[0].secrets"), "{none}");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = razorpay();
        let facts = testing::sample_round_trip(&source);
        assert_eq!((facts.provider_event_type.as_str(), facts.currency.code()), ("payment.captured", "INR"));
        assert!(facts.provider_event_id.is_some());
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
