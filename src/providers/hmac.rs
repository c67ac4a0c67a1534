//! Generic HMAC: a signature scheme described entirely by config, for senders
//! payhook has no file for. Most webhook senders sign with an HMAC of the
//! body (or of a few values joined around it) and put it, hex or base64,
//! perhaps after a prefix like `sha256=`, in one header.
//!
//! Keys (beyond `secrets` / `secrets_env`):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `header` | required | the header carrying the signature |
//! | `algorithm` | `sha256` | `sha1`, `sha256` or `sha512` |
//! | `encoding` | `hex` | `hex` or `base64` (hex is compared case-insensitively) |
//! | `prefix` | none | text before the signature in the header, e.g. `sha256=` |
//! | `signed_content` | `{body}` | template of what is signed: literal text plus `{body}`, `{timestamp}`, `{id}`, `{header:NAME}` |
//! | `timestamp_header` | none | header holding the signed unix time (seconds); enables the tolerance check |
//! | `tolerance_secs` | 300 | allowed distance of that time from arrival, both ways (and how long the replay guard remembers a delivery that signs `{id}` but no time) |
//! | `id_header` | none | header holding the delivery id: `{id}`, and the default event id |
//! | `secret_encoding` | `utf8` | how a secret becomes the key: `utf8` (as is), `hex` or `base64` |
//! | `livemode` | false | this endpoint receives live payments |
//! | `[sources.mapping]` | required | JSON pointers to the payment facts (see `mapping.rs`) |
//!
//! With these, Razorpay (`x-razorpay-signature`, hex), Paystack (`sha512`),
//! Shopify (base64) and Square (`signed_content = "<notification url>{body}"`,
//! base64) are config, not code; the tests show it with their vectors.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};

use super::{
    delivery::{self, Delivery},
    mapping::{Defaults, Mapping},
    signature::{within_tolerance, Algorithm, SigningKeys},
    NormalizeError, Notification, Provider, Rejection, SignatureMatch,
};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::{Arrival, Headers, WebhookRequest},
};

/// A configured generic HMAC endpoint.
#[derive(Debug)]
struct GenericHmac {
    keys: SigningKeys,
    header: String,
    algorithm: Algorithm,
    encoding: Encoding,
    prefix: String,
    content: Vec<Part>,
    timestamp_header: Option<String>,
    tolerance_secs: u64,
    id_header: Option<String>,
    livemode: bool,
    mapping: Mapping,
}

/// Turns a secret as configured into key bytes.
type Decode = fn(&str) -> Option<Vec<u8>>;

/// How the signature (or a secret) is written as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Hex,
    Base64,
}

/// A piece of the signed-content template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body,
    Timestamp,
    Id,
    Header(String),
}

pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError> {
    let encoding_key = settings.key("secret_encoding");
    let (what, decode): (&str, Decode) = match settings.string("secret_encoding")?.as_deref() {
        None | Some("utf8") => ("text", |secret| Some(secret.as_bytes().to_vec())),
        Some("hex") => ("valid hex", |secret| hex::decode(secret).ok()),
        Some("base64") => ("valid base64", |secret| STANDARD.decode(secret).ok()),
        Some(_) => return Err(ConfigError::invalid(encoding_key, "must be utf8, hex or base64")),
    };
    let keys = SigningKeys::decoded(settings, what, decode)?;
    let header = lower(settings.required_string("header")?);
    let algorithm_key = settings.key("algorithm");
    let algorithm = match settings.string("algorithm")? {
        None => Algorithm::Sha256,
        Some(name) => Algorithm::parse(&name)
            .ok_or_else(|| ConfigError::invalid(algorithm_key, "must be \"sha1\", \"sha256\" or \"sha512\""))?,
    };
    let encoding_key = settings.key("encoding");
    let encoding = parse_encoding(settings.string("encoding")?.as_deref(), &encoding_key)?;
    let timestamp_header = settings.string("timestamp_header")?.map(lower);
    let id_header = settings.string("id_header")?.map(lower);
    let template_key = settings.key("signed_content");
    let template = settings.string("signed_content")?.unwrap_or_else(|| "{body}".into());
    let content = parse_template(&template).map_err(|problem| ConfigError::invalid(&template_key, problem))?;
    if content.contains(&Part::Timestamp) && timestamp_header.is_none() {
        return Err(ConfigError::invalid(template_key, "uses {timestamp} but timestamp_header is not set"));
    }
    if content.contains(&Part::Id) && id_header.is_none() {
        return Err(ConfigError::invalid(template_key, "uses {id} but id_header is not set"));
    }
    Ok(Box::new(GenericHmac {
        keys,
        header,
        algorithm,
        encoding,
        prefix: settings.string("prefix")?.unwrap_or_default(),
        content,
        timestamp_header,
        tolerance_secs: settings.u64("tolerance_secs")?.unwrap_or(300),
        id_header,
        livemode: settings.bool("livemode")?.unwrap_or(false),
        mapping: Mapping::configure(settings)?,
    }))
}

fn lower(name: String) -> String {
    name.to_ascii_lowercase()
}

fn parse_encoding(value: Option<&str>, key: &str) -> Result<Encoding, ConfigError> {
    match value {
        None | Some("hex") => Ok(Encoding::Hex),
        Some("base64") => Ok(Encoding::Base64),
        Some(_) => Err(ConfigError::invalid(key, "must be \"hex\" or \"base64\"")),
    }
}

/// Splits a template into literal text and placeholders.
fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..].find('}').ok_or("has a '{' without '}'")? + open;
        parts.push(match &rest[open + 1..close] {
            "body" => Part::Body,
            "timestamp" => Part::Timestamp,
            "id" => Part::Id,
            other => match other.strip_prefix("header:") {
                Some(name) if !name.is_empty() => Part::Header(name.to_ascii_lowercase()),
                _ => return Err(format!("unknown placeholder {{{other}}}")),
            },
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    if !parts.contains(&Part::Body) {
        return Err("must contain {body}".into());
    }
    Ok(parts)
}

// ---- Header parsing -------------------------------------------------------

impl GenericHmac {
    /// The signature bytes from the header: prefix stripped, then decoded.
    fn signature(&self, value: &str) -> Option<Vec<u8>> {
        let encoded = value.trim().strip_prefix(self.prefix.as_str())?;
        match self.encoding {
            Encoding::Hex => hex::decode(encoded.to_ascii_lowercase()).ok(),
            Encoding::Base64 => STANDARD.decode(encoded).ok(),
        }
    }

    /// The bytes the template names, in order; `None` if a named header is absent.
    fn signed_parts<'a>(&'a self, headers: &'a Headers, body: &'a [u8]) -> Option<Vec<&'a [u8]>> {
        let header = |name: &Option<String>| name.as_deref().and_then(|n| headers.get(n)).map(str::as_bytes);
        self.content
            .iter()
            .map(|part| match part {
                Part::Literal(text) => Some(text.as_bytes()),
                Part::Body => Some(body),
                Part::Timestamp => header(&self.timestamp_header),
                Part::Id => header(&self.id_header),
                Part::Header(name) => headers.get(name).map(str::as_bytes),
            })
            .collect()
    }
}

// ---- Verification ---------------------------------------------------------

impl GenericHmac {
    fn check(&self, request: &WebhookRequest) -> Result<(SignatureMatch, Option<Delivery>), Rejection> {
        let value = request.headers.get(&self.header).ok_or(Rejection::MissingSignature)?;
        let signature = self.signature(value).ok_or(Rejection::InvalidSignature)?;
        let parts = self.signed_parts(&request.headers, &request.body).ok_or(Rejection::InvalidSignature)?;
        let matched = self.keys.match_hmac(self.algorithm, &parts, &[signature]).ok_or(Rejection::InvalidSignature)?;
        let mut signed_at = None;
        if let Some(name) = &self.timestamp_header {
            let at: i64 =
                request.headers.get(name).and_then(|t| t.trim().parse().ok()).ok_or(Rejection::InvalidSignature)?;
            if !within_tolerance(at, request.received_at, self.tolerance_secs) {
                return Err(Rejection::TimestampOutOfTolerance);
            }
            signed_at = Some(at);
        }
        Ok((matched, self.delivery(&parts, signed_at, request.received_at)))
    }

    /// The delivery, when the template signs a time or an id: every signed
    /// value but the body (which the MAC covers too). A header that is read
    /// but not signed names nothing. With a signed time, a copy verifies
    /// until `tolerance_secs` past it; a signed id without a time verifies
    /// forever, so the guard remembers it for `tolerance_secs` only (a later
    /// copy is stored again, and the processors' dedupe stops it there).
    fn delivery(&self, parts: &[&[u8]], signed_at: Option<i64>, received_at: DateTime<Utc>) -> Option<Delivery> {
        let valid_for = match signed_at.filter(|_| self.content.contains(&Part::Timestamp)) {
            Some(at) => delivery::valid_for(at, self.tolerance_secs, received_at),
            None if self.content.contains(&Part::Id) => Duration::from_secs(self.tolerance_secs),
            None => return None,
        };
        let named: Vec<&[u8]> =
            self.content.iter().zip(parts).filter(|(part, _)| **part != Part::Body).map(|(_, value)| *value).collect();
        Some(Delivery::signed(&named, valid_for))
    }
}

// ---- Normalization --------------------------------------------------------

impl Provider for GenericHmac {
    fn headers(&self) -> Vec<String> {
        let mut names = vec![self.header.clone()];
        names.extend(self.timestamp_header.iter().chain(&self.id_header).cloned());
        names.extend(self.content.iter().filter_map(|p| match p {
            Part::Header(name) => Some(name.clone()),
            _ => None,
        }));
        names
    }

    fn verify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check(request).map(|(matched, _)| matched)
    }

    fn verify_delivery(&self, request: &WebhookRequest) -> Result<(SignatureMatch, Option<Delivery>), Rejection> {
        self.check(request)
    }

    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        let headers = &arrival.request.headers;
        let signed_at = self
            .timestamp_header
            .as_deref()
            .and_then(|name| headers.get(name))
            .and_then(|t| t.trim().parse().ok())
            .and_then(|t| DateTime::from_timestamp(t, 0));
        let defaults = Defaults {
            event_id: self.id_header.as_deref().and_then(|name| headers.get(name)).map(str::to_owned),
            occurred_at: signed_at.unwrap_or(arrival.request.received_at),
            livemode: self.livemode,
        };
        self.mapping.normalize(&arrival.request.body, defaults).map(|n| vec![Ok(n)])
    }

    // ---- Signing and sample -----------------------------------------------

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let mut headers = Headers::default();
        let mut sent = Vec::new();
        if let Some(name) = &self.timestamp_header {
            sent.push((name.clone(), at.timestamp().to_string()));
        }
        if let Some(name) = &self.id_header {
            sent.push((name.clone(), format!("msg_{}", uuid::Uuid::new_v4().simple())));
        }
        for part in &self.content {
            if let Part::Header(name) = part {
                sent.push((name.clone(), "sample".into()));
            }
        }
        for (name, value) in &sent {
            headers.insert(name, value);
        }
        let parts = self.signed_parts(&headers, body).expect("every header the template names was just set");
        let mac = self.algorithm.mac(self.keys.first(), &parts);
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => STANDARD.encode(mac),
        };
        sent.push((self.header.clone(), format!("{}{encoded}", self.prefix)));
        sent
    }

    fn mapping(&self) -> Option<&Mapping> {
        Some(&self.mapping)
    }

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.mapping.sample(at)).expect("a JSON value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::providers::{testing, Source};

    /// The generic vectors of providers.md (section 18): one body and secret,
    /// signed as each provider signs, each checked there with the provider's
    /// SDK verifier or signer.
    const BODY: &str = r#"{"id":"evt_1","amount":1000}"#;
    const SECRET: &str = "test_secret_123";

    fn mapping() -> Value {
        json!({"event_type": "/type", "succeeded_types": ["payment.succeeded"], "payment_id": "/data/id",
               "amount": "/data/amount", "currency": "/data/currency"})
    }

    fn source(extra: Value) -> Result<Source, ConfigError> {
        let mut settings = json!({"secrets": [SECRET], "mapping": mapping()});
        settings.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        testing::source("hmac", &settings)
    }

    fn verify(source: &Source, headers: &[(&str, &str)], body: &str, at: i64) -> Result<SignatureMatch, Rejection> {
        source.provider.verify(&testing::request(source, headers, body.as_bytes(), at))
    }

    #[test]
    fn razorpay_is_config_hex_sha256_of_the_body() {
        let razorpay = source(json!({"header": "X-Razorpay-Signature"})).unwrap();
        let sig = "6adb79c9a71772e577593ec425d6ca66a824895f89e0f3591b774d8e7ae56552";
        assert!(verify(&razorpay, &[("x-razorpay-signature", sig)], BODY, 0).is_ok());
        assert!(verify(&razorpay, &[("x-razorpay-signature", &sig.to_uppercase())], BODY, 0).is_ok());
        assert_eq!(verify(&razorpay, &[("x-razorpay-signature", sig)], "{}", 0), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn paystack_is_config_hex_sha512() {
        let paystack = source(json!({"header": "x-paystack-signature", "algorithm": "sha512"})).unwrap();
        let sig = "f2760f4078b7f3fb9737b7e75182b5d47ef3aa1a7d1e9b7610dab33a34000b318d70393bdd445ffcc4c1396497da469f670104d06f05cfd3829c7a984bae8fc2";
        assert!(verify(&paystack, &[("x-paystack-signature", sig)], BODY, 0).is_ok());
    }

    #[test]
    fn shopify_is_config_base64_sha256() {
        let shopify = source(json!({"header": "X-Shopify-Hmac-Sha256", "encoding": "base64"})).unwrap();
        let sig = "att5yacXcuV3WT7EJdbKZqgkiV+J4PNZG3dNjnrlZVI=";
        assert!(verify(&shopify, &[("x-shopify-hmac-sha256", sig)], BODY, 0).is_ok());
    }

    #[test]
    fn square_is_config_with_the_url_as_literal_signed_content() {
        let square = source(json!({"header": "x-square-hmacsha256-signature", "encoding": "base64",
            "signed_content": "https://example.com/webhooks/square{body}"}))
        .unwrap();
        let sig = "GSRyhHXyNGXjR76WqLAZjGS7a4jVrQQ7qaKL3Q+S674=";
        assert!(verify(&square, &[("x-square-hmacsha256-signature", sig)], BODY, 0).is_ok());
    }

    #[test]
    fn a_prefix_must_be_present_and_is_stripped() {
        let github = source(json!({"header": "X-Hub-Signature-256", "prefix": "sha256="})).unwrap();
        let sig = "6adb79c9a71772e577593ec425d6ca66a824895f89e0f3591b774d8e7ae56552";
        assert!(verify(&github, &[("x-hub-signature-256", &format!("sha256={sig}"))], BODY, 0).is_ok());
        assert_eq!(verify(&github, &[("x-hub-signature-256", sig)], BODY, 0), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn timestamped_templates_check_the_signature_then_the_time() {
        let timed = source(json!({"header": "x-sig", "timestamp_header": "x-ts", "id_header": "x-id",
            "signed_content": "{id}.{timestamp}.{body}"}))
        .unwrap();
        let signed = timed.provider.sign(BODY.as_bytes(), DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(verify(&timed, &headers, BODY, 1_700_000_300).is_ok());
        assert_eq!(verify(&timed, &headers, BODY, 1_700_000_301), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(&timed, &headers, BODY, 1_699_999_699), Err(Rejection::TimestampOutOfTolerance));
        let without_id: Vec<_> = headers.iter().filter(|(k, _)| *k != "x-id").copied().collect();
        assert_eq!(verify(&timed, &without_id, BODY, 1_700_000_000), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn only_templates_that_sign_a_time_or_an_id_name_a_delivery() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        // Signed at `at`, then one header set to `value` (kept, perhaps unsigned).
        let guard = |settings: &Value, (name, value): (&str, &str)| {
            let source = source(settings.clone()).unwrap();
            let signed = source.provider.sign(BODY.as_bytes(), at);
            let mut headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            headers.retain(|(header, _)| *header != name);
            headers.push((name, value));
            testing::guard(&source, &headers, BODY.as_bytes(), 1_700_000_100)
        };
        let timed = json!({"header": "x-sig", "timestamp_header": "x-ts", "id_header": "x-id",
                           "signed_content": "{timestamp}.{body}"});
        let timed_guard = guard(&timed, ("x-id", "one")).expect("a signed time names the delivery");
        assert_eq!(guard(&timed, ("x-id", "two")), Some(timed_guard.clone()), "the unsigned id names nothing");
        assert_eq!(timed_guard.ttl, Duration::from_secs(201));
        let by_id = json!({"header": "x-sig", "id_header": "x-id", "signed_content": "{id}.{body}"});
        assert_eq!(guard(&by_id, ("x-other", "")).expect("a signed id names it").ttl, Duration::from_secs(300));
        let unsigned_time = json!({"header": "x-sig", "timestamp_header": "x-ts"});
        assert_eq!(guard(&unsigned_time, ("x-ts", "1700000000")), None, "a time that is not signed bounds nothing");
    }

    #[test]
    fn malformed_signatures_are_refused_without_panicking() {
        let hex_source = source(json!({"header": "x-sig"})).unwrap();
        assert_eq!(verify(&hex_source, &[], BODY, 0), Err(Rejection::MissingSignature));
        for bad in ["", "zz", "abc", "6adb", "sha256=6adb"] {
            assert_eq!(verify(&hex_source, &[("x-sig", bad)], BODY, 0), Err(Rejection::InvalidSignature), "{bad:?}");
        }
        let b64 = source(json!({"header": "x-sig", "encoding": "base64"})).unwrap();
        assert_eq!(verify(&b64, &[("x-sig", "***")], BODY, 0), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn templates_parse_or_name_their_problem() {
        assert_eq!(
            parse_template("a{body}b{header:X-Y}").unwrap(),
            vec![Part::Literal("a".into()), Part::Body, Part::Literal("b".into()), Part::Header("x-y".into())]
        );
        assert!(parse_template("{timestamp}").unwrap_err().contains("{body}"));
        assert!(parse_template("{body}{nope}").unwrap_err().contains("{nope}"));
        assert!(parse_template("{body").is_err());
        assert!(parse_template("{body}{header:}").is_err());
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = |extra: Value| source(extra).unwrap_err().to_string();
        assert!(err(json!({})).starts_with("sources[0].header"));
        assert!(err(json!({"header": "x", "algorithm": "md5"})).starts_with("sources[0].algorithm"));
        assert!(err(json!({"header": "x", "encoding": "base32"})).starts_with("sources[0].encoding"));
        assert!(err(json!({"header": "x", "signed_content": "{timestamp}.{body}"}))
            .starts_with("sources[0].signed_content"));
        assert!(err(json!({"header": "x", "secret_encoding": "hex"})).starts_with("sources[0].secrets"));
        assert!(err(json!({"header": "x", "tolerance": 5})).starts_with("sources[0].tolerance: unknown key"));
    }

    #[test]
    fn hex_and_base64_secrets_become_their_bytes() {
        let hex_key = source(json!({"header": "x", "secret_encoding": "hex", "secrets": ["00ff"]})).unwrap();
        let sig = hex::encode(Algorithm::Sha256.mac(&[0x00, 0xff], &[BODY.as_bytes()]));
        assert!(verify(&hex_key, &[("x", &sig)], BODY, 0).is_ok());
    }

    #[test]
    fn samples_verify_and_normalize() {
        let timed = source(json!({"header": "x-sig", "timestamp_header": "x-ts", "id_header": "x-id",
            "signed_content": "{id}.{timestamp}.{header:x-account}.{body}"}))
        .unwrap();
        let facts = testing::sample_round_trip(&timed);
        assert!(facts.provider_event_id.is_some_and(|id| id.starts_with("msg_")));
    }
}
