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
//! The named providers that only HMAC the body into a header (Coinbase,
//! Razorpay, Lemon Squeezy, Checkout.com, Paystack, Shopify, Square) are
//! [`Preset`]s of this scheme: their files hold a normalizer and a sample,
//! and their SDK vectors run through this code.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};

use super::{prelude::*, signature::constant_time_eq};

/// A configured HMAC scheme: generic, or a named provider's preset.
#[derive(Debug)]
pub(super) struct Hmac {
    keys: SigningKeys,
    /// The signature header: the first of these present (Shopify sends one
    /// of two spellings); `sign` uses the first.
    headers: Vec<String>,
    algorithm: Algorithm,
    encoding: Encoding,
    prefix: String,
    content: Vec<Part>,
    timestamp_header: Option<String>,
    tolerance_secs: u64,
    id_header: Option<String>,
}

/// A named provider's HMAC of the body, keyed by its secrets as UTF-8: the
/// generic scheme with the provider's header (lower case; the first present
/// of several), algorithm and encoding, and no prefix, time or id.
pub(super) struct Preset(pub &'static [&'static str], pub Algorithm, pub Encoding);

/// Turns a secret as configured into key bytes.
type Decode = fn(&str) -> Option<Vec<u8>>;

/// How the signature (or a secret) is written as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
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

// ---- Configuration --------------------------------------------------------

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let scheme = Hmac::configure(settings)?;
    let normalizer = Mapping::configure(settings, scheme.id_header.clone(), scheme.timestamp_header.clone())?;
    Ok(Provider::new(scheme, normalizer))
}

impl Hmac {
    /// `preset` over the body, keyed by the source's `secrets`.
    pub(super) fn preset(preset: &Preset, settings: &mut SourceSettings<'_>) -> Result<Self, ConfigError> {
        let Preset(headers, algorithm, encoding) = *preset;
        Ok(Self {
            keys: SigningKeys::from_settings(settings)?,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            algorithm,
            encoding,
            prefix: String::new(),
            content: vec![Part::Body],
            timestamp_header: None,
            tolerance_secs: 0,
            id_header: None,
        })
    }

    /// Signs `text` followed directly by the body (Square's URL).
    pub(super) fn signing_after(self, text: String) -> Self {
        Self { content: vec![Part::Literal(text), Part::Body], ..self }
    }

    /// The keys listed in the module doc, but `livemode` and the mapping.
    fn configure(settings: &mut SourceSettings<'_>) -> Result<Self, ConfigError> {
        let utf8: (&str, Decode) = ("text", |secret| Some(secret.as_bytes().to_vec()));
        let hex: (&str, Decode) = ("valid hex", |secret| hex::decode(secret).ok());
        let base64: (&str, Decode) = ("valid base64", |secret| STANDARD.decode(secret).ok());
        let (what, decode) =
            settings.choice("secret_encoding", &[("utf8", utf8), ("hex", hex), ("base64", base64)], utf8)?;
        let keys = SigningKeys::decoded(settings, what, decode)?;
        let header = settings.required_string("header")?.to_ascii_lowercase();
        let algorithms = [("sha1", Algorithm::Sha1), ("sha256", Algorithm::Sha256), ("sha512", Algorithm::Sha512)];
        let algorithm = settings.choice("algorithm", &algorithms, Algorithm::Sha256)?;
        let encoding =
            settings.choice("encoding", &[("hex", Encoding::Hex), ("base64", Encoding::Base64)], Encoding::Hex)?;
        let timestamp_header = settings.string("timestamp_header")?.map(|h| h.to_ascii_lowercase());
        let id_header = settings.string("id_header")?.map(|h| h.to_ascii_lowercase());
        let template_key = settings.key("signed_content");
        let template = settings.string("signed_content")?.unwrap_or_else(|| "{body}".into());
        let content = parse_template(&template).map_err(|problem| ConfigError::invalid(&template_key, problem))?;
        if content.contains(&Part::Timestamp) && timestamp_header.is_none() {
            return Err(ConfigError::invalid(template_key, "uses {timestamp} but timestamp_header is not set"));
        }
        if content.contains(&Part::Id) && id_header.is_none() {
            return Err(ConfigError::invalid(template_key, "uses {id} but id_header is not set"));
        }
        Ok(Self {
            keys,
            headers: vec![header],
            algorithm,
            encoding,
            prefix: settings.string("prefix")?.unwrap_or_default(),
            content,
            timestamp_header,
            tolerance_secs: settings.u64("tolerance_secs")?.unwrap_or(300),
            id_header,
        })
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

impl Hmac {
    /// The signature bytes from the header: prefix stripped, then decoded
    /// (hex in either case; base64 canonical and padded).
    fn signature(&self, value: &str) -> Option<Vec<u8>> {
        let encoded = value.trim().strip_prefix(self.prefix.as_str())?;
        match self.encoding {
            Encoding::Hex => hex::decode(encoded).ok(),
            Encoding::Base64 => STANDARD.decode(encoded).ok(),
        }
    }

    /// The bytes of a template part; `None` when a header it names is absent.
    fn part<'a>(&'a self, part: &'a Part, headers: &'a Headers, body: &'a [u8]) -> Option<&'a [u8]> {
        let header = |name: &Option<String>| name.as_deref().and_then(|n| headers.get(n)).map(str::as_bytes);
        match part {
            Part::Literal(text) => Some(text.as_bytes()),
            Part::Body => Some(body),
            Part::Timestamp => header(&self.timestamp_header),
            Part::Id => header(&self.id_header),
            Part::Header(name) => headers.get(name).map(str::as_bytes),
        }
    }

    /// What the template signs, in order (empty where a header is absent).
    fn signed<'a>(&'a self, headers: &'a Headers, body: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.content.iter().map(move |part| self.part(part, headers, body).unwrap_or_default())
    }
}

// ---- Verification ---------------------------------------------------------

impl Hmac {
    /// The delivery, when the template signs a time or an id: every signed
    /// value but the body, and the verified `mac` (which stands for the
    /// body). A header that is read
    /// but not signed names nothing. With a signed time, a copy verifies
    /// until `tolerance_secs` past it; a signed id without a time verifies
    /// forever, so the guard remembers it for `tolerance_secs` only (a later
    /// copy is stored again, and the processors' dedupe stops it there).
    fn delivery(&self, request: &WebhookRequest, mac: &[u8], signed_at: Option<i64>) -> Option<Delivery> {
        let named = self.content.iter().filter(|part| **part != Part::Body);
        let named: Vec<&[u8]> = named.filter_map(|part| self.part(part, &request.headers, &[])).collect();
        match signed_at.filter(|_| self.content.contains(&Part::Timestamp)) {
            Some(at) => {
                Some(Delivery::signed(&named, mac, delivery::valid_for(at, self.tolerance_secs, request.received_at)))
            }
            None if self.content.contains(&Part::Id) => {
                Some(Delivery::untimed(&named, mac, Duration::from_secs(self.tolerance_secs)))
            }
            None => None,
        }
    }
}

impl Scheme for Hmac {
    fn headers(&self) -> Vec<String> {
        let mut names = self.headers.clone();
        names.extend(self.timestamp_header.iter().chain(&self.id_header).cloned());
        names.extend(self.content.iter().filter_map(|p| match p {
            Part::Header(name) => Some(name.clone()),
            _ => None,
        }));
        names
    }

    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection> {
        let value = self.headers.iter().find_map(|h| request.headers.get(h)).ok_or(Rejection::MissingSignature)?;
        let signature = self.signature(value).ok_or(Rejection::InvalidSignature)?;
        if self.content.iter().any(|part| self.part(part, &request.headers, &[]).is_none()) {
            return Err(Rejection::InvalidSignature);
        }
        let signed = || self.signed(&request.headers, &request.body);
        let matches = |key: &[u8]| constant_time_eq(&signature, self.algorithm.mac(key, signed()).as_ref());
        let matched = self.keys.find(matches).ok_or(Rejection::InvalidSignature)?;
        let mut signed_at = None;
        if let Some(name) = &self.timestamp_header {
            let at: i64 =
                request.headers.get(name).and_then(|t| t.trim().parse().ok()).ok_or(Rejection::InvalidSignature)?;
            if !within_tolerance(at, request.received_at, self.tolerance_secs) {
                return Err(Rejection::TimestampOutOfTolerance);
            }
            signed_at = Some(at);
        }
        // The signature matched, so its bytes are the MAC under that key.
        let matched_mac = MacBytes::copy_of(&signature).ok_or(Rejection::InvalidSignature)?;
        let naming = self.keys.naming_mac(matched, matched_mac, || self.algorithm.mac(self.keys.first(), signed()));
        Ok(Verified { matched, delivery: self.delivery(request, naming.as_ref(), signed_at) })
    }

    // ---- Signing ----------------------------------------------------------

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
        let mac = self.algorithm.mac(self.keys.first(), self.signed(&headers, body));
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => STANDARD.encode(mac),
        };
        sent.push((self.headers[0].clone(), format!("{}{encoded}", self.prefix)));
        sent
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::providers::{testing, Rejection, SignatureMatch, Source};

    /// The generic vectors of providers.md (section 18): one body and secret,
    /// signed as each provider signs, each checked there with the provider's
    /// SDK verifier or signer.
    const BODY: &str = r#"{"id":"evt_1","amount":1000}"#;
    const SECRET: &str = "test_secret_123";
    const SHA256_HEX: &str = "6adb79c9a71772e577593ec425d6ca66a824895f89e0f3591b774d8e7ae56552";
    const SHA512_HEX: &str = "f2760f4078b7f3fb9737b7e75182b5d47ef3aa1a7d1e9b7610dab33a34000b318d70393bdd445ffcc4c1396497da469f670104d06f05cfd3829c7a984bae8fc2";
    const SHA256_BASE64: &str = "att5yacXcuV3WT7EJdbKZqgkiV+J4PNZG3dNjnrlZVI=";
    /// Square's: the notification URL, then the body.
    const SQUARE_BASE64: &str = "GSRyhHXyNGXjR76WqLAZjGS7a4jVrQQ7qaKL3Q+S674=";
    const SQUARE_URL: &str = "https://example.com/webhooks/square";

    /// Each body-HMAC provider: its header, the generic vector signed its
    /// way, and the generic scheme's settings that sign the same way.
    fn presets() -> [(&'static str, &'static str, &'static str, Value); 8] {
        let square = json!({"encoding": "base64", "signed_content": format!("{SQUARE_URL}{{body}}")});
        [
            ("coinbase", "X-CC-Webhook-Signature", SHA256_HEX, json!({})),
            ("razorpay", "X-Razorpay-Signature", SHA256_HEX, json!({})),
            ("lemonsqueezy", "X-Signature", SHA256_HEX, json!({})),
            ("checkout", "Cko-Signature", SHA256_HEX, json!({})),
            ("paystack", "x-paystack-signature", SHA512_HEX, json!({"algorithm": "sha512"})),
            ("shopify", "X-Shopify-Hmac-Sha256", SHA256_BASE64, json!({"encoding": "base64"})),
            ("shopify", "shopify-hmac-sha256", SHA256_BASE64, json!({"encoding": "base64"})),
            ("square", "x-square-hmacsha256-signature", SQUARE_BASE64, square),
        ]
    }

    fn mapping() -> Value {
        json!({"event_type": "/type", "succeeded_types": ["payment.succeeded"], "payment_id": "/data/id",
               "amount": "/data/amount", "currency": "/data/currency"})
    }

    fn source(extra: Value) -> Result<Source, ConfigError> {
        let mut settings = json!({"secrets": [SECRET], "mapping": mapping()});
        settings.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        testing::source("hmac", &settings)
    }

    fn preset(provider: &str) -> Source {
        let mut settings = json!({"secrets": [SECRET]});
        if provider == "square" {
            settings["notification_url"] = json!(SQUARE_URL);
        }
        testing::source(provider, &settings).unwrap()
    }

    fn verify(source: &Source, headers: &[(&str, &str)], body: &str, at: i64) -> Result<SignatureMatch, Rejection> {
        testing::verify_now(source, &testing::request(source, headers, body.as_bytes(), at))
    }

    #[test]
    fn each_preset_and_the_generic_scheme_configured_alike_verify_the_generic_vectors() {
        for (provider, header, signature, settings) in presets() {
            let mut generic = settings.clone();
            generic["header"] = json!(header);
            let generic = source(generic).unwrap();
            for (name, source) in [(provider, preset(provider)), ("hmac", generic)] {
                let verdict = |value: &str, body: &str| verify(&source, &[(header, value)], body, 0);
                assert_eq!(verdict(signature, BODY), Ok(SignatureMatch { secret_index: 0 }), "{name} as {provider}");
                assert_eq!(verdict(signature, "{}"), Err(Rejection::InvalidSignature), "{name} as {provider}");
            }
        }
    }

    #[test]
    fn presets_refuse_missing_and_malformed_signatures_without_panicking() {
        for (provider, header, signature, _) in presets() {
            let source = preset(provider);
            assert_eq!(verify(&source, &[], BODY, 0), Err(Rejection::MissingSignature), "{provider}");
            let truncated = &signature[..signature.len() / 2];
            for bad in ["", "zz", "abc", "sha256=00", "!!!!", "AAAA=AAAA", truncated, &"a".repeat(4096)] {
                assert_eq!(
                    verify(&source, &[(header, bad)], BODY, 0),
                    Err(Rejection::InvalidSignature),
                    "{provider}: {bad:?}"
                );
            }
        }
        let razorpay = preset("razorpay");
        let upper = SHA256_HEX.to_uppercase();
        assert!(verify(&razorpay, &[("x-razorpay-signature", &upper)], BODY, 0).is_ok(), "hex in either case");
    }

    #[test]
    fn a_prefix_must_be_present_and_is_stripped() {
        let github = source(json!({"header": "X-Hub-Signature-256", "prefix": "sha256="})).unwrap();
        let prefixed = format!("sha256={SHA256_HEX}");
        assert!(verify(&github, &[("x-hub-signature-256", &prefixed)], BODY, 0).is_ok());
        assert_eq!(verify(&github, &[("x-hub-signature-256", SHA256_HEX)], BODY, 0), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn timestamped_templates_check_the_signature_then_the_time() {
        let timed = source(json!({"header": "x-sig", "timestamp_header": "x-ts", "id_header": "x-id",
            "signed_content": "{id}.{timestamp}.{body}"}))
        .unwrap();
        let signed = timed.sign(BODY.as_bytes(), DateTime::from_timestamp(1_700_000_000, 0).unwrap());
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
            let signed = source.sign(BODY.as_bytes(), at);
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
        let sig = hex::encode(Algorithm::Sha256.mac(&[0x00, 0xff], [BODY.as_bytes()]));
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
