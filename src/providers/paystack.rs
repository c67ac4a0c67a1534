//! Paystack: `x-paystack-signature` is the lowercase hex HMAC-**SHA512** of the
//! raw body, keyed by the account's secret API key (`sk_test_…`/`sk_live_…`,
//! used as UTF-8 text). No timestamp is signed. Paystack's own JS snippet
//! hashes `JSON.stringify(req.body)`; payhook hashes the bytes received.
//!
//! Normalizes `charge.success` whose `data.status` is `"success"`; every other
//! event is ignored. Only that event announces a payment, keyed by the
//! transaction id `data.id` (Paystack's own id; `data.reference` is the
//! merchant's and becomes the merchant reference). Amounts are minor units
//! (kobo, pesewas, cents). Live or test is `data.domain`.
//!
//! Paystack events carry no id, so the provider event id is the composite
//! `{event}:{data.id}` (e.g. `charge.success:302961`).
//!
//! Config keys: `secrets`/`secrets_env` (the secret API keys).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    fields,
    signature::{constant_time_eq, hmac_sha512, SigningKeys},
    NormalizeError, Notification, Provider, Rejection, SignatureMatch,
};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::{Arrival, MinorUnits, Normalized, PaymentFacts, PaymentId, WebhookRequest},
};

const HEADER: &str = "x-paystack-signature";

/// A configured Paystack endpoint.
#[derive(Debug)]
struct Paystack {
    keys: SigningKeys,
}

/// Reads the keys listed in the module doc.
pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError> {
    let keys = SigningKeys::from_settings(settings)?;
    Ok(Box::new(Paystack { keys }))
}

// ---- Header parsing -------------------------------------------------------

/// The signature bytes of the header (hex, either case); `None` if not hex.
fn parse_signature(header: &str) -> Option<Vec<u8>> {
    hex::decode(header.trim()).ok()
}

// ---- Verification ---------------------------------------------------------

impl Paystack {
    fn check(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        let header = request.headers.get(HEADER).ok_or(Rejection::MissingSignature)?;
        let signature = parse_signature(header).ok_or(Rejection::InvalidSignature)?;
        self.keys
            .find(|key| constant_time_eq(&signature, &hmac_sha512(key, &[&request.body])))
            .ok_or(Rejection::InvalidSignature)
    }
}

// ---- Normalization --------------------------------------------------------

/// A Paystack delivery is one event.
fn notification(body: &[u8]) -> Result<Normalized, NormalizeError> {
    let event = fields::parse(body)?;
    let event_type = fields::str(&event, "/event")?.to_owned();
    let succeeded = fields::opt_str(&event, "/data/status")?.as_deref() == Some("success");
    if event_type != "charge.success" || !succeeded {
        return Ok(Normalized::Ignored { event_type });
    }
    let transaction_id = transaction_id(&event)?;
    Ok(Normalized::Payment(PaymentFacts {
        payment_id: PaymentId::parse(&transaction_id)
            .map_err(|_| NormalizeError::field("data.id", "is not a usable payment id"))?,
        amount: MinorUnits::new(fields::minor_amount(&event, "/data/amount")?),
        currency: fields::currency(&event, "/data/currency")?,
        livemode: livemode(&event)?,
        merchant_reference: fields::opt_str(&event, "/data/reference")?,
        customer_id: fields::opt_str(&event, "/data/customer/customer_code")?,
        payment_method: fields::opt_str(&event, "/data/channel")?,
        provider_event_id: Some(format!("{event_type}:{transaction_id}")),
        provider_event_type: event_type,
        occurred_at: fields::time(&event, paid_at_pointer(&event))?,
    }))
}

/// `data.id` is a number in Paystack's payloads; a string is accepted too.
fn transaction_id(event: &Value) -> Result<String, NormalizeError> {
    match fields::get(event, "/data/id") {
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(NormalizeError::field("data.id", "is not a transaction id")),
        None => Err(NormalizeError::field("data.id", "is missing")),
    }
}

/// `data.domain` is `"live"` or `"test"`; anything else is refused rather
/// than guessed, since it decides whether real money moved.
fn livemode(event: &Value) -> Result<bool, NormalizeError> {
    match fields::str(event, "/data/domain")? {
        "live" => Ok(true),
        "test" => Ok(false),
        _ => Err(NormalizeError::field("data.domain", "is neither live nor test")),
    }
}

/// Paystack sends `paid_at`, and in some payloads also `paidAt`.
fn paid_at_pointer(event: &Value) -> &'static str {
    match fields::get(event, "/data/paid_at") {
        Some(_) => "/data/paid_at",
        None if fields::get(event, "/data/paidAt").is_some() => "/data/paidAt",
        None => "/data/paid_at",
    }
}

impl Provider for Paystack {
    fn headers(&self) -> Vec<String> {
        vec![HEADER.into()]
    }

    fn verify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check(request)
    }

    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        notification(&arrival.request.body).map(|n| vec![Ok(n)])
    }

    // ---- Signing and sample -----------------------------------------------

    fn sign(&self, body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        vec![("x-paystack-signature".into(), hex::encode(hmac_sha512(self.keys.first(), &[body])))]
    }

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let uuid = uuid::Uuid::new_v4();
        // A transaction id of nine digits taken from the uuid, like Paystack's.
        let id = 100_000_000 + uuid.as_u128() % 900_000_000;
        let time = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let event = json!({
            "event": "charge.success",
            "data": {
                "id": id as u64, "domain": "test", "status": "success",
                "reference": format!("ref_{}", &uuid.simple().to_string()[..12]),
                "amount": 50000, "message": null, "gateway_response": "Successful",
                "paid_at": time, "created_at": time, "channel": "card", "currency": "NGN",
                "metadata": {}, "fees": 850,
                "customer": {"id": 84312, "customer_code": format!("CUS_{}", &uuid.simple().to_string()[12..26])}
            }
        });
        serde_json::to_vec_pretty(&event).expect("a json! value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    fn paystack() -> Source {
        testing::source("paystack", &json!({"secrets": ["sk_test_secret"]})).unwrap()
    }

    fn verify(source: &Source, header: Option<&str>, body: &str) -> Result<SignatureMatch, Rejection> {
        let headers: Vec<(&str, &str)> = header.map(|h| ("x-paystack-signature", h)).into_iter().collect();
        source.provider.verify(&testing::request(source, &headers, body.as_bytes(), 1_700_000_000))
    }

    fn charge(data: Value) -> Vec<u8> {
        json!({"event": "charge.success", "data": data}).to_string().into_bytes()
    }

    fn data() -> Value {
        json!({"id": 302961, "domain": "live", "status": "success", "reference": "qTPrJoy9Bx",
            "amount": 10000, "paid_at": "2016-09-30T21:10:19.000Z", "channel": "card", "currency": "NGN",
            "customer": {"id": 68324, "email": "jane@example.com", "customer_code": "CUS_qo38as2hpsgk2r0"}})
    }

    #[test]
    fn vectors_get_the_documented_verdict() {
        assert!(testing::check_vectors(include_str!("../../tests/fixtures/vectors/paystack.json")) >= 6);
    }

    #[test]
    fn the_published_generic_vector_verifies() {
        let source = testing::source("paystack", &json!({"secrets": ["test_secret_123"]})).unwrap();
        let sig = "f2760f4078b7f3fb9737b7e75182b5d47ef3aa1a7d1e9b7610dab33a34000b318d70393bdd445ffcc4c1396497da469f670104d06f05cfd3829c7a984bae8fc2";
        assert!(verify(&source, Some(sig), r#"{"id":"evt_1","amount":1000}"#).is_ok());
    }

    #[test]
    fn malformed_signatures_are_refused_without_panicking() {
        let source = paystack();
        let sha256_length = hex::encode(crate::providers::signature::hmac_sha256(b"sk_test_secret", &[b"{}"]));
        for header in ["", "zz", "abc", "sha512=00", &sha256_length, &"0".repeat(128)] {
            assert_eq!(verify(&source, Some(header), "{}"), Err(Rejection::InvalidSignature), "{header:?}");
        }
        assert_eq!(verify(&source, None, "{}"), Err(Rejection::MissingSignature));
    }

    #[test]
    fn a_successful_charge_normalizes() {
        let facts = payment(&paystack(), &[], &charge(data()));
        assert_eq!(facts.payment_id.as_str(), "302961");
        assert_eq!((facts.amount.get(), facts.currency.code()), (10000, "NGN"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("qTPrJoy9Bx"));
        assert_eq!(facts.customer_id.as_deref(), Some("CUS_qo38as2hpsgk2r0"));
        assert_eq!(facts.payment_method.as_deref(), Some("card"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("charge.success:302961"));
        assert_eq!(facts.occurred_at.timestamp(), 1_475_269_819);
        assert!(facts.livemode);
    }

    #[test]
    fn the_test_domain_is_not_live() {
        let mut test = data();
        test["domain"] = json!("test");
        assert!(!payment(&paystack(), &[], &charge(test)).livemode);
    }

    #[test]
    fn other_events_and_unsuccessful_charges_are_ignored() {
        let mut failed = data();
        failed["status"] = json!("failed");
        let ignored = testing::normalize(&paystack(), &[], &charge(failed)).unwrap();
        assert_eq!(ignored, vec![Normalized::Ignored { event_type: "charge.success".into() }]);
        let transfer = json!({"event": "transfer.success", "data": {"id": 1}}).to_string();
        let ignored = testing::normalize(&paystack(), &[], transfer.as_bytes()).unwrap();
        assert_eq!(ignored, vec![Normalized::Ignored { event_type: "transfer.success".into() }]);
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |data: Value| testing::normalize(&paystack(), &[], &charge(data)).unwrap_err().reason();
        let with = |key: &str, value: Value| {
            let mut d = data();
            d[key] = value;
            d
        };
        assert_eq!(testing::normalize(&paystack(), &[], b"nope").unwrap_err().reason(), "unparseable_payload");
        assert_eq!(reason(with("amount", json!("100.50"))), "schema_violation");
        assert_eq!(reason(with("id", json!(-1))), "schema_violation");
        assert_eq!(reason(with("domain", json!("staging"))), "schema_violation");
        assert_eq!(reason(with("currency", json!("NAIRA"))), "unsupported_currency");
        let err = testing::normalize(&paystack(), &[], &charge(with("domain", json!("x")))).unwrap_err();
        assert!(err.to_string().contains("data.domain") && !err.to_string().contains("jane"), "{err}");
    }

    #[test]
    fn a_source_needs_a_secret_key() {
        let err = testing::source("paystack", &json!({"secrets_env": ["UNSET_PAYSTACK_KEY"]})).unwrap_err();
        assert!(err.to_string().starts_with("sources[0].secrets"), "{err}");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let facts = testing::sample_round_trip(&paystack());
        assert_eq!((facts.provider_event_type.as_str(), facts.currency.code()), ("charge.success", "NGN"));
    }
}
