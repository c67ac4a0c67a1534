//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>…]`,
//! HMAC-SHA256 over `"{ts}:{raw body}"` (a colon, not Stripe's dot), keyed by
//! the notification destination's secret used verbatim as UTF-8, including its
//! `pdl_ntfset_…` prefix. Any `h1` may match any configured secret (rotation).
//!
//! The header is read as Paddle's Python SDK reads it: items are split on `;`
//! and then on `=`; items without `=` are skipped, and an unknown key, an item
//! with two `=` or a non-numeric `ts` makes the header malformed. A second
//! `ts` is refused too (the SDK would take the last one). An `h1` counts only
//! as 64 lowercase hex digits, since the SDK compares hex text.
//!
//! Tolerance: `tolerance_secs`, default **5**, both directions, checked after
//! the signature. That is the SDK's own default (`Verifier(maximum_variance=5)`);
//! it is strict but payhook checks it once, at the ingress, against the
//! arrival time, so queues behind the ingress never add to the skew. Raise it
//! only if the gateway's clock is not NTP-synchronised.
//!
//! Normalizes `transaction.completed` by default; `succeeded_on` may add (or
//! choose instead) `transaction.paid`, which comes earlier, when the payment is
//! captured but totals and invoice may still change. Both key the payment by
//! the transaction id `data.id`, so a merchant subscribed to both still gets
//! one event. A transaction whose `data.status` is not `paid` or `completed`
//! is ignored.
//!
//! Amounts: `data.details.totals.grand_total`, minor units as a string of
//! digits (what was charged after credits); currency `data.currency_code`.
//! Paddle's minor unit is taken to be the ISO 4217 one (UNCONFIRMED for
//! zero-decimal currencies; no exception is known).
//!
//! Event id: `event_id` (`evt_…`; `notification_id` differs per destination and
//! retry). Merchant reference: `data.custom_data.<merchant_reference_custom_data_key>`
//! (default `order_id`, a string or an integer), since Paddle has no native
//! one. Customer: `data.customer_id` (`ctm_…`). Method: the `method_details.type`
//! of the captured payment attempt. Paddle's payload has no live/test flag
//! (sandbox and live are separate accounts with separate secrets), so it is
//! the source key `livemode`.
//!
//! Keys: `secrets`/`secrets_env`, `tolerance_secs` (5),
//! `succeeded_on` (`["transaction.completed"]`), `merchant_reference_custom_data_key`
//! (`order_id`), `livemode` (false).

use super::prelude::*;

const HEADER: &str = "paddle-signature";
/// The event types that may mean "payment succeeded".
const PAYMENT_EVENTS: [&str; 2] = ["transaction.completed", "transaction.paid"];
/// Transaction states that are a success.
const PAID_STATES: [&str; 2] = ["paid", "completed"];

// ---- Configuration --------------------------------------------------------

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let keys = SigningKeys::from_settings(settings)?;
    let tolerance_secs = settings.u64("tolerance_secs")?.unwrap_or(5);
    let succeeded_types = super::succeeded_on(settings, &PAYMENT_EVENTS, &PAYMENT_EVENTS[..1], None)?;
    let key = settings.string("merchant_reference_custom_data_key")?.unwrap_or_else(|| "order_id".into());
    let mapping = Mapping {
        livemode: settings.bool("livemode")?.unwrap_or(false),
        succeeded_types,
        event_id: EventId::Field("/event_id".into()),
        occurred_at: vec!["/occurred_at".into()],
        // `custom_data` is free-form JSON: an order id may be a string or a number.
        merchant_reference: vec![fields::child("/data/custom_data", &key)],
        customer_id: Some("/data/customer_id".into()),
        refine: Some(captured_method),
        ..Mapping::fixed(
            "paddle",
            include_str!("samples/paddle.json"),
            ["/event_type", "/data/id", "/data/details/totals/grand_total", "/data/currency_code"],
            &[],
        )
        .when_status("/data/status", &PAID_STATES)
    };
    Ok(Provider::new(PaddleSignature { keys, tolerance_secs }, mapping))
}

// ---- Header parsing -------------------------------------------------------

/// A parsed `Paddle-Signature` header.
#[derive(Debug, PartialEq)]
struct SignatureHeader {
    /// `ts` as sent (digits only), signed as text.
    timestamp: String,
    /// Every `h1` that is 64 lowercase hex digits, decoded.
    h1: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// `None` for a header the SDK refuses: no `ts`, a `ts` that is not a
    /// number, two `ts`, an unknown key, or an item with more than one `=`.
    fn parse(header: &str) -> Option<Self> {
        let mut timestamp = None;
        let mut h1 = Vec::new();
        for item in header.split(';').filter(|item| item.contains('=')) {
            let (key, value) = item.split_once('=')?;
            if value.contains('=') {
                return None;
            }
            match key {
                "ts" if timestamp.is_none() && is_unix_time(value) => timestamp = Some(value.to_owned()),
                "h1" => h1.extend(lowercase_hex(value)),
                _ => return None,
            }
        }
        Some(Self { timestamp: timestamp?, h1 })
    }

    /// The signed time; `None` when it does not fit (then the signature is
    /// not checked either: such a header is malformed).
    fn unix_time(&self) -> Option<i64> {
        self.timestamp.parse().ok()
    }
}

fn is_unix_time(value: &str) -> bool {
    !value.is_empty() && value.len() <= 18 && value.bytes().all(|b| b.is_ascii_digit())
}

fn lowercase_hex(value: &str) -> Option<Vec<u8>> {
    let well_formed = value.len() == 64 && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then(|| hex::decode(value).ok()).flatten()
}

// ---- Verification ---------------------------------------------------------

/// A Paddle notification destination's signature.
#[derive(Debug)]
struct PaddleSignature {
    keys: SigningKeys,
    tolerance_secs: u64,
}

impl Scheme for PaddleSignature {
    fn headers(&self) -> Vec<String> {
        vec![HEADER.into()]
    }

    /// The signature, then the time; the delivery is `ts` as sent and the
    /// body (what `h1` signs), whatever other `h1` the header lists.
    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection> {
        let header = request.headers.get(HEADER).ok_or(Rejection::MissingSignature)?;
        let parsed = SignatureHeader::parse(header).ok_or(Rejection::InvalidSignature)?;
        let signed_at = parsed.unix_time().ok_or(Rejection::InvalidSignature)?;
        let ts = parsed.timestamp.as_bytes();
        let matched = self
            .keys
            .match_hmac(Algorithm::Sha256, &[ts, b":", &request.body], &parsed.h1)
            .ok_or(Rejection::InvalidSignature)?;
        Verified::timed(matched, signed_at, self.tolerance_secs, request.received_at, &[ts])
    }

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let ts = at.timestamp().to_string();
        let mac = Algorithm::Sha256.mac(self.keys.first(), [ts.as_bytes(), b":", body]);
        vec![("Paddle-Signature".into(), format!("ts={ts};h1={}", hex::encode(mac)))]
    }
}

// ---- Normalization --------------------------------------------------------

/// The method of the attempt that captured the money (earlier attempts may
/// have failed with another card or method).
fn captured_method(event: &Value, facts: &mut PaymentFacts) -> Result<(), NormalizeError> {
    let attempts = fields::get(event, "/data/payments").and_then(Value::as_array).into_iter().flatten();
    let captured = attempts.into_iter().find(|p| p.get("status").and_then(Value::as_str) == Some("captured"));
    facts.payment_method = captured.and_then(|p| fields::at(p, "/method_details/type")?.as_str()).map(str::to_owned);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        SignatureMatch, Source,
    };

    const SECRET: &str = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I";

    fn paddle() -> Source {
        testing::source("paddle", &json!({"secrets": [SECRET]})).unwrap()
    }

    fn verify(header: Option<&str>, body: &str, now: i64) -> Result<SignatureMatch, Rejection> {
        let source = paddle();
        let headers: Vec<(&str, &str)> = header.map(|h| ("Paddle-Signature", h)).into_iter().collect();
        testing::verify_now(&source, &testing::request(&source, &headers, body.as_bytes(), now))
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        assert!(testing::check_vectors(include_str!("../../tests/fixtures/vectors/paddle.json")) >= 8);
    }

    #[test]
    fn the_published_generic_vector_verifies() {
        let header = "ts=1700000000;h1=af98d7f613a12d628d791f1281f8d5a7bc7d09d372c339200dc8accd78026491";
        assert_eq!(
            verify(Some(header), r#"{"id":"evt_1","amount":1000}"#, 1_700_000_000),
            Ok(SignatureMatch { secret_index: 0 })
        );
    }

    #[test]
    fn the_delivery_is_the_signed_ts_and_body_whatever_other_h1_the_header_lists() {
        let source = paddle();
        let body = br#"{"id":"evt_1","amount":1000}"#;
        let header = "ts=1700000000;h1=af98d7f613a12d628d791f1281f8d5a7bc7d09d372c339200dc8accd78026491";
        let guard =
            |header: &str, body: &[u8]| testing::guard(&source, &[("Paddle-Signature", header)], body, 1_700_000_001);
        let first = guard(header, body).expect("Paddle signs a time");
        assert_eq!(guard(&format!("{header};h1={}", "0".repeat(64)), body), Some(first.clone()));
        let signed = source.sign(body, DateTime::from_timestamp(1_700_000_002, 0).unwrap());
        assert_ne!(guard(&signed[0].1, body).unwrap().key, first.key, "another signed time is another delivery");
        assert_eq!(first.ttl, std::time::Duration::from_secs(5), "5 s tolerance, 1 s already gone, 1 s rounding");
    }

    #[test]
    fn header_parser_keeps_every_h1_and_skips_items_without_a_value() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let parsed = SignatureHeader::parse(&format!("ts=12;h1={a};;junk;h1={b};h1=ABC")).unwrap();
        assert_eq!(parsed, SignatureHeader { timestamp: "12".into(), h1: vec![vec![0xaa; 32], vec![0xbb; 32]] });
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let h1 = "0".repeat(64);
        for header in [
            "",
            "ts",
            "ts=",
            "h1=00",
            "ts=abc;h1=00",
            "ts=-5;h1=00",
            "ts=+5;h1=00",
            "ts=1;ts=2",
            "ts=1;h2=00",
            "ts=1;h1=a=b",
            " ts=1",
            "ts=99999999999999999999999",
        ] {
            assert_eq!(SignatureHeader::parse(header), None, "{header:?}");
        }
        for header in ["", "ts=1", "ts=1;h1=", "ts=1;h1=nothex", &format!("ts=1;h1={}", h1.to_uppercase())] {
            assert_eq!(verify(Some(header), "{}", 1), Err(Rejection::InvalidSignature), "{header:?}");
        }
        assert_eq!(verify(None, "{}", 1), Err(Rejection::MissingSignature));
    }

    #[test]
    fn uppercase_hex_is_refused_as_the_sdk_refuses_it() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let header = paddle().sign(b"{}", at)[0].1.clone();
        let (ts, h1) = header.split_once(";h1=").unwrap();
        assert!(verify(Some(&header), "{}", 1_700_000_000).is_ok());
        let upper = format!("{ts};h1={}", h1.to_uppercase());
        assert_eq!(verify(Some(&upper), "{}", 1_700_000_000), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn timestamps_are_checked_both_ways_after_the_signature() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let header = paddle().sign(b"{}", at)[0].1.clone();
        assert!(verify(Some(&header), "{}", 1_700_000_005).is_ok());
        assert!(verify(Some(&header), "{}", 1_699_999_995).is_ok());
        assert_eq!(verify(Some(&header), "{}", 1_700_000_006), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(Some(&header), "{}", 1_699_999_994), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(Some(&header), "{ }", 1_600_000_000), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn the_tolerance_is_configurable() {
        let source = testing::source("paddle", &json!({"secrets": [SECRET], "tolerance_secs": 60})).unwrap();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let signed = source.sign(b"{}", at);
        let headers = [("Paddle-Signature", signed[0].1.as_str())];
        assert!(testing::verify_now(&source, &testing::request(&source, &headers, b"{}", 1_700_000_060)).is_ok());
    }

    #[test]
    fn documented_transaction_completed_normalizes() {
        let body = include_str!("../../tests/fixtures/payloads/paddle-transaction.completed.json");
        let facts = payment(&paddle(), &[], body.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "txn_01h8dzxgkvdwemdhbpcapj2tbj");
        assert_eq!((facts.amount.get(), facts.currency.code()), (65215, "USD"));
        assert_eq!(facts.merchant_reference, None, "the sample has no custom_data");
        assert_eq!(facts.customer_id.as_deref(), Some("ctm_01h8e18bxp9hby49dnm8ewf0m0"));
        assert_eq!(facts.payment_method.as_deref(), Some("card"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("evt_01h8e1jxjnw9ra6zarhnz1a7y1"));
        assert_eq!(facts.provider_event_type, "transaction.completed");
        assert_eq!(facts.occurred_at.to_rfc3339(), "2023-08-22T07:15:45.366122+00:00");
        assert!(!facts.livemode);
    }

    fn event(event_type: &str, data: Value) -> Vec<u8> {
        json!({"event_id": "evt_1", "event_type": event_type, "occurred_at": "2024-01-01T00:00:00Z", "data": data})
            .to_string()
            .into_bytes()
    }

    fn transaction(status: &str) -> Value {
        json!({"id": "txn_1", "status": status, "currency_code": "JPY", "customer_id": "ctm_1",
            "custom_data": {"order_id": 4711}, "details": {"totals": {"grand_total": "1500"}}})
    }

    #[test]
    fn paid_and_completed_key_one_payment_when_both_are_chosen() {
        let both = json!({"secrets": [SECRET], "succeeded_on": ["transaction.completed", "transaction.paid"],
            "livemode": true});
        let source = testing::source("paddle", &both).unwrap();
        let paid = payment(&source, &[], &event("transaction.paid", transaction("paid")));
        let completed = payment(&source, &[], &event("transaction.completed", transaction("completed")));
        assert_eq!(paid.idempotency_key("paddle"), completed.idempotency_key("paddle"));
        assert_eq!((paid.amount.get(), paid.currency.code()), (1500, "JPY"));
        assert_eq!(paid.merchant_reference.as_deref(), Some("4711"));
        assert!(paid.livemode);
    }

    #[test]
    fn other_events_and_states_are_ignored() {
        let ignored = |event_type: &str, status: &str| {
            testing::normalize(&paddle(), &[], &event(event_type, transaction(status))).unwrap()
                == vec![Normalized::Ignored { event_type: event_type.into() }]
        };
        assert!(ignored("transaction.paid", "paid"), "not chosen by default");
        assert!(ignored("transaction.created", "draft"));
        assert!(ignored("transaction.completed", "past_due"));
        assert!(ignored("customer.created", "active"));
    }

    #[test]
    fn the_merchant_reference_key_is_configurable() {
        let source =
            testing::source("paddle", &json!({"secrets": [SECRET], "merchant_reference_custom_data_key": "ref"}))
                .unwrap();
        let mut data = transaction("completed");
        data["custom_data"] = json!({"ref": "ord_9", "order_id": "other"});
        let facts = payment(&source, &[], &event("transaction.completed", data));
        assert_eq!(facts.merchant_reference.as_deref(), Some("ord_9"));
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |body: &[u8]| testing::normalize(&paddle(), &[], body).unwrap_err().reason();
        assert_eq!(reason(b"not json"), "unparseable_payload");
        assert_eq!(reason(b"{}"), "schema_violation");
        let with = |pointer: &str, value: Value| {
            let mut data = transaction("completed");
            *data.pointer_mut(pointer).unwrap() = value;
            event("transaction.completed", data)
        };
        assert_eq!(reason(&with("/details/totals/grand_total", json!("12.50"))), "schema_violation");
        assert_eq!(reason(&with("/details/totals/grand_total", json!("-1"))), "schema_violation");
        assert_eq!(reason(&with("/currency_code", json!("ZZZ"))), "unsupported_currency");
        assert_eq!(reason(&with("/custom_data", json!({"order_id": ["x"]}))), "schema_violation");
        assert_eq!(reason(&with("/status", json!(7))), "schema_violation");
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = |settings: Value| testing::source("paddle", &settings).unwrap_err().to_string();
        assert!(bad(json!({})).starts_with("sources[0].secrets"));
        assert!(bad(json!({"secrets": ["k"], "succeeded_on": ["transaction.created"]}))
            .starts_with("sources[0].succeeded_on"));
        assert!(bad(json!({"secrets": ["k"], "tolerance_secs": -1})).starts_with("sources[0].tolerance_secs"));
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = paddle();
        let facts = testing::sample_round_trip(&source);
        assert_eq!((facts.amount.get(), facts.currency.code()), (2380, "EUR"));
        assert!(facts.merchant_reference.is_some());
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
