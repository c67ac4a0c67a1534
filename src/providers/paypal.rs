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
//!   is attacker input: it is fetched (in [`Provider::prefetch`], before
//!   verification) only when it has PayPal's form, `https://<allowlisted
//!   host>/v1/notifications/certs/<name>`; anything else fails verification
//!   and nothing is fetched. A URL is fetched at most once a minute and at
//!   most ten distinct URLs a minute, so naming URLs cannot make payhook
//!   fetch on every request ([`certificates`] has the rules). A network
//!   error or a 5xx is a [`KeyFetchError`] (503, PayPal retries), and stays
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

use std::{fmt, sync::Arc};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde_json::json;

use self::certificates::{CertFetcher, PayPalCert};
use super::{
    delivery::{self, Delivery},
    fields, KeyFetchError, NormalizeError, Notification, Provider, Rejection, SignatureMatch,
};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::{Arrival, Headers, Normalized, PaymentFacts, WebhookRequest},
};

const TRANSMISSION_ID: &str = "paypal-transmission-id";
const TRANSMISSION_TIME: &str = "paypal-transmission-time";
const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
const CERT_URL: &str = "paypal-cert-url";
const AUTH_ALGO: &str = "paypal-auth-algo";
/// The only algorithm PayPal uses for webhooks.
const SHA256_WITH_RSA: &str = "SHA256withRSA";
const SUCCEEDED: &str = "PAYMENT.CAPTURE.COMPLETED";
/// The `PAYPAL-CERT-URL` that `sign` sends (only a pinned source verifies it).
const SIGNED_CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-payhook-local";
const MERCHANT_REFERENCE_FIELDS: [&str; 2] = ["invoice_id", "custom_id"];
/// PayPal retries for 3 days; a day more covers a retry that keeps the first
/// transmission's time (see the module docs).
const DEFAULT_TOLERANCE_SECS: u64 = 4 * 24 * 3600;

/// A configured PayPal webhook.
#[derive(Debug)]
struct PayPal {
    webhook_id: String,
    certificates: Certificates,
    signing_key: Option<SigningKey>,
    /// `/resource/invoice_id` or `/resource/custom_id`.
    reference_pointer: String,
    tolerance_secs: u64,
    livemode: bool,
}

/// Where the verifying certificate comes from.
#[derive(Debug)]
enum Certificates {
    Pinned(Arc<PayPalCert>),
    Fetched(CertFetcher),
}

/// Keys: `webhook_id`, `cert_path` | `cert_url_allowlist`, `signing_key_path`,
/// `merchant_reference_field` (`invoice_id`), `tolerance_secs` (4 days), `livemode` (false).
pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(PayPal::configure(settings)?))
}

impl PayPal {
    fn configure(settings: &mut SourceSettings<'_>) -> Result<Self, ConfigError> {
        let webhook_id = settings.required_string("webhook_id")?;
        if webhook_id.is_empty() {
            return Err(ConfigError::invalid(settings.key("webhook_id"), "must not be empty"));
        }
        let certificates = Certificates::configure(settings)?;
        let signing_key = SigningKey::configure(settings)?;
        let field_key = settings.key("merchant_reference_field");
        let field = settings.string("merchant_reference_field")?.unwrap_or_else(|| "invoice_id".into());
        if !MERCHANT_REFERENCE_FIELDS.contains(&field.as_str()) {
            return Err(ConfigError::invalid(field_key, "expected \"invoice_id\" or \"custom_id\""));
        }
        Ok(Self {
            webhook_id,
            certificates,
            signing_key,
            reference_pointer: format!("/resource/{field}"),
            tolerance_secs: settings.u64("tolerance_secs")?.unwrap_or(DEFAULT_TOLERANCE_SECS),
            livemode: settings.bool("livemode")?.unwrap_or(false),
        })
    }
}

impl Certificates {
    fn configure(settings: &mut SourceSettings<'_>) -> Result<Self, ConfigError> {
        let (path_key, list_key) = (settings.key("cert_path"), settings.key("cert_url_allowlist"));
        match (settings.string("cert_path")?, settings.strings("cert_url_allowlist")?) {
            (Some(path), None) => {
                let pem = std::fs::read(&path)
                    .map_err(|e| ConfigError::invalid(&path_key, format!("cannot read {path}: {e}")))?;
                let cert = PayPalCert::parse(&pem)
                    .ok_or_else(|| ConfigError::invalid(&path_key, format!("{path} is not a PEM RSA certificate")))?;
                Ok(Self::Pinned(Arc::new(cert)))
            }
            (None, Some(hosts)) => {
                CertFetcher::new(hosts).map(Self::Fetched).map_err(|problem| ConfigError::invalid(&list_key, problem))
            }
            (Some(_), Some(_)) => Err(ConfigError::invalid(path_key, "set cert_path or cert_url_allowlist, not both")),
            (None, None) => Err(ConfigError::invalid(path_key, "set cert_path or cert_url_allowlist")),
        }
    }
}

// ---- Signing key ----------------------------------------------------------

/// The private key `sign` uses on dev and test sources. `Debug` hides it.
struct SigningKey(RsaKeyPair);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(redacted)")
    }
}

impl SigningKey {
    fn configure(settings: &mut SourceSettings<'_>) -> Result<Option<Self>, ConfigError> {
        let key = settings.key("signing_key_path");
        let Some(path) = settings.string("signing_key_path")? else { return Ok(None) };
        let pem = std::fs::read(&path).map_err(|e| ConfigError::invalid(&key, format!("cannot read {path}: {e}")))?;
        let parsed = x509_cert::der::pem::decode_vec(&pem).ok().filter(|(label, _)| *label == "PRIVATE KEY");
        let pair = parsed.and_then(|(_, der)| RsaKeyPair::from_pkcs8(&der).ok());
        let pair = pair.ok_or_else(|| ConfigError::invalid(&key, format!("{path} is not a PEM PKCS#8 RSA key")))?;
        Ok(Some(Self(pair)))
    }

    fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).ok()?;
        Some(signature)
    }
}

// ---- Header parsing -------------------------------------------------------

/// The signed transmission headers.
#[derive(Debug, PartialEq)]
struct Transmission<'a> {
    id: &'a str,
    time: &'a str,
    signature: Vec<u8>,
}

impl<'a> Transmission<'a> {
    /// `None` unless id and time are present, the algorithm is
    /// `SHA256withRSA` and the signature is base64.
    fn parse(headers: &'a Headers, signature: &str) -> Option<Self> {
        if headers.get(AUTH_ALGO)? != SHA256_WITH_RSA {
            return None;
        }
        Some(Self {
            id: headers.get(TRANSMISSION_ID)?,
            time: headers.get(TRANSMISSION_TIME)?,
            signature: STANDARD.decode(signature.trim()).ok().filter(|s| !s.is_empty())?,
        })
    }
}

// ---- Verification ---------------------------------------------------------

impl PayPal {
    /// The signature, then the time; the delivery is the transmission id,
    /// with one body allowed under it (the CRC-32 binds nothing).
    fn check(&self, request: &WebhookRequest) -> Result<(SignatureMatch, Delivery), Rejection> {
        let headers = &request.headers;
        let signature = headers.get(TRANSMISSION_SIG).ok_or(Rejection::MissingSignature)?;
        let transmission = Transmission::parse(headers, signature).ok_or(Rejection::InvalidSignature)?;
        let cert = self.certificate(headers, request.received_at).ok_or(Rejection::InvalidSignature)?;
        let message = self.signed_message(transmission.id, transmission.time, &request.body);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &cert.public_key)
            .verify(message.as_bytes(), &transmission.signature)
            .map_err(|_| Rejection::InvalidSignature)?;
        let sent = DateTime::parse_from_rfc3339(transmission.time).map_err(|_| Rejection::InvalidSignature)?;
        if !super::signature::within_tolerance(sent.timestamp(), request.received_at, self.tolerance_secs) {
            return Err(Rejection::TimestampOutOfTolerance);
        }
        let valid_for = delivery::valid_for(sent.timestamp(), self.tolerance_secs, request.received_at);
        // There are no secrets to rotate: the one certificate is "secret" 0.
        Ok((SignatureMatch { secret_index: 0 }, Delivery::checksummed(&[transmission.id.as_bytes()], valid_for)))
    }

    /// `id|time|webhook_id|crc32`, the string PayPal signs.
    fn signed_message(&self, id: &str, time: &str, body: &[u8]) -> String {
        format!("{id}|{time}|{}|{}", self.webhook_id, crc32fast::hash(body))
    }

    /// The certificate to verify with, valid when the request arrived.
    fn certificate(&self, headers: &Headers, at: DateTime<Utc>) -> Option<Arc<PayPalCert>> {
        let cert = match &self.certificates {
            Certificates::Pinned(cert) => Arc::clone(cert),
            Certificates::Fetched(fetcher) => fetcher.cached(&fetcher.allowed(headers.get(CERT_URL)?)?, at)?,
        };
        cert.valid_at(at).then_some(cert)
    }
}

// ---- Normalization --------------------------------------------------------

impl PayPal {
    /// A PayPal delivery is one event.
    fn notification(&self, arrival: &Arrival) -> Result<Normalized, NormalizeError> {
        let event = fields::parse(&arrival.request.body)?;
        let event_type = fields::str(&event, "/event_type")?.to_owned();
        if event_type != SUCCEEDED || fields::opt_str(&event, "/resource/status")?.as_deref() != Some("COMPLETED") {
            return Ok(Normalized::Ignored { event_type });
        }
        let currency = fields::currency(&event, "/resource/amount/currency_code")?;
        Ok(Normalized::Payment(PaymentFacts {
            payment_id: fields::payment_id(&event, "/resource/id")?,
            amount: fields::major_amount(&event, "/resource/amount/value", currency)?,
            currency,
            livemode: self.livemode,
            merchant_reference: fields::opt_str(&event, &self.reference_pointer)?,
            customer_id: None,
            payment_method: None,
            provider_event_id: Some(fields::str(&event, "/id")?.to_owned()),
            provider_event_type: event_type,
            occurred_at: fields::time(&event, "/create_time")?,
        }))
    }
}

impl Provider for PayPal {
    fn headers(&self) -> Vec<String> {
        [TRANSMISSION_ID, TRANSMISSION_TIME, TRANSMISSION_SIG, CERT_URL, AUTH_ALGO].map(String::from).to_vec()
    }

    fn verify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check(request).map(|(matched, _)| matched)
    }

    fn verify_delivery(&self, request: &WebhookRequest) -> Result<(SignatureMatch, Option<Delivery>), Rejection> {
        self.check(request).map(|(matched, delivery)| (matched, Some(delivery)))
    }

    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        self.notification(arrival).map(|n| vec![Ok(n)])
    }

    /// Fetches the certificate `PAYPAL-CERT-URL` names when the source uses
    /// the allowlist, the URL is allowed and it is not cached. A URL that is
    /// not allowed is never fetched: verification then refuses the request.
    fn prefetch<'a>(&'a self, request: &'a WebhookRequest) -> Option<BoxFuture<'a, Result<(), KeyFetchError>>> {
        let Certificates::Fetched(fetcher) = &self.certificates else { return None };
        let url = fetcher.allowed(request.headers.get(CERT_URL)?)?;
        if fetcher.cached(&url, request.received_at).is_some() {
            return None;
        }
        Some(fetcher.prefetch(url, request.received_at))
    }

    // ---- Signing and sample -----------------------------------------------

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let id = uuid::Uuid::new_v4().to_string();
        let time = at.to_rfc3339_opts(SecondsFormat::Secs, true);
        let message = self.signed_message(&id, &time, body);
        let signature = self.signing_key.as_ref().and_then(|key| key.sign(message.as_bytes()));
        vec![
            ("PAYPAL-TRANSMISSION-ID".into(), id),
            ("PAYPAL-TRANSMISSION-TIME".into(), time),
            ("PAYPAL-TRANSMISSION-SIG".into(), signature.map(|s| STANDARD.encode(s)).unwrap_or_default()),
            ("PAYPAL-CERT-URL".into(), SIGNED_CERT_URL.into()),
            ("PAYPAL-AUTH-ALGO".into(), SHA256_WITH_RSA.into()),
        ]
    }

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let id = |len: usize| uuid::Uuid::new_v4().simple().to_string()[..len].to_ascii_uppercase();
        let (capture, time) = (id(17), at.to_rfc3339_opts(SecondsFormat::Secs, true));
        let event = json!({
            "id": format!("WH-{}-{}", id(17), id(17)), "create_time": at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "resource_type": "capture", "event_type": SUCCEEDED, "summary": "Payment completed for $ 10.00 USD",
            "resource": {
                "id": capture, "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "10.00"},
                "final_capture": true, "invoice_id": format!("INV-{}", id(8)),
                "supplementary_data": {"related_ids": {"order_id": id(17)}},
                "create_time": time, "update_time": time,
                "links": [{"href": format!("https://api.sandbox.paypal.com/v2/payments/captures/{capture}"),
                           "rel": "self", "method": "GET"}]
            },
            "event_version": "1.0", "resource_version": "2.0"
        });
        serde_json::to_vec_pretty(&event).expect("a json! value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        config::Env,
        providers::{
            testing::{self, payment},
            Source,
        },
    };

    const CERT: &str = "tests/fixtures/vectors/paypal-cert.pem";
    const KEY: &str = "tests/fixtures/vectors/paypal-key.pem";
    const VECTORS: &str = include_str!("../../tests/fixtures/vectors/paypal.json");
    const SANDBOX_CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-test";

    fn pinned() -> Source {
        testing::source("paypal", &json!({"webhook_id": "WH-ID", "cert_path": CERT, "signing_key_path": KEY})).unwrap()
    }

    /// A PayPal built directly, so tests can reach its certificate cache.
    fn direct(settings: Value) -> Result<PayPal, ConfigError> {
        let table: toml::Table = serde_json::from_value(settings).unwrap();
        let env = Env::default();
        let mut settings = SourceSettings::new("sources[0]".into(), table, &env);
        let paypal = PayPal::configure(&mut settings)?;
        settings.finish()?;
        Ok(paypal)
    }

    fn fetching(hosts: &[&str]) -> PayPal {
        direct(json!({"webhook_id": "WH-ID", "cert_url_allowlist": hosts})).unwrap()
    }

    fn request(headers: &[(&str, &str)], body: &[u8], at: i64) -> WebhookRequest {
        let mut kept = Headers::default();
        for (name, value) in headers {
            kept.insert(name, value);
        }
        WebhookRequest { headers: kept, body: bytes::Bytes::copy_from_slice(body), received_at: time(at) }
    }

    fn time(at: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(at, 0).unwrap()
    }

    /// The first valid vector: its settings' webhook id, headers, body and time.
    fn valid_vector() -> (String, Vec<(String, String)>, String, i64) {
        let file: Value = serde_json::from_str(VECTORS).unwrap();
        let case = file["cases"].as_array().unwrap().iter().find(|c| c["valid"] == true).unwrap();
        let headers = case["headers"].as_object().unwrap().iter();
        (
            case["settings"]["webhook_id"].as_str().unwrap().to_owned(),
            headers.map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned())).collect(),
            case["body"].as_str().unwrap().to_owned(),
            case["received_at"].as_i64().unwrap(),
        )
    }

    fn with(headers: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
        let mut changed: Vec<_> = headers.iter().filter(|(k, _)| k != name).cloned().collect();
        changed.extend(value.map(|v| (name.to_owned(), v.to_owned())));
        changed
    }

    fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        assert!(testing::check_vectors(VECTORS) >= 9);
    }

    #[test]
    fn missing_and_malformed_headers_are_refused_without_panicking() {
        let (webhook_id, headers, body, at) = valid_vector();
        let paypal = direct(json!({"webhook_id": webhook_id, "cert_path": CERT})).unwrap();
        let verdict = |headers: Vec<(String, String)>| paypal.verify(&request(&pairs(&headers), body.as_bytes(), at));
        assert!(verdict(headers.clone()).is_ok());
        assert_eq!(verdict(with(&headers, TRANSMISSION_SIG, None)), Err(Rejection::MissingSignature));
        let refused: [(&str, Option<&str>); 9] = [
            (TRANSMISSION_ID, None),
            (TRANSMISSION_TIME, None),
            (AUTH_ALGO, None),
            (AUTH_ALGO, Some("SHA1withRSA")),
            (AUTH_ALGO, Some("sha256withrsa")),
            (TRANSMISSION_SIG, Some("")),
            (TRANSMISSION_SIG, Some("not base64!")),
            (TRANSMISSION_SIG, Some("AAAA")),
            (TRANSMISSION_SIG, Some(&"A".repeat(10_000))),
        ];
        for (name, value) in refused {
            assert_eq!(verdict(with(&headers, name, value)), Err(Rejection::InvalidSignature), "{name}: {value:?}");
        }
    }

    #[test]
    fn the_webhook_id_is_part_of_what_is_signed() {
        let (_, headers, body, at) = valid_vector();
        let other = direct(json!({"webhook_id": "WH-OTHER", "cert_path": CERT})).unwrap();
        assert_eq!(other.verify(&request(&pairs(&headers), body.as_bytes(), at)), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn the_certificate_must_be_valid_when_the_request_arrives() {
        let (webhook_id, headers, body, _) = valid_vector();
        let paypal = direct(json!({"webhook_id": webhook_id, "cert_path": CERT})).unwrap();
        let at_1970 = request(&pairs(&headers), body.as_bytes(), 0);
        assert_eq!(paypal.verify(&at_1970), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn the_tolerance_applies_both_ways_after_the_signature() {
        let source = testing::source(
            "paypal",
            &json!({"webhook_id": "WH-ID", "cert_path": CERT, "signing_key_path": KEY, "tolerance_secs": 300}),
        )
        .unwrap();
        let signed = source.provider.sign(b"{}", time(1_700_000_000));
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let verify = |body: &[u8], at| source.provider.verify(&testing::request(&source, &headers, body, at));
        assert!(verify(b"{}", 1_700_000_300).is_ok());
        assert_eq!(verify(b"{}", 1_700_000_301), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(b"{}", 1_699_999_699), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(b"{ }", 1_600_000_000), Err(Rejection::InvalidSignature));
        // By default it is four days: PayPal's three days of retries and one to spare.
        let default = pinned();
        let at = |t| testing::request(&default, &headers, b"{}", t);
        assert!(default.provider.verify(&at(1_700_000_000 + 4 * 86_400)).is_ok());
        assert_eq!(default.provider.verify(&at(1_700_000_001 + 4 * 86_400)), Err(Rejection::TimestampOutOfTolerance));
    }

    #[test]
    fn the_delivery_is_the_transmission_id_whatever_the_body() {
        let source = pinned();
        let signed = source.provider.sign(b"{}", time(1_700_000_000));
        let mut headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = testing::request(&source, &headers, b"{}", 1_700_000_060);
        let (_, delivery) = source.provider.verify_delivery(&request).unwrap();
        let delivery = delivery.expect("PayPal names its deliveries");
        let (genuine, other) = (delivery.guard("paypal", b"{}"), delivery.guard("paypal", b"{ }"));
        assert_eq!(genuine.key, other.key, "one body per transmission id");
        assert_ne!(genuine.body_hash, other.body_hash);
        assert_eq!(genuine.ttl, std::time::Duration::from_secs(4 * 86_400 - 59));
        headers[0].1 = "another-transmission";
        let other_id = testing::request(&source, &headers, b"{}", 1_700_000_060);
        assert_eq!(source.provider.verify_delivery(&other_id), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn refused_urls_are_never_fetched_and_fail_verification() {
        let (_, headers, body, at) = valid_vector();
        let paypal = fetching(&["api.paypal.com"]);
        for url in [None, Some("http://api.paypal.com/cert"), Some("https://169.254.169.254/latest/meta-data")] {
            let headers = with(&headers, CERT_URL, url);
            let request = request(&pairs(&headers), body.as_bytes(), at);
            assert!(paypal.prefetch(&request).is_none(), "{url:?}");
            assert_eq!(paypal.verify(&request), Err(Rejection::InvalidSignature), "{url:?}");
        }
    }

    #[test]
    fn a_cached_certificate_verifies_without_fetching() {
        let (webhook_id, headers, body, at) = valid_vector();
        let paypal =
            direct(json!({"webhook_id": webhook_id, "cert_url_allowlist": ["api.sandbox.paypal.com"]})).unwrap();
        let headers = with(&headers, CERT_URL, Some(SANDBOX_CERT_URL));
        let request = request(&pairs(&headers), body.as_bytes(), at);
        assert!(paypal.prefetch(&request).is_some(), "an uncached certificate is fetched");
        assert_eq!(paypal.verify(&request), Err(Rejection::InvalidSignature), "no certificate, no verification");

        let Certificates::Fetched(fetcher) = &paypal.certificates else { panic!() };
        let cert = PayPalCert::parse(&std::fs::read(CERT).unwrap()).unwrap();
        fetcher.remember(&reqwest::Url::parse(SANDBOX_CERT_URL).unwrap(), cert, time(at));
        assert!(paypal.prefetch(&request).is_none(), "a cached certificate is not fetched again");
        assert_eq!(paypal.verify(&request), Ok(SignatureMatch { secret_index: 0 }));
        let other_url = with(&headers, CERT_URL, Some("https://api.sandbox.paypal.com/v1/notifications/certs/CERT-2"));
        assert_eq!(
            paypal.verify(&self::request(&pairs(&other_url), body.as_bytes(), at)),
            Err(Rejection::InvalidSignature)
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let error = |settings: Value| direct(settings).unwrap_err().to_string();
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
        assert_ne!(source.provider.sample(at), source.provider.sample(at), "each sample is a new payment");
    }

    #[test]
    fn without_a_signing_key_signatures_are_empty_and_never_verify() {
        let source = testing::source("paypal", &json!({"webhook_id": "W", "cert_path": CERT})).unwrap();
        let at = Utc::now();
        let signed = source.provider.sign(b"{}", at);
        assert!(signed.iter().any(|(k, v)| k == "PAYPAL-TRANSMISSION-SIG" && v.is_empty()));
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = testing::request(&source, &headers, b"{}", at.timestamp());
        assert_eq!(source.provider.verify(&request), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn debug_output_hides_the_signing_key() {
        let debug = format!("{:?}", pinned().provider);
        assert!(debug.contains("SigningKey(redacted)") && !debug.contains("PRIVATE"), "{debug}");
    }
}
