//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 over
//! `"{t}.{raw body}"` keyed by the endpoint secret used verbatim (including
//! its `whsec_` prefix, unlike Standard Webhooks).
//!
//! Normalizes `payment_intent.succeeded`, `charge.succeeded` (paid and
//! captured) and `checkout.session.completed` (`payment_status = "paid"`).
//! All three key the payment by its PaymentIntent id, so a merchant
//! subscribed to several of them still gets one event per payment. Stripe
//! amounts are already in the currency's smallest unit.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    fields,
    signature::{within_tolerance, SigningKeys},
    NormalizeError, Provider, Rejection, SignatureMatch,
};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::{Arrival, MinorUnits, Normalized, PaymentFacts, PaymentId, WebhookRequest},
};

const HEADER: &str = "stripe-signature";

/// A configured Stripe endpoint.
#[derive(Debug)]
struct Stripe {
    keys: SigningKeys,
    tolerance_secs: u64,
    /// JSON pointer to the merchant reference inside `metadata`.
    reference_pointer: String,
}

/// Keys: `secrets`/`secrets_env`, `tolerance_secs` (300),
/// `merchant_reference_metadata_key` (`order_id`).
pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError> {
    use secrecy::ExposeSecret;
    let keys = settings.secrets()?.iter().map(|s| s.expose_secret().as_bytes().to_vec()).collect();
    let tolerance_secs = settings.u64("tolerance_secs")?.unwrap_or(300);
    let key = settings.string("merchant_reference_metadata_key")?.unwrap_or_else(|| "order_id".into());
    let escaped = key.replace('~', "~0").replace('/', "~1");
    Ok(Box::new(Stripe {
        keys: SigningKeys::new(keys),
        tolerance_secs,
        reference_pointer: format!("/metadata/{escaped}"),
    }))
}

// ---- Header parsing -------------------------------------------------------

/// A parsed `Stripe-Signature` header.
#[derive(Debug, PartialEq)]
struct SignatureHeader {
    timestamp: i64,
    /// Every `v1` value that is valid hex; other schemes are ignored.
    v1: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// `None` when the header has no `t`, a non-numeric `t`, or an item
    /// without `=` (the SDKs refuse such headers too).
    fn parse(header: &str) -> Option<Self> {
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for item in header.split(',') {
            let (key, value) = item.trim().split_once('=')?;
            match key {
                "t" => timestamp = Some(value.parse().ok()?),
                "v1" => v1.extend(hex::decode(value).ok()),
                _ => {}
            }
        }
        Some(Self { timestamp: timestamp?, v1 })
    }
}

// ---- Verification ---------------------------------------------------------

impl Stripe {
    fn check(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        let header = request.headers.get(HEADER).ok_or(Rejection::MissingSignature)?;
        let parsed = SignatureHeader::parse(header).ok_or(Rejection::InvalidSignature)?;
        let t = parsed.timestamp.to_string();
        let matched = self
            .keys
            .match_hmac_sha256(&[t.as_bytes(), b".", &request.body], &parsed.v1)
            .ok_or(Rejection::InvalidSignature)?;
        // Signature first, then time, as the SDKs do: a forger learns nothing
        // about the tolerance.
        if !within_tolerance(parsed.timestamp, request.received_at, self.tolerance_secs) {
            return Err(Rejection::TimestampOutOfTolerance);
        }
        Ok(matched)
    }
}

// ---- Normalization --------------------------------------------------------

/// The payment part of a Stripe object, before the event envelope is added.
struct Payment {
    id: PaymentId,
    amount: u64,
    currency_pointer: &'static str,
    merchant_reference: Option<String>,
    customer_id: Option<String>,
    payment_method: Option<String>,
}

impl Stripe {
    fn payment(&self, event: &Value, event_type: &str) -> Result<Option<Payment>, NormalizeError> {
        match event_type {
            "payment_intent.succeeded" => self.payment_intent(event).map(Some),
            "charge.succeeded" => self.charge(event),
            "checkout.session.completed" => self.checkout_session(event),
            _ => Ok(None),
        }
    }

    fn payment_intent(&self, event: &Value) -> Result<Payment, NormalizeError> {
        Ok(Payment {
            id: fields::payment_id(event, "/data/object/id")?,
            amount: fields::u64(event, "/data/object/amount_received")?,
            currency_pointer: "/data/object/currency",
            merchant_reference: self.metadata_reference(event)?,
            customer_id: fields::opt_str(event, "/data/object/customer")?,
            payment_method: single_method_type(event),
        })
    }

    /// Only a paid and captured charge is a payment success; an authorisation
    /// alone is not. Charges made without a PaymentIntent (the legacy Charges
    /// API) are keyed by their own id.
    fn charge(&self, event: &Value) -> Result<Option<Payment>, NormalizeError> {
        if !(fields::flag(event, "/data/object/paid")? && fields::flag(event, "/data/object/captured")?) {
            return Ok(None);
        }
        let id_pointer = match fields::get(event, "/data/object/payment_intent") {
            Some(_) => "/data/object/payment_intent",
            None => "/data/object/id",
        };
        let amount_pointer = match fields::get(event, "/data/object/amount_captured") {
            Some(_) => "/data/object/amount_captured",
            None => "/data/object/amount",
        };
        Ok(Some(Payment {
            id: fields::payment_id(event, id_pointer)?,
            amount: fields::u64(event, amount_pointer)?,
            currency_pointer: "/data/object/currency",
            merchant_reference: self.metadata_reference(event)?,
            customer_id: fields::opt_str(event, "/data/object/customer")?,
            payment_method: fields::opt_str(event, "/data/object/payment_method_details/type")?,
        }))
    }

    /// A paid Checkout Session in payment mode. Sessions without a
    /// PaymentIntent (subscriptions) are ignored: their money moves through
    /// an invoice whose own `payment_intent.succeeded` announces it, and
    /// keying them by session id would publish that payment twice.
    fn checkout_session(&self, event: &Value) -> Result<Option<Payment>, NormalizeError> {
        let paid = fields::opt_str(event, "/data/object/payment_status")?.as_deref() == Some("paid");
        if !paid || fields::get(event, "/data/object/payment_intent").is_none() {
            return Ok(None);
        }
        let reference = match fields::opt_str(event, "/data/object/client_reference_id")? {
            Some(reference) => Some(reference),
            None => self.metadata_reference(event)?,
        };
        Ok(Some(Payment {
            id: fields::payment_id(event, "/data/object/payment_intent")?,
            amount: fields::u64(event, "/data/object/amount_total")?,
            currency_pointer: "/data/object/currency",
            merchant_reference: reference,
            customer_id: fields::opt_str(event, "/data/object/customer")?,
            payment_method: single_method_type(event),
        }))
    }

    fn metadata_reference(&self, event: &Value) -> Result<Option<String>, NormalizeError> {
        let object = fields::get(event, "/data/object").unwrap_or(&Value::Null);
        fields::opt_str(object, &self.reference_pointer)
    }
}

/// `payment_method_types` names the methods a payment *allowed*; only when it
/// allowed one is that the method used.
fn single_method_type(event: &Value) -> Option<String> {
    match fields::get(event, "/data/object/payment_method_types") {
        Some(Value::Array(types)) if types.len() == 1 => types[0].as_str().map(str::to_owned),
        _ => None,
    }
}

impl Provider for Stripe {
    fn headers(&self) -> Vec<String> {
        vec![HEADER.into()]
    }

    fn verify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check(request)
    }

    fn normalize(&self, arrival: &Arrival) -> Result<Normalized, NormalizeError> {
        let event = fields::parse(&arrival.request.body)?;
        let event_type = fields::str(&event, "/type")?.to_owned();
        let Some(payment) = self.payment(&event, &event_type)? else {
            return Ok(Normalized::Ignored { event_type });
        };
        Ok(Normalized::Payment(PaymentFacts {
            payment_id: payment.id,
            amount: MinorUnits::new(payment.amount),
            currency: fields::currency(&event, payment.currency_pointer)?,
            livemode: fields::flag(&event, "/livemode")?,
            merchant_reference: payment.merchant_reference,
            customer_id: payment.customer_id,
            payment_method: payment.payment_method,
            provider_event_id: Some(fields::str(&event, "/id")?.to_owned()),
            provider_event_type: event_type,
            occurred_at: fields::time(&event, "/created")?,
        }))
    }

    // ---- Signing and sample -----------------------------------------------

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let t = at.timestamp().to_string();
        let mac = super::signature::hmac_sha256(self.keys.first(), &[t.as_bytes(), b".", body]);
        vec![("Stripe-Signature".into(), format!("t={t},v1={}", hex::encode(mac)))]
    }

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let id = |prefix: &str| format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let pi = id("pi");
        let event = json!({
            "id": id("evt"), "object": "event", "api_version": "2024-06-20",
            "created": at.timestamp(), "livemode": false, "pending_webhooks": 1,
            "type": "payment_intent.succeeded",
            "data": {"object": {
                "id": pi, "object": "payment_intent", "amount": 2000, "amount_received": 2000,
                "currency": "eur", "customer": id("cus"), "status": "succeeded",
                "latest_charge": id("ch"), "payment_method": id("pm"),
                "payment_method_types": ["card"], "livemode": false, "created": at.timestamp(),
                "metadata": {"order_id": format!("order_{}", &pi[3..11])}
            }}
        });
        serde_json::to_vec_pretty(&event).expect("a json! value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{
        config::Env,
        domain::{ArrivalId, Headers, RequestId, SourceName},
    };

    fn stripe(secrets: &[&str]) -> Stripe {
        let list: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
        let table: toml::Table = toml::from_str(&format!("secrets = [{}]", list.join(","))).unwrap();
        let env = Env::default();
        let mut settings = SourceSettings::new("sources[0]".into(), table, &env);
        let keys = settings
            .secrets()
            .unwrap()
            .iter()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).as_bytes().to_vec())
            .collect();
        Stripe { keys: SigningKeys::new(keys), tolerance_secs: 300, reference_pointer: "/metadata/order_id".into() }
    }

    fn request(header: Option<&str>, body: &str, now: i64) -> WebhookRequest {
        let mut headers = Headers::default();
        if let Some(h) = header {
            headers.insert(HEADER, h);
        }
        WebhookRequest {
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
            received_at: DateTime::from_timestamp(now, 0).unwrap(),
        }
    }

    fn arrival(body: &str) -> Arrival {
        Arrival {
            id: ArrivalId::parse("1-0").unwrap(),
            source: SourceName::parse("stripe").unwrap(),
            provider: "stripe".into(),
            request: request(None, body, 0),
            request_id: RequestId::generate(),
        }
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        let file: Value = serde_json::from_str(include_str!("../../tests/fixtures/vectors/stripe.json")).unwrap();
        let cases = file["cases"].as_array().unwrap();
        assert!(cases.len() >= 8);
        for case in cases {
            let secrets: Vec<&str> = case["secrets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            let t = case["timestamp"].as_i64().unwrap();
            let req = request(case["header"].as_str(), case["payload"].as_str().unwrap(), t);
            let verdict = stripe(&secrets).verify(&req);
            assert_eq!(verdict.is_ok(), case["valid"].as_bool().unwrap(), "{}: {verdict:?}", case["name"]);
        }
    }

    #[test]
    fn header_parser_keeps_every_v1_and_ignores_other_schemes() {
        let parsed = SignatureHeader::parse("t=12,v1=aa,v0=bb,v1=cc,v1=zz").unwrap();
        assert_eq!(parsed, SignatureHeader { timestamp: 12, v1: vec![vec![0xaa], vec![0xcc]] });
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        for header in ["", "t", "t=", "t=abc,v1=00", "v1=00", "t=1,garbage", ",,,", "t=1=2", "t=99999999999999999999"] {
            assert_eq!(SignatureHeader::parse(header), None, "{header:?}");
        }
        let stripe = stripe(&["whsec_test_secret"]);
        for header in ["", "t=1", "t=1,v1=", "t=1,v1=nothex", "\u{0}"] {
            assert_eq!(stripe.verify(&request(Some(header), "{}", 1)), Err(Rejection::InvalidSignature), "{header:?}");
        }
        assert_eq!(stripe.verify(&request(None, "{}", 1)), Err(Rejection::MissingSignature));
    }

    #[test]
    fn timestamps_are_checked_both_ways_after_the_signature() {
        let stripe = stripe(&["whsec_test_secret"]);
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let header = stripe.sign(b"{}", at)[0].1.clone();
        assert!(stripe.verify(&request(Some(&header), "{}", 1_700_000_300)).is_ok());
        assert_eq!(
            stripe.verify(&request(Some(&header), "{}", 1_700_000_301)),
            Err(Rejection::TimestampOutOfTolerance)
        );
        assert_eq!(
            stripe.verify(&request(Some(&header), "{}", 1_699_999_699)),
            Err(Rejection::TimestampOutOfTolerance)
        );
        assert_eq!(stripe.verify(&request(Some(&header), "{ }", 1_690_000_000)), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn documented_payment_intent_normalizes() {
        let body = include_str!("../../tests/fixtures/payloads/stripe-payment_intent.succeeded.json");
        let Normalized::Payment(facts) = stripe(&["k"]).normalize(&arrival(body)).unwrap() else { panic!("ignored") };
        assert_eq!(facts.payment_id.as_str(), "pi_1PgafyB7WZ01zgkWSjxsAJo3");
        assert_eq!((facts.amount.get(), facts.currency.code()), (1099, "USD"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("6735"));
        assert_eq!(facts.customer_id.as_deref(), Some("cus_QXg1o8vcGmoR32"));
        assert_eq!(facts.payment_method.as_deref(), Some("card"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("evt_3PgagcB7WZ01zgkW0Zr2qeCs"));
        assert_eq!(facts.occurred_at.timestamp(), 1_721_948_610);
        assert!(!facts.livemode);
    }

    fn event(event_type: &str, object: Value) -> String {
        json!({"id": "evt_1", "type": event_type, "created": 1, "livemode": true, "data": {"object": object}})
            .to_string()
    }

    fn normalize(event_type: &str, object: Value) -> Normalized {
        stripe(&["k"]).normalize(&arrival(&event(event_type, object))).unwrap()
    }

    #[test]
    fn a_captured_charge_is_keyed_by_its_payment_intent() {
        let charge = json!({"id": "ch_1", "payment_intent": "pi_1", "paid": true, "captured": true,
            "amount": 5000, "amount_captured": 5000, "currency": "jpy", "payment_method_details": {"type": "card"}});
        let Normalized::Payment(facts) = normalize("charge.succeeded", charge) else { panic!() };
        assert_eq!((facts.payment_id.as_str(), facts.amount.get(), facts.currency.code()), ("pi_1", 5000, "JPY"));
        assert!(facts.livemode);
    }

    #[test]
    fn an_uncaptured_charge_is_ignored() {
        let charge = json!({"id": "ch_1", "payment_intent": "pi_1", "paid": true, "captured": false, "amount": 1, "currency": "eur"});
        assert_eq!(
            normalize("charge.succeeded", charge),
            Normalized::Ignored { event_type: "charge.succeeded".into() }
        );
    }

    #[test]
    fn checkout_sessions_count_only_when_paid_with_a_payment_intent() {
        let paid = json!({"id": "cs_1", "payment_intent": "pi_9", "payment_status": "paid", "amount_total": 700,
            "currency": "eur", "client_reference_id": "ord_1", "metadata": {"order_id": "other"}});
        let Normalized::Payment(facts) = normalize("checkout.session.completed", paid) else { panic!() };
        assert_eq!((facts.payment_id.as_str(), facts.merchant_reference.as_deref()), ("pi_9", Some("ord_1")));
        let unpaid = json!({"id": "cs_1", "payment_intent": "pi_9", "payment_status": "unpaid"});
        assert!(matches!(normalize("checkout.session.completed", unpaid), Normalized::Ignored { .. }));
        let subscription = json!({"id": "cs_1", "payment_intent": null, "payment_status": "paid"});
        assert!(matches!(normalize("checkout.session.completed", subscription), Normalized::Ignored { .. }));
    }

    #[test]
    fn other_events_are_ignored() {
        assert!(matches!(normalize("customer.created", json!({"id": "cus_1"})), Normalized::Ignored { .. }));
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let stripe = stripe(&["k"]);
        let reason = |body: &str| stripe.normalize(&arrival(body)).unwrap_err().reason();
        assert_eq!(reason("not json"), "unparseable_payload");
        assert_eq!(reason("[]"), "schema_violation");
        let no_amount = event("payment_intent.succeeded", json!({"id": "pi_1", "currency": "eur"}));
        assert_eq!(reason(&no_amount), "schema_violation");
        let negative =
            event("payment_intent.succeeded", json!({"id": "pi_1", "amount_received": -1, "currency": "eur"}));
        assert_eq!(reason(&negative), "schema_violation");
        let bad_currency =
            event("payment_intent.succeeded", json!({"id": "pi_1", "amount_received": 1, "currency": "zzz"}));
        assert_eq!(reason(&bad_currency), "unsupported_currency");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let stripe = stripe(&["whsec_test_secret"]);
        let at = Utc::now();
        let body = stripe.sample(at);
        let mut headers = Headers::default();
        for (name, value) in stripe.sign(&body, at) {
            headers.insert(&name, &value);
        }
        let req = WebhookRequest { headers, body: body.clone().into(), received_at: at };
        assert_eq!(stripe.verify(&req), Ok(SignatureMatch { secret_index: 0 }));
        assert!(matches!(stripe.normalize(&arrival(std::str::from_utf8(&body).unwrap())), Ok(Normalized::Payment(_))));
        assert_ne!(stripe.sample(at), body, "each sample is a new payment");
    }
}
