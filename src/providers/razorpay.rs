//! Razorpay: `X-Razorpay-Signature` is the lowercase hex HMAC-SHA256 of the
//! raw body, keyed by the webhook secret as UTF-8 (the secret set on the
//! webhook, not the API key secret). No timestamp is signed. Razorpay signs
//! retries of older events with the secret they were first sent with, so a
//! source lists every secret still in use (rotation).
//!
//! Normalizes `payment.captured` and `order.paid`. Both carry the payment
//! entity and both are keyed by its id (`payload.payment.entity.id`,
//! `pay_…`), so a merchant subscribed to both gets one event per payment.
//! The amount is `payload.payment.entity.amount` in the currency's smallest
//! unit (paise), the merchant reference the Razorpay order id
//! (`payload.payment.entity.order_id`), present in both events; the
//! merchant's own receipt exists only in `order.paid` and is not used, so
//! both announcements of one payment carry the same facts.
//! `payment.authorized` and `payment.failed` are ignored: Razorpay may send
//! `payment.captured` after a `payment.failed` for the same payment.
//!
//! The provider event id is the `x-razorpay-event-id` header (the body has
//! none). Payloads do not say live or test (Razorpay configures test and live
//! webhooks separately), so that comes from the source key `livemode`.
//!
//! Keys: `secrets`/`secrets_env`, `livemode` (false).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    fields,
    signature::{hmac_sha256, SigningKeys},
    NormalizeError, Notification, Provider, Rejection, SignatureMatch,
};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::{Arrival, MinorUnits, Normalized, PaymentFacts, WebhookRequest},
};

const SIGNATURE: &str = "x-razorpay-signature";
const EVENT_ID: &str = "x-razorpay-event-id";
/// Events that mean the payment's money was captured.
const SUCCEEDED: [&str; 2] = ["payment.captured", "order.paid"];
const ENTITY: &str = "/payload/payment/entity";

/// A configured Razorpay webhook.
#[derive(Debug)]
struct Razorpay {
    keys: SigningKeys,
    livemode: bool,
}

/// Keys: `secrets`/`secrets_env`, `livemode` (false).
pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError> {
    let keys = SigningKeys::from_settings(settings)?;
    let livemode = settings.bool("livemode")?.unwrap_or(false);
    Ok(Box::new(Razorpay { keys, livemode }))
}

// ---- Header parsing -------------------------------------------------------

/// The signature bytes of the header; `None` unless it is hex.
fn parse_signature(header: &str) -> Option<Vec<u8>> {
    hex::decode(header.trim()).ok()
}

// ---- Verification ---------------------------------------------------------

impl Razorpay {
    fn check(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        let header = request.headers.get(SIGNATURE).ok_or(Rejection::MissingSignature)?;
        let signature = parse_signature(header).ok_or(Rejection::InvalidSignature)?;
        self.keys.match_hmac_sha256(&[&request.body], &[signature]).ok_or(Rejection::InvalidSignature)
    }
}

// ---- Normalization --------------------------------------------------------

impl Razorpay {
    /// A Razorpay delivery is one event.
    fn notification(&self, arrival: &Arrival) -> Result<Normalized, NormalizeError> {
        let event = fields::parse(&arrival.request.body)?;
        let event_type = fields::str(&event, "/event")?.to_owned();
        if !SUCCEEDED.contains(&event_type.as_str()) {
            return Ok(Normalized::Ignored { event_type });
        }
        let at = |field: &str| format!("{ENTITY}/{field}");
        Ok(Normalized::Payment(PaymentFacts {
            payment_id: fields::payment_id(&event, &at("id"))?,
            amount: MinorUnits::new(fields::minor_amount(&event, &at("amount"))?),
            currency: fields::currency(&event, &at("currency"))?,
            livemode: self.livemode,
            merchant_reference: fields::opt_str(&event, &at("order_id"))?,
            customer_id: fields::opt_str(&event, &at("customer_id"))?,
            payment_method: fields::opt_str(&event, &at("method"))?,
            provider_event_id: arrival.request.headers.get(EVENT_ID).map(str::to_owned),
            provider_event_type: event_type,
            occurred_at: fields::time(&event, "/created_at")?,
        }))
    }
}

impl Provider for Razorpay {
    fn headers(&self) -> Vec<String> {
        vec![SIGNATURE.into(), EVENT_ID.into()]
    }

    fn verify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check(request)
    }

    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        self.notification(arrival).map(|n| vec![Ok(n)])
    }

    // ---- Signing and sample -----------------------------------------------

    fn sign(&self, body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        let mac = hmac_sha256(self.keys.first(), &[body]);
        vec![("X-Razorpay-Signature".into(), hex::encode(mac)), ("X-Razorpay-Event-Id".into(), random_id(14))]
    }

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let event = json!({
            "entity": "event", "account_id": format!("acc_{}", random_id(14)), "event": "payment.captured",
            "contains": ["payment"],
            "payload": {"payment": {"entity": payment_entity(at)}},
            "created_at": at.timestamp()
        });
        serde_json::to_vec_pretty(&event).expect("a json! value always serializes")
    }
}

/// A captured card payment as Razorpay shows it (no contact details).
fn payment_entity(at: DateTime<Utc>) -> Value {
    json!({
        "id": format!("pay_{}", random_id(14)), "entity": "payment", "amount": 50_000, "currency": "INR",
        "base_amount": 50_000, "status": "captured", "order_id": format!("order_{}", random_id(14)),
        "invoice_id": null, "international": false, "method": "card", "amount_refunded": 0,
        "refund_status": null, "captured": true, "description": "payhook sample", "notes": [],
        "fee": 1180, "tax": 180, "error_code": null, "created_at": at.timestamp() - 5
    })
}

/// Razorpay ids are 14 alphanumerics after the prefix.
fn random_id(len: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..len].to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    fn razorpay() -> Source {
        testing::source("razorpay", &json!({"secrets": ["test_secret_123"]})).unwrap()
    }

    fn verify(header: Option<&str>, body: &str) -> Result<SignatureMatch, Rejection> {
        let source = razorpay();
        let headers: Vec<(&str, &str)> = header.map(|h| ("X-Razorpay-Signature", h)).into_iter().collect();
        source.provider.verify(&testing::request(&source, &headers, body.as_bytes(), 1))
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        assert!(testing::check_vectors(include_str!("../../tests/fixtures/vectors/razorpay.json")) >= 7);
    }

    #[test]
    fn the_published_generic_vector_verifies() {
        let sig = "6adb79c9a71772e577593ec425d6ca66a824895f89e0f3591b774d8e7ae56552";
        assert_eq!(verify(Some(sig), r#"{"id":"evt_1","amount":1000}"#), Ok(SignatureMatch { secret_index: 0 }));
    }

    #[test]
    fn malformed_signatures_are_refused_without_panicking() {
        assert_eq!(verify(None, "{}"), Err(Rejection::MissingSignature));
        for header in ["", "zz", "abc", "sha256=00", "0g", &"a".repeat(4096)] {
            assert_eq!(verify(Some(header), "{}"), Err(Rejection::InvalidSignature), "{header:?}");
        }
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
        assert_ne!(source.provider.sample(at), source.provider.sample(at), "each sample is a new payment");
    }
}
