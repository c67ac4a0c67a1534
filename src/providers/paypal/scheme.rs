//! PayPal's signature: SHA256withRSA over the transmission headers, the
//! webhook id and the body's CRC-32, checked with a pinned certificate or
//! one fetched as part of verifying (see the provider's module doc).

use std::{fmt, future::Future, sync::Arc};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256},
};
use base64::{engine::general_purpose::STANDARD, Engine};

use super::certificates::{CertFetcher, PayPalCert};
use crate::providers::{prelude::*, KeyFetchError};

const TRANSMISSION_ID: &str = "paypal-transmission-id";
const TRANSMISSION_TIME: &str = "paypal-transmission-time";
const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
const CERT_URL: &str = "paypal-cert-url";
const AUTH_ALGO: &str = "paypal-auth-algo";
/// The only algorithm PayPal uses for webhooks.
const SHA256_WITH_RSA: &str = "SHA256withRSA";
/// The `PAYPAL-CERT-URL` that `sign` sends (only a pinned source verifies it).
const SIGNED_CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-payhook-local";
/// PayPal retries for 3 days; a day more covers a retry that keeps the first
/// transmission's time (see the module docs).
const DEFAULT_TOLERANCE_SECS: u64 = 4 * 24 * 3600;

/// A PayPal webhook's signature.
#[derive(Debug)]
pub(super) struct PayPalSignature {
    webhook_id: String,
    certificates: Certificates,
    signing_key: Option<SigningKey>,
    tolerance_secs: u64,
}

/// Where the verifying certificate comes from.
#[derive(Debug)]
enum Certificates {
    Pinned(Arc<PayPalCert>),
    Fetched(CertFetcher),
}

// ---- Configuration --------------------------------------------------------

impl PayPalSignature {
    /// Keys: `webhook_id`, `cert_path` | `cert_url_allowlist`,
    /// `signing_key_path`, `tolerance_secs` (4 days).
    pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Self, ConfigError> {
        let webhook_id = settings.nonempty_string("webhook_id", "must not be empty")?;
        Ok(Self {
            webhook_id,
            certificates: Certificates::configure(settings)?,
            signing_key: SigningKey::configure(settings)?,
            tolerance_secs: settings.u64("tolerance_secs")?.unwrap_or(DEFAULT_TOLERANCE_SECS),
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

impl PayPalSignature {
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

    /// The fetch of the certificate `PAYPAL-CERT-URL` names, when the source
    /// uses the allowlist, the URL is allowed and it is not cached. A URL
    /// that is not allowed is never fetched: verification refuses it.
    fn fetch<'a>(
        &'a self,
        request: &'a WebhookRequest,
    ) -> Option<impl Future<Output = Result<(), KeyFetchError>> + 'a> {
        let Certificates::Fetched(fetcher) = &self.certificates else { return None };
        let url = fetcher.allowed(request.headers.get(CERT_URL)?)?;
        fetcher.cached(&url, request.received_at).is_none().then(|| fetcher.load(url, request.received_at))
    }
}

impl Scheme for PayPalSignature {
    fn headers(&self) -> Vec<String> {
        [TRANSMISSION_ID, TRANSMISSION_TIME, TRANSMISSION_SIG, CERT_URL, AUTH_ALGO].map(String::from).to_vec()
    }

    /// The signature, then the time; the delivery is the transmission id,
    /// with one body allowed under it (the CRC-32 binds nothing).
    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection> {
        let headers = &request.headers;
        let signature = headers.get(TRANSMISSION_SIG).ok_or(Rejection::MissingSignature)?;
        let transmission = Transmission::parse(headers, signature).ok_or(Rejection::InvalidSignature)?;
        let cert = self.certificate(headers, request.received_at).ok_or(Rejection::InvalidSignature)?;
        let message = self.signed_message(transmission.id, transmission.time, &request.body);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &cert.public_key)
            .verify(message.as_bytes(), &transmission.signature)
            .map_err(|_| Rejection::InvalidSignature)?;
        let sent = DateTime::parse_from_rfc3339(transmission.time).map_err(|_| Rejection::InvalidSignature)?;
        if !within_tolerance(sent.timestamp(), request.received_at, self.tolerance_secs) {
            return Err(Rejection::TimestampOutOfTolerance);
        }
        let valid_for = delivery::valid_for(sent.timestamp(), self.tolerance_secs, request.received_at);
        // There are no secrets to rotate: the one certificate is "secret" 0.
        let delivery = Delivery::checksummed(&[transmission.id.as_bytes()], valid_for);
        Ok(Verified { matched: SignatureMatch { secret_index: 0 }, delivery: Some(delivery) })
    }

    /// At once with a pinned or cached certificate; else after fetching it.
    fn verify<'a>(&'a self, request: &'a WebhookRequest) -> Verification<'a> {
        match self.fetch(request) {
            None => self.check(request).into(),
            Some(fetch) => Verification::Fetching(Box::pin(async move {
                fetch.await?;
                Ok(self.check(request)?)
            })),
        }
    }

    // ---- Signing ----------------------------------------------------------

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
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        config::Env,
        providers::{
            testing::{self, verify_now},
            Source,
        },
    };

    const CERT: &str = "tests/fixtures/vectors/paypal-cert.pem";
    const KEY: &str = "tests/fixtures/vectors/paypal-key.pem";
    const VECTORS: &str = include_str!("../../../tests/fixtures/vectors/paypal.json");
    const SANDBOX_CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-test";

    fn pinned() -> Source {
        testing::source("paypal", &json!({"webhook_id": "WH-ID", "cert_path": CERT, "signing_key_path": KEY})).unwrap()
    }

    /// The scheme built directly, so tests can reach its certificate cache.
    fn direct(settings: Value) -> PayPalSignature {
        let table: toml::Table = serde_json::from_value(settings).unwrap();
        let env = Env::default();
        let mut settings = SourceSettings::new("sources[0]".into(), table, &env);
        let paypal = PayPalSignature::configure(&mut settings).unwrap();
        settings.finish().unwrap();
        paypal
    }

    fn fetching(hosts: &[&str]) -> PayPalSignature {
        direct(json!({"webhook_id": "WH-ID", "cert_url_allowlist": hosts}))
    }

    /// The verdict of a verification that fetches nothing.
    fn decided(paypal: &PayPalSignature, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        match paypal.verify(request) {
            Verification::Decided(verdict) => verdict.map(|v| v.matched),
            Verification::Fetching(_) => panic!("a verification that fetches"),
        }
    }

    fn fetches(paypal: &PayPalSignature, request: &WebhookRequest) -> bool {
        matches!(paypal.verify(request), Verification::Fetching(_))
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
    fn missing_and_malformed_headers_are_refused_without_panicking() {
        let (webhook_id, headers, body, at) = valid_vector();
        let paypal = direct(json!({"webhook_id": webhook_id, "cert_path": CERT}));
        let verdict =
            |headers: Vec<(String, String)>| decided(&paypal, &request(&pairs(&headers), body.as_bytes(), at));
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
        let other = direct(json!({"webhook_id": "WH-OTHER", "cert_path": CERT}));
        assert_eq!(decided(&other, &request(&pairs(&headers), body.as_bytes(), at)), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn the_certificate_must_be_valid_when_the_request_arrives() {
        let (webhook_id, headers, body, _) = valid_vector();
        let paypal = direct(json!({"webhook_id": webhook_id, "cert_path": CERT}));
        let at_1970 = request(&pairs(&headers), body.as_bytes(), 0);
        assert_eq!(decided(&paypal, &at_1970), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn the_tolerance_applies_both_ways_after_the_signature() {
        let source = testing::source(
            "paypal",
            &json!({"webhook_id": "WH-ID", "cert_path": CERT, "signing_key_path": KEY, "tolerance_secs": 300}),
        )
        .unwrap();
        let signed = source.sign(b"{}", time(1_700_000_000));
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let verify = |body: &[u8], at| verify_now(&source, &testing::request(&source, &headers, body, at));
        assert!(verify(b"{}", 1_700_000_300).is_ok());
        assert_eq!(verify(b"{}", 1_700_000_301), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(b"{}", 1_699_999_699), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(b"{ }", 1_600_000_000), Err(Rejection::InvalidSignature));
        // By default it is four days: PayPal's three days of retries and one to spare.
        let default = pinned();
        let at = |t| testing::request(&default, &headers, b"{}", t);
        assert!(verify_now(&default, &at(1_700_000_000 + 4 * 86_400)).is_ok());
        assert_eq!(verify_now(&default, &at(1_700_000_001 + 4 * 86_400)), Err(Rejection::TimestampOutOfTolerance));
    }

    #[test]
    fn the_delivery_is_the_transmission_id_whatever_the_body() {
        let source = pinned();
        let signed = source.sign(b"{}", time(1_700_000_000));
        let mut headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = testing::request(&source, &headers, b"{}", 1_700_000_060);
        let delivery = testing::verified_now(&source, &request).unwrap().delivery.expect("PayPal names its deliveries");
        let (genuine, other) = (delivery.guard("paypal", b"{}"), delivery.guard("paypal", b"{ }"));
        assert_eq!(genuine.key, other.key, "one body per transmission id");
        assert_ne!(genuine.body_hash, other.body_hash);
        assert_eq!(genuine.ttl, std::time::Duration::from_secs(4 * 86_400 - 59));
        headers[0].1 = "another-transmission";
        let other_id = testing::request(&source, &headers, b"{}", 1_700_000_060);
        assert_eq!(verify_now(&source, &other_id), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn refused_urls_are_never_fetched_and_fail_verification() {
        let (_, headers, body, at) = valid_vector();
        let paypal = fetching(&["api.paypal.com"]);
        for url in [None, Some("http://api.paypal.com/cert"), Some("https://169.254.169.254/latest/meta-data")] {
            let headers = with(&headers, CERT_URL, url);
            let request = request(&pairs(&headers), body.as_bytes(), at);
            assert_eq!(decided(&paypal, &request), Err(Rejection::InvalidSignature), "{url:?}");
        }
    }

    #[test]
    fn a_cached_certificate_verifies_without_fetching() {
        let (webhook_id, headers, body, at) = valid_vector();
        let paypal = direct(json!({"webhook_id": webhook_id, "cert_url_allowlist": ["api.sandbox.paypal.com"]}));
        let headers = with(&headers, CERT_URL, Some(SANDBOX_CERT_URL));
        let request = request(&pairs(&headers), body.as_bytes(), at);
        assert!(fetches(&paypal, &request), "an uncached certificate is fetched as part of verifying");
        assert!(paypal.check(&request).is_err(), "no certificate, no verification");

        let Certificates::Fetched(fetcher) = &paypal.certificates else { panic!() };
        let cert = PayPalCert::parse(&std::fs::read(CERT).unwrap()).unwrap();
        fetcher.remember(&reqwest::Url::parse(SANDBOX_CERT_URL).unwrap(), cert, time(at));
        assert_eq!(decided(&paypal, &request), Ok(SignatureMatch { secret_index: 0 }), "not fetched again");
        let other_url = with(&headers, CERT_URL, Some("https://api.sandbox.paypal.com/v1/notifications/certs/CERT-2"));
        assert!(fetches(&paypal, &self::request(&pairs(&other_url), body.as_bytes(), at)), "another URL is fetched");
    }

    #[test]
    fn without_a_signing_key_signatures_are_empty_and_never_verify() {
        let source = testing::source("paypal", &json!({"webhook_id": "W", "cert_path": CERT})).unwrap();
        let at = Utc::now();
        let signed = source.sign(b"{}", at);
        assert!(signed.iter().any(|(k, v)| k == "PAYPAL-TRANSMISSION-SIG" && v.is_empty()));
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = testing::request(&source, &headers, b"{}", at.timestamp());
        assert_eq!(verify_now(&source, &request), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn debug_output_hides_the_signing_key() {
        let debug = format!("{:?}", pinned());
        assert!(debug.contains("SigningKey(redacted)") && !debug.contains("PRIVATE"), "{debug}");
    }
}
