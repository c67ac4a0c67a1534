//! Coinbase Commerce: `X-CC-Webhook-Signature` is the lowercase hex
//! HMAC-SHA256 of the raw body, keyed by the endpoint's shared secret as
//! UTF-8. No timestamp is signed.
//!
//! A delivery is `{"id", "scheduled_for", "attempt_number", "event": {…}}`;
//! the outer `id` counts deliveries, the event's own `event.id` is the
//! provider event id. Only `charge:confirmed` is normalized: the charge was
//! paid and the payment confirmed on chain. `charge:created`,
//! `charge:pending`, `charge:failed`, `charge:delayed` and `charge:resolved`
//! are ignored (a resolved charge was settled by hand after an under- or
//! overpayment, so its priced amount is not what was paid).
//!
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
//!
//! Keys: `secrets`/`secrets_env`, `livemode` (false),
//! `merchant_reference_metadata_key` (`order_id`), `amount_unit` (`major`).

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

const SIGNATURE: &str = "x-cc-webhook-signature";
const SUCCEEDED: &str = "charge:confirmed";
const AMOUNT: &str = "/event/data/pricing/local/amount";
const CURRENCY: &str = "/event/data/pricing/local/currency";

/// A configured Coinbase Commerce endpoint.
#[derive(Debug)]
struct Coinbase {
    keys: SigningKeys,
    livemode: bool,
    /// JSON pointer to the merchant reference inside `metadata`.
    reference_pointer: String,
    /// Whether `pricing.local.amount` counts major units.
    major_units: bool,
}

/// Keys: `secrets`/`secrets_env`, `livemode` (false),
/// `merchant_reference_metadata_key` (`order_id`), `amount_unit` (`major`).
pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError> {
    let keys = SigningKeys::from_settings(settings)?;
    let livemode = settings.bool("livemode")?.unwrap_or(false);
    let key = settings.string("merchant_reference_metadata_key")?.unwrap_or_else(|| "order_id".into());
    let reference_pointer = format!("/event/data/metadata/{}", key.replace('~', "~0").replace('/', "~1"));
    let unit_key = settings.key("amount_unit");
    let major_units = match settings.string("amount_unit")?.as_deref() {
        None | Some("major") => true,
        Some("minor") => false,
        Some(_) => return Err(ConfigError::invalid(unit_key, "expected \"major\" or \"minor\"")),
    };
    Ok(Box::new(Coinbase { keys, livemode, reference_pointer, major_units }))
}

// ---- Header parsing -------------------------------------------------------

/// The signature bytes of the header; `None` unless it is hex.
fn parse_signature(header: &str) -> Option<Vec<u8>> {
    hex::decode(header.trim()).ok()
}

// ---- Verification ---------------------------------------------------------

impl Coinbase {
    fn check(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        let header = request.headers.get(SIGNATURE).ok_or(Rejection::MissingSignature)?;
        let signature = parse_signature(header).ok_or(Rejection::InvalidSignature)?;
        self.keys.match_hmac_sha256(&[&request.body], &[signature]).ok_or(Rejection::InvalidSignature)
    }
}

// ---- Normalization --------------------------------------------------------

impl Coinbase {
    /// A Coinbase delivery is one event.
    fn notification(&self, arrival: &Arrival) -> Result<Normalized, NormalizeError> {
        let delivery = fields::parse(&arrival.request.body)?;
        let event_type = fields::str(&delivery, "/event/type")?.to_owned();
        if event_type != SUCCEEDED {
            return Ok(Normalized::Ignored { event_type });
        }
        let currency = fields::currency(&delivery, CURRENCY)?;
        let amount = if self.major_units {
            fields::major_amount(&delivery, AMOUNT, currency)?
        } else {
            MinorUnits::new(fields::minor_amount(&delivery, AMOUNT)?)
        };
        Ok(Normalized::Payment(PaymentFacts {
            payment_id: fields::payment_id(&delivery, "/event/data/code")?,
            amount,
            currency,
            livemode: self.livemode,
            merchant_reference: fields::opt_str(&delivery, &self.reference_pointer)?,
            customer_id: None,
            payment_method: None,
            provider_event_id: Some(fields::str(&delivery, "/event/id")?.to_owned()),
            provider_event_type: event_type,
            occurred_at: fields::time(&delivery, "/event/created_at")?,
        }))
    }
}

impl Provider for Coinbase {
    fn headers(&self) -> Vec<String> {
        vec![SIGNATURE.into()]
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
        vec![("X-CC-Webhook-Signature".into(), hex::encode(mac))]
    }

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let local = if self.major_units { json!("100.00") } else { json!("10000") };
        let delivery = json!({
            "id": 1, "scheduled_for": at.to_rfc3339(), "attempt_number": 1,
            "event": {
                "id": uuid::Uuid::new_v4().to_string(), "resource": "event", "type": SUCCEEDED,
                "api_version": "2018-03-22", "created_at": at.to_rfc3339(),
                "data": charge(at, local)
            }
        });
        serde_json::to_vec_pretty(&delivery).expect("a json! value always serializes")
    }
}

/// A paid charge for 100 USD, in Coinbase's charge shape.
fn charge(at: DateTime<Utc>, local_amount: Value) -> Value {
    let code = uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase();
    json!({
        "id": uuid::Uuid::new_v4().to_string(), "resource": "charge", "code": code,
        "name": "payhook sample", "description": "A sample charge", "pricing_type": "fixed_price",
        "hosted_url": format!("https://commerce.coinbase.com/charges/{code}"),
        "created_at": at.to_rfc3339(), "confirmed_at": at.to_rfc3339(),
        "metadata": {"order_id": format!("order_{}", &code[..6])},
        "pricing": {
            "local": {"amount": local_amount, "currency": "USD"},
            "bitcoin": {"amount": "0.00250000", "currency": "BTC"}
        },
        "timeline": [{"time": at.to_rfc3339(), "status": "NEW"}, {"time": at.to_rfc3339(), "status": "COMPLETED"}],
        "payments": []
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    fn coinbase() -> Source {
        testing::source("coinbase", &json!({"secrets": ["test_secret_123"]})).unwrap()
    }

    fn verify(header: Option<&str>, body: &str) -> Result<SignatureMatch, Rejection> {
        let source = coinbase();
        let headers: Vec<(&str, &str)> = header.map(|h| ("X-CC-Webhook-Signature", h)).into_iter().collect();
        source.provider.verify(&testing::request(&source, &headers, body.as_bytes(), 1))
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        assert!(testing::check_vectors(include_str!("../../tests/fixtures/vectors/coinbase.json")) >= 7);
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
        assert_ne!(source.provider.sample(at), source.provider.sample(at), "each sample is a new payment");
    }
}
