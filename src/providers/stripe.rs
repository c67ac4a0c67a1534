//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 over
//! `"{t}.{raw body}"` keyed by the endpoint secret used verbatim (including
//! its `whsec_` prefix, unlike Standard Webhooks).
//!
//! Normalizes `payment_intent.succeeded`, `charge.succeeded` (paid and
//! captured) and `checkout.session.completed` (`payment_status = "paid"`).
//! All three key the payment by its PaymentIntent id, so a merchant
//! subscribed to several of them still gets one event per payment.
//!
//! Stripe amounts are in the currency's smallest unit "as Stripe defines it",
//! which is the ISO 4217 minor unit except for Stripe's special cases: ISK is
//! zero-decimal in ISO but Stripe keeps it two-decimal (100 = 1 króna), so its
//! amounts are divided by 100. The list is the source key
//! `two_decimal_currencies` (default `["ISK"]`), because Stripe's docs are the
//! only authority and they have changed before (UGX may need adding).

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let keys = SigningKeys::from_settings(settings)?;
    let tolerance_secs = settings.u64("tolerance_secs")?.unwrap_or(300);
    let key = settings.string("merchant_reference_metadata_key")?.unwrap_or_else(|| "order_id".into());
    let list_key = settings.key("two_decimal_currencies");
    let codes = settings.strings("two_decimal_currencies")?.unwrap_or_else(|| vec!["ISK".into()]);
    let unknown = |code: &String| ConfigError::invalid(&list_key, format!("{code} is not an ISO 4217 currency"));
    let two_decimal = codes.iter().map(|c| Currency::parse(c).ok_or_else(|| unknown(c))).collect::<Result<_, _>>()?;
    let normalizer = Stripe { reference_pointer: fields::child("/data/object/metadata", &key), two_decimal };
    Ok(Provider::new(StripeSignature { keys, tolerance_secs }, normalizer))
}

// ---- Header parsing -------------------------------------------------------

const HEADER: &str = "stripe-signature";

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

/// A Stripe endpoint's signature.
#[derive(Debug)]
struct StripeSignature {
    keys: SigningKeys,
    tolerance_secs: u64,
}

impl Scheme for StripeSignature {
    fn headers(&self) -> Vec<String> {
        vec![HEADER.into()]
    }

    /// The signature, then the time; the delivery is `t` and the body (what
    /// `v1` signs), whichever `v1` matched and whatever else the header lists.
    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection> {
        let header = request.headers.get(HEADER).ok_or(Rejection::MissingSignature)?;
        let parsed = SignatureHeader::parse(header).ok_or(Rejection::InvalidSignature)?;
        let t = parsed.timestamp.to_string();
        let matched = self
            .keys
            .match_hmac(Algorithm::Sha256, &[t.as_bytes(), b".", &request.body], &parsed.v1)
            .ok_or(Rejection::InvalidSignature)?;
        Verified::timed(matched, parsed.timestamp, self.tolerance_secs, request.received_at, &[t.as_bytes()])
    }

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let t = at.timestamp().to_string();
        let mac = Algorithm::Sha256.mac(self.keys.first(), [t.as_bytes(), b".", body]);
        vec![("Stripe-Signature".into(), format!("t={t},v1={}", hex::encode(mac)))]
    }
}

// ---- Normalization --------------------------------------------------------

/// A Stripe endpoint's normalizer.
#[derive(Debug)]
struct Stripe {
    /// JSON pointer to the merchant reference inside the object's `metadata`.
    reference_pointer: String,
    /// ISO zero-decimal currencies Stripe counts in hundredths.
    two_decimal: Vec<Currency>,
}

/// Where an event's payment is: the pointers to its id and amount, and what
/// the kinds of event say differently.
struct Payment {
    id: &'static str,
    amount: &'static str,
    reference: Option<String>,
    method: Option<String>,
}

impl Stripe {
    /// The payment an event announces, if it announces one.
    fn payment(&self, event: &Value, event_type: &str) -> Result<Option<Payment>, NormalizeError> {
        let metadata = || fields::opt_str(event, &self.reference_pointer);
        let object = |field: &str| fields::get(event, &format!("/data/object/{field}"));
        Ok(match event_type {
            "payment_intent.succeeded" => Some(Payment {
                id: "/data/object/id",
                amount: "/data/object/amount_received",
                reference: metadata()?,
                method: single_method_type(event),
            }),
            // Only a paid and captured charge is a payment success; an
            // authorisation alone is not. Charges made without a
            // PaymentIntent (the legacy Charges API) are keyed by their own id.
            "charge.succeeded"
                if fields::flag(event, "/data/object/paid")? && fields::flag(event, "/data/object/captured")? =>
            {
                Some(Payment {
                    id: if object("payment_intent").is_some() {
                        "/data/object/payment_intent"
                    } else {
                        "/data/object/id"
                    },
                    amount: match object("amount_captured") {
                        Some(_) => "/data/object/amount_captured",
                        None => "/data/object/amount",
                    },
                    reference: metadata()?,
                    method: fields::opt_str(event, "/data/object/payment_method_details/type")?,
                })
            }
            // A paid Checkout Session in payment mode. Sessions without a
            // PaymentIntent (subscriptions) are ignored: their money moves
            // through an invoice whose own `payment_intent.succeeded`
            // announces it, and keying them by session id would publish that
            // payment twice.
            "checkout.session.completed"
                if fields::opt_str(event, "/data/object/payment_status")?.as_deref() == Some("paid")
                    && object("payment_intent").is_some() =>
            {
                Some(Payment {
                    id: "/data/object/payment_intent",
                    amount: "/data/object/amount_total",
                    reference: fields::opt_str(event, "/data/object/client_reference_id")?
                        .map_or_else(metadata, |r| Ok(Some(r)))?,
                    method: single_method_type(event),
                })
            }
            _ => None,
        })
    }

    /// Stripe's amount in ISO minor units.
    fn amount(&self, event: &Value, pointer: &str, currency: Currency) -> Result<MinorUnits, NormalizeError> {
        let amount = fields::u64(event, pointer)?;
        if !self.two_decimal.contains(&currency) {
            return Ok(MinorUnits::new(amount));
        }
        MinorUnits::rescale(amount, 2, currency)
            .map_err(|source| NormalizeError::Amount { field: fields::name(pointer), source })
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

impl Normalizer for Stripe {
    /// A delivery is one event.
    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        let event = fields::parse(&arrival.request.body)?;
        let event_type = fields::str(&event, "/type")?.to_owned();
        let Some(payment) = self.payment(&event, &event_type)? else {
            return one(Normalized::Ignored { event_type });
        };
        let currency = fields::currency(&event, "/data/object/currency")?;
        one(Normalized::Payment(PaymentFacts {
            payment_id: fields::payment_id(&event, payment.id)?,
            amount: self.amount(&event, payment.amount, currency)?,
            currency,
            livemode: fields::flag(&event, "/livemode")?,
            merchant_reference: payment.reference,
            customer_id: fields::opt_str(&event, "/data/object/customer")?,
            payment_method: payment.method,
            provider_event_id: Some(fields::str(&event, "/id")?.to_owned()),
            provider_event_type: event_type,
            occurred_at: fields::time(&event, "/created")?,
        }))
    }

    // ---- Sample -----------------------------------------------------------

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        sample::render(include_str!("samples/stripe.json"), at, &[])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        SignatureMatch, Source,
    };

    fn stripe() -> Source {
        testing::source("stripe", &json!({"secrets": ["whsec_test_secret"]})).unwrap()
    }

    fn verify(header: Option<&str>, body: &str, now: i64) -> Result<SignatureMatch, Rejection> {
        let source = stripe();
        let headers: Vec<(&str, &str)> = header.map(|h| ("Stripe-Signature", h)).into_iter().collect();
        testing::verify_now(&source, &testing::request(&source, &headers, body.as_bytes(), now))
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        assert!(testing::check_vectors(include_str!("../../tests/fixtures/vectors/stripe.json")) >= 8);
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
        for header in ["", "t=1", "t=1,v1=", "t=1,v1=nothex", "t=1,v1=0g"] {
            assert_eq!(verify(Some(header), "{}", 1), Err(Rejection::InvalidSignature), "{header:?}");
        }
        assert_eq!(verify(None, "{}", 1), Err(Rejection::MissingSignature));
    }

    #[test]
    fn timestamps_are_checked_both_ways_after_the_signature() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let header = stripe().sign(b"{}", at)[0].1.clone();
        assert!(verify(Some(&header), "{}", 1_700_000_300).is_ok());
        assert_eq!(verify(Some(&header), "{}", 1_700_000_301), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(Some(&header), "{}", 1_699_999_699), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(Some(&header), "{ }", 1_690_000_000), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn the_delivery_is_t_and_the_body_whatever_else_the_header_lists() {
        let source = stripe();
        let header = source.sign(b"{}", DateTime::from_timestamp(1_700_000_000, 0).unwrap())[0].1.clone();
        let guard =
            |header: &str, body: &[u8]| testing::guard(&source, &[("Stripe-Signature", header)], body, 1_700_000_010);
        let first = guard(&header, b"{}").expect("Stripe signs a time");
        for padded in [format!("{header},v0=00"), format!("{header},v1={}", "ab".repeat(32)), format!("v1=cd,{header}")]
        {
            assert_eq!(guard(&padded, b"{}"), Some(first.clone()), "{padded}");
        }
        let later = source.sign(b"{}", DateTime::from_timestamp(1_700_000_001, 0).unwrap())[0].1.clone();
        assert_ne!(guard(&later, b"{}").unwrap().key, first.key, "a new signature is a new delivery");
        assert_eq!(first.ttl, std::time::Duration::from_secs(291), "until the tolerance runs out");
    }

    #[test]
    fn documented_payment_intent_normalizes() {
        let body = include_str!("../../tests/fixtures/payloads/stripe-payment_intent.succeeded.json");
        let facts = payment(&stripe(), &[], body.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "pi_1PgafyB7WZ01zgkWSjxsAJo3");
        assert_eq!((facts.amount.get(), facts.currency.code()), (1099, "USD"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("6735"));
        assert_eq!(facts.customer_id.as_deref(), Some("cus_QXg1o8vcGmoR32"));
        assert_eq!(facts.payment_method.as_deref(), Some("card"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("evt_3PgagcB7WZ01zgkW0Zr2qeCs"));
        assert_eq!(facts.occurred_at.timestamp(), 1_721_948_610);
        assert!(!facts.livemode);
    }

    fn event(event_type: &str, object: Value) -> Vec<u8> {
        json!({"id": "evt_1", "type": event_type, "created": 1, "livemode": true, "data": {"object": object}})
            .to_string()
            .into_bytes()
    }

    fn normalize(event_type: &str, object: Value) -> Normalized {
        testing::normalize(&stripe(), &[], &event(event_type, object)).unwrap().remove(0)
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
    fn isk_is_counted_in_hundredths_by_stripe_and_whole_kronur_by_iso() {
        let pi = |amount: u64| json!({"id": "pi_1", "amount_received": amount, "currency": "isk"});
        let Normalized::Payment(facts) = normalize("payment_intent.succeeded", pi(500_000)) else { panic!() };
        assert_eq!((facts.amount.get(), facts.currency.code()), (5000, "ISK"));
        let fractional = event("payment_intent.succeeded", pi(500_050));
        assert_eq!(testing::normalize(&stripe(), &[], &fractional).unwrap_err().reason(), "invalid_amount");
        // HUF and TWD are two-decimal in ISO too: no conversion.
        let huf = json!({"id": "pi_1", "amount_received": 10_000, "currency": "huf"});
        let Normalized::Payment(facts) = normalize("payment_intent.succeeded", huf) else { panic!() };
        assert_eq!(facts.amount.get(), 10_000);
    }

    #[test]
    fn the_two_decimal_list_is_configurable() {
        let source =
            testing::source("stripe", &json!({"secrets": ["k"], "two_decimal_currencies": ["ISK", "UGX"]})).unwrap();
        let body =
            event("payment_intent.succeeded", json!({"id": "pi_1", "amount_received": 700_000, "currency": "ugx"}));
        assert_eq!(payment(&source, &[], &body).amount.get(), 7000);
        let bad = testing::source("stripe", &json!({"secrets": ["k"], "two_decimal_currencies": ["XYZ"]}));
        assert!(bad.unwrap_err().to_string().starts_with("sources[0].two_decimal_currencies"));
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
        let reason = |body: &[u8]| testing::normalize(&stripe(), &[], body).unwrap_err().reason();
        assert_eq!(reason(b"not json"), "unparseable_payload");
        assert_eq!(reason(b"[]"), "schema_violation");
        assert_eq!(
            reason(&event("payment_intent.succeeded", json!({"id": "pi_1", "currency": "eur"}))),
            "schema_violation"
        );
        let negative =
            event("payment_intent.succeeded", json!({"id": "pi_1", "amount_received": -1, "currency": "eur"}));
        assert_eq!(reason(&negative), "schema_violation");
        let bad_currency =
            event("payment_intent.succeeded", json!({"id": "pi_1", "amount_received": 1, "currency": "zzz"}));
        assert_eq!(reason(&bad_currency), "unsupported_currency");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = stripe();
        let facts = testing::sample_round_trip(&source);
        assert_eq!(facts.provider_event_type, "payment_intent.succeeded");
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
