//! PayPal: an RSA signature (PKCS#1 v1.5, SHA-256: `PAYPAL-AUTH-ALGO:
//! SHA256withRSA`) in `PAYPAL-TRANSMISSION-SIG` (base64) over
//! `"{transmission id}|{transmission time}|{webhook id}|{crc32}"`: the two
//! header values verbatim, the id of *this* webhook from PayPal's dashboard
//! (source key `webhook_id`; the literal `WEBHOOK_ID` for simulator events),
//! and the CRC-32 (IEEE) of the raw body as an unsigned decimal. There is no
//! shared secret, so `secrets` is not a PayPal key.
//!
//! The public key is PayPal's certificate, taken one of two ways:
//! - `cert_path`: a pinned PEM certificate, loaded when the config is.
//!   `PAYPAL-CERT-URL` is ignored. When PayPal rotates its certificate the
//!   file must be replaced.
//! - `cert_url_allowlist`: the certificate named by `PAYPAL-CERT-URL`, which
//!   is attacker input: it is fetched (as part of verifying, see [`scheme`])
//!   only when it has PayPal's form, `https://<allowlisted
//!   host>/v1/notifications/certs/<name>`; anything else fails verification
//!   and nothing is fetched. A URL is fetched at most once a minute and at
//!   most ten distinct URLs a minute, so naming URLs cannot make payhook
//!   fetch on every request ([`certificates`] has the rules). A network
//!   error or a 5xx is a [`KeyFetchError`](super::KeyFetchError) (503,
//!   PayPal retries), and stays
//!   the answer for that URL for the minute; a 4xx or a body that is not a
//!   PayPal certificate means the URL names none, and the request fails
//!   verification.
//!
//! Either way the certificate must be within its validity period when the
//! request arrives, as PayPal's SDK requires.
//!
//! Normalizes `PAYMENT.CAPTURE.COMPLETED` with `resource.status` `COMPLETED`.
//! The payment id is the capture id `resource.id`: one capture is one
//! movement of money, and every later event about it (refunds, reversals)
//! names it. The PayPal order it belongs to, when the event has
//! `resource.supplementary_data.related_ids.order_id`, is PayPal's id, not the
//! merchant's, so it is not the merchant reference: that is the merchant-set
//! `resource.invoice_id` (or `resource.custom_id`, source key
//! `merchant_reference_field`). The amount `resource.amount.value` is a
//! major-unit decimal string converted exactly by the ISO exponent (PayPal's
//! whole-number HUF and TWD convert correctly as they are). The capture
//! names no customer. `PAYMENT.CAPTURE.PENDING`, `CHECKOUT.ORDER.APPROVED`,
//! the legacy `PAYMENT.SALE.COMPLETED` and everything else are ignored. The
//! provider event id is `id` (`WH-…`).
//!
//! PayPal signs only a CRC-32 of the body, and CRC-32 is linear: whoever
//! holds the headers of one genuine delivery can pad any other body with 48
//! bytes of JSON whitespace to the same CRC. So a transmission id is good for
//! one body: the first body stored under it is remembered (the replay guard,
//! keyed by source and transmission id), the identical delivery again is an
//! exact replay (200, not stored again) and any other body under that id is
//! `invalid_signature`. The guard remembers an id for as long as its
//! transmission time passes the tolerance, so the tolerance is always on.
//!
//! UNCONFIRMED, so configurable:
//! - Whether PayPal's retries (25 over 3 days) are signed afresh with a new
//!   transmission time: its docs do not say, and its SDK checks no time.
//!   `tolerance_secs` (both directions, after the signature) defaults to 4
//!   days: that accepts a retry carrying the first transmission's time until
//!   the end of the retry period, with a day to spare, and the guard then
//!   remembers each transmission id for as long as it could verify. A
//!   source that knows its retries are re-signed can set a few minutes, which
//!   also shrinks the guard. A resend from PayPal's dashboard of an event
//!   older than that is refused if it keeps its original time.
//! - Live or test: PayPal's payload does not say, so it is the source key
//!   `livemode` (default false).
//!
//! `payhook sign`/`send` cannot produce PayPal's signature. For a dev or test
//! source, `signing_key_path` names a PEM (PKCS#8) RSA private key whose
//! certificate is the pinned `cert_path`; `sign` then signs with it. Without
//! it `sign` sends the transmission headers with an empty signature, which
//! never verifies.
//!
//! Keys: `webhook_id` (required), `cert_path` or `cert_url_allowlist`
//! (exactly one), `signing_key_path` (none), `merchant_reference_field`
//! (`invoice_id`, or `custom_id`), `tolerance_secs` (4 days), `livemode` (false).

mod certificates;
mod scheme;

use self::scheme::PayPalSignature;
use super::prelude::*;

const SUCCEEDED: &str = "PAYMENT.CAPTURE.COMPLETED";
/// Where the merchant's own reference may be, by configuration.
const MERCHANT_REFERENCE_FIELDS: [&str; 2] = ["invoice_id", "custom_id"];

// ---- Configuration --------------------------------------------------------

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let scheme = PayPalSignature::configure(settings)?;
    let fields = MERCHANT_REFERENCE_FIELDS.map(|f| (f, f));
    let field = settings.choice("merchant_reference_field", &fields, MERCHANT_REFERENCE_FIELDS[0])?;
    let resource = |field: &str| format!("/resource/{field}");
    let mapping = Mapping {
        livemode: settings.bool("livemode")?.unwrap_or(false),
        event_id: EventId::Field("/id".into()),
        amount_unit: AmountUnit::Major,
        occurred_at: vec!["/create_time".into()],
        merchant_reference: vec![resource(field)],
        ..Mapping::fixed(
            "paypal",
            include_str!("samples/paypal.json"),
            ["/event_type", &resource("id"), &resource("amount/value"), &resource("amount/currency_code")],
            &[SUCCEEDED],
        )
        .when_status("/resource/status", &["COMPLETED"])
    };
    Ok(Provider::new(scheme, mapping))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    const CERT: &str = "tests/fixtures/vectors/paypal-cert.pem";
    const KEY: &str = "tests/fixtures/vectors/paypal-key.pem";

    fn pinned() -> Source {
        testing::source("paypal", &json!({"webhook_id": "WH-ID", "cert_path": CERT, "signing_key_path": KEY})).unwrap()
    }

    #[test]
    fn config_errors_name_the_key() {
        let error = |settings: Value| testing::source("paypal", &settings).unwrap_err().to_string();
        let starts = |settings: Value, key: &str| {
            let e = error(settings);
            assert!(e.starts_with(&format!("sources[0].{key}")), "{key}: {e}");
        };
        starts(json!({"cert_path": CERT}), "webhook_id");
        starts(json!({"webhook_id": "", "cert_path": CERT}), "webhook_id");
        starts(json!({"webhook_id": "W"}), "cert_path");
        starts(json!({"webhook_id": "W", "cert_path": CERT, "cert_url_allowlist": ["api.paypal.com"]}), "cert_path");
        starts(json!({"webhook_id": "W", "cert_path": "tests/fixtures/vectors/missing.pem"}), "cert_path");
        starts(json!({"webhook_id": "W", "cert_path": "Cargo.toml"}), "cert_path");
        starts(json!({"webhook_id": "W", "cert_path": KEY}), "cert_path");
        starts(json!({"webhook_id": "W", "cert_url_allowlist": []}), "cert_url_allowlist");
        starts(json!({"webhook_id": "W", "cert_url_allowlist": ["https://api.paypal.com"]}), "cert_url_allowlist");
        starts(json!({"webhook_id": "W", "cert_path": CERT, "signing_key_path": CERT}), "signing_key_path");
        starts(
            json!({"webhook_id": "W", "cert_path": CERT, "merchant_reference_field": "order"}),
            "merchant_reference_field",
        );
        starts(json!({"webhook_id": "W", "cert_path": CERT, "secrets": ["s"]}), "secrets");
    }

    #[test]
    fn documented_capture_completed_normalizes() {
        let body = include_str!("../../tests/fixtures/payloads/paypal-PAYMENT.CAPTURE.COMPLETED.json");
        let facts = payment(&pinned(), &[], body.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "27M47624FP291604U");
        assert_eq!((facts.amount.get(), facts.currency.code()), (251, "USD"));
        assert_eq!(facts.merchant_reference, None, "the documented capture has no invoice_id");
        assert_eq!(facts.provider_event_id.as_deref(), Some("WH-58D329510W468432D-8HN650336L201105X"));
        assert_eq!(facts.occurred_at.timestamp_millis(), 1_550_181_007_940);
        assert!(!facts.livemode && facts.customer_id.is_none());
    }

    fn event(event_type: &str, resource: Value) -> Vec<u8> {
        json!({"id": "WH-1", "event_type": event_type, "create_time": "2024-01-01T00:00:00Z", "resource": resource})
            .to_string()
            .into_bytes()
    }

    fn capture(value: &str, currency: &str) -> Value {
        json!({"id": "CAP1", "status": "COMPLETED", "amount": {"value": value, "currency_code": currency},
               "invoice_id": "INV-1", "custom_id": "cust-ref", "supplementary_data": {"related_ids": {"order_id": "ORD1"}}})
    }

    #[test]
    fn the_merchant_reference_field_is_configurable() {
        let body = event(SUCCEEDED, capture("1.00", "EUR"));
        assert_eq!(payment(&pinned(), &[], &body).merchant_reference.as_deref(), Some("INV-1"));
        let settings =
            json!({"webhook_id": "W", "cert_path": CERT, "merchant_reference_field": "custom_id", "livemode": true});
        let facts = payment(&testing::source("paypal", &settings).unwrap(), &[], &body);
        assert_eq!(facts.merchant_reference.as_deref(), Some("cust-ref"));
        assert!(facts.livemode);
    }

    #[test]
    fn major_units_convert_by_the_currency_exponent() {
        let amount = |value: &str, currency: &str| {
            payment(&pinned(), &[], &event(SUCCEEDED, capture(value, currency))).amount.get()
        };
        assert_eq!(
            (amount("2.51", "USD"), amount("100", "JPY"), amount("100", "HUF"), amount("1.005", "KWD")),
            (251, 100, 10_000, 1005)
        );
        let reason = |value: &str, currency: &str| {
            testing::normalize(&pinned(), &[], &event(SUCCEEDED, capture(value, currency))).unwrap_err().reason()
        };
        assert_eq!(reason("2.515", "USD"), "invalid_amount");
        assert_eq!(reason("100.5", "JPY"), "invalid_amount");
        assert_eq!(reason("-1.00", "USD"), "invalid_amount");
        assert_eq!(reason("1.00", "XXX"), "unsupported_currency");
    }

    #[test]
    fn other_events_and_states_are_ignored() {
        let mut pending = capture("1.00", "USD");
        pending["status"] = json!("PENDING");
        for (event_type, resource) in [
            (SUCCEEDED, pending),
            ("PAYMENT.CAPTURE.PENDING", capture("1.00", "USD")),
            ("CHECKOUT.ORDER.APPROVED", json!({"id": "ORD1", "status": "APPROVED"})),
            ("PAYMENT.SALE.COMPLETED", json!({"id": "S1", "state": "completed"})),
        ] {
            let normalized = testing::normalize(&pinned(), &[], &event(event_type, resource)).unwrap();
            assert_eq!(normalized, vec![Normalized::Ignored { event_type: event_type.into() }]);
        }
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |body: &[u8]| testing::normalize(&pinned(), &[], body).unwrap_err().reason();
        assert_eq!(reason(b"not json"), "unparseable_payload");
        assert_eq!(reason(b"{}"), "schema_violation");
        assert_eq!(reason(&event(SUCCEEDED, json!({"id": "C", "status": "COMPLETED"}))), "schema_violation");
        let mut numeric_status = capture("1.00", "USD");
        numeric_status["status"] = json!(1);
        assert_eq!(reason(&event(SUCCEEDED, numeric_status)), "schema_violation");
        let mut no_id = capture("1.00", "USD");
        no_id.as_object_mut().unwrap().remove("id");
        assert_eq!(reason(&event(SUCCEEDED, no_id)), "schema_violation");
    }

    #[test]
    fn samples_verify_and_normalize_with_a_dev_signing_key() {
        let source = pinned();
        let facts = testing::sample_round_trip(&source);
        assert_eq!((facts.amount.get(), facts.currency.code()), (1000, "USD"));
        assert!(facts.merchant_reference.is_some_and(|r| r.starts_with("INV-")));
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
