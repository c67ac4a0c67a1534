//! Standard Webhooks (and Svix, which created it): `webhook-id`,
//! `webhook-timestamp`, `webhook-signature` (or the `svix-*` spelling),
//! HMAC-SHA256 over `"{id}.{timestamp}.{raw body}"`, keyed by the base64 part
//! of a `whsec_…` secret, sent as a space-separated list of `v1,<base64>`.
//!
//! The payload is the sender's own, so normalization comes from the source's
//! `[sources.mapping]` table. The delivery id (`webhook-id`) is the default
//! provider event id and the signed timestamp the default occurrence time.

use base64::{engine::general_purpose::STANDARD, Engine};

use super::prelude::*;

/// The header spellings, in the order the Svix SDKs look for them.
const SPELLINGS: [&str; 2] = ["svix", "webhook"];

// ---- Configuration --------------------------------------------------------

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let keys = SigningKeys::decoded(settings, "whsec_ followed by base64", decode_secret)?;
    let tolerance_secs = settings.u64("tolerance_secs")?.unwrap_or(300);
    let spelled = |name: &str| SPELLINGS.map(|s| format!("{s}-{name}"));
    let normalizer = Mapping::configure(settings, spelled("id"), spelled("timestamp"))?;
    Ok(Provider::new(StandardWebhooks { keys, tolerance_secs }, normalizer))
}

/// `whsec_<base64>` → key bytes. Padding is optional, as in the SDKs.
fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let unpadded = b64.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded).ok().filter(|k| !k.is_empty())
}

// ---- Header parsing -------------------------------------------------------

/// The three headers, each taken in the `svix-*` spelling if present, else
/// `webhook-*` (what the Svix SDKs do).
fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    SPELLINGS.iter().find_map(|s| headers.get(&format!("{s}-{name}")))
}

/// The `v1` signatures of a `webhook-signature` list; other versions (`v1a`,
/// ed25519) and undecodable entries are skipped.
fn v1_signatures(list: &str) -> Vec<Vec<u8>> {
    list.split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        .collect()
}

// ---- Verification ---------------------------------------------------------

/// A Standard Webhooks endpoint's signature.
#[derive(Debug)]
struct StandardWebhooks {
    keys: SigningKeys,
    tolerance_secs: u64,
}

impl Scheme for StandardWebhooks {
    fn headers(&self) -> Vec<String> {
        SPELLINGS.iter().flat_map(|s| ["id", "timestamp", "signature"].map(|n| format!("{s}-{n}"))).collect()
    }

    /// The signature, then the time; the delivery is its id, its timestamp
    /// and the body (what `v1` signs), whichever spelling carried them and
    /// whatever else the signature list holds.
    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection> {
        let signatures = header(&request.headers, "signature").ok_or(Rejection::MissingSignature)?;
        let id = header(&request.headers, "id").ok_or(Rejection::InvalidSignature)?;
        let timestamp: i64 =
            header(&request.headers, "timestamp").and_then(|t| t.parse().ok()).ok_or(Rejection::InvalidSignature)?;
        let t = timestamp.to_string();
        let signed: [&[u8]; 5] = [id.as_bytes(), b".", t.as_bytes(), b".", &request.body];
        let matched = self
            .keys
            .match_hmac(Algorithm::Sha256, &signed, &v1_signatures(signatures))
            .ok_or(Rejection::InvalidSignature)?;
        Verified::timed(matched, timestamp, self.tolerance_secs, request.received_at, &[id.as_bytes(), t.as_bytes()])
    }

    // ---- Signing ----------------------------------------------------------

    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let t = at.timestamp().to_string();
        let mac = Algorithm::Sha256.mac(self.keys.first(), [id.as_bytes(), b".", t.as_bytes(), b".", body]);
        vec![
            ("webhook-id".into(), id),
            ("webhook-timestamp".into(), t),
            ("webhook-signature".into(), format!("v1,{}", STANDARD.encode(mac))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::providers::{testing, SignatureMatch, Source};

    fn mapping() -> Value {
        json!({"event_type": "/type", "succeeded_types": ["payment.succeeded"], "payment_id": "/data/payment_id",
               "amount": "/data/total_amount", "currency": "/data/currency"})
    }

    fn source(secrets: &[&str]) -> Result<Source, ConfigError> {
        testing::source("standard-webhooks", &json!({"secrets": secrets, "mapping": mapping()}))
    }

    fn verify(headers: &[(&str, &str)], now: i64) -> Result<SignatureMatch, Rejection> {
        let source = source(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap();
        testing::verify_now(&source, &testing::request(&source, headers, b"{}", now))
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        assert!(testing::check_vectors(include_str!("../../tests/fixtures/vectors/standard-webhooks.json")) >= 9);
    }

    #[test]
    fn signature_lists_keep_only_decodable_v1_entries() {
        let list = "v1,AAAA v1a,AAAA v2,AAAA v1,!!! junk v1,AQ==";
        assert_eq!(v1_signatures(list), vec![vec![0, 0, 0], vec![1]]);
        assert!(v1_signatures("").is_empty());
    }

    #[test]
    fn missing_and_malformed_headers_are_refused_without_panicking() {
        let cases: [(&[(&str, &str)], Rejection); 5] = [
            (&[], Rejection::MissingSignature),
            (&[("webhook-id", "m"), ("webhook-timestamp", "1")], Rejection::MissingSignature),
            (&[("webhook-signature", "v1,AAAA"), ("webhook-timestamp", "1")], Rejection::InvalidSignature),
            (
                &[("webhook-signature", "v1,AAAA"), ("webhook-id", "m"), ("webhook-timestamp", "soon")],
                Rejection::InvalidSignature,
            ),
            (
                &[("webhook-signature", ",,, v1,"), ("webhook-id", "m"), ("webhook-timestamp", "1")],
                Rejection::InvalidSignature,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(verify(headers, 1), Err(expected), "{headers:?}");
        }
    }

    #[test]
    fn the_delivery_is_its_id_timestamp_and_body_whatever_the_list_or_spelling() {
        let source = source(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap();
        let signed = source.sign(b"{}", DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let guard = |headers: &[(&str, &str)]| testing::guard(&source, headers, b"{}", 1_700_000_000);
        let first = guard(&headers).expect("Standard Webhooks signs an id and a time");
        let padded_list = format!("v1,AAAA {} v2,x", headers[2].1);
        let padded = [headers[0], headers[1], ("webhook-signature", padded_list.as_str())];
        assert_eq!(guard(&padded), Some(first.clone()));
        let svix = [("svix-id", headers[0].1), ("svix-timestamp", headers[1].1), ("svix-signature", headers[2].1)];
        assert_eq!(guard(&svix), Some(first));
    }

    #[test]
    fn timestamps_are_checked_both_ways() {
        let source = source(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap();
        let signed = source.sign(b"{}", DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(verify(&headers, 1_700_000_300).is_ok());
        assert_eq!(verify(&headers, 1_700_000_301), Err(Rejection::TimestampOutOfTolerance));
        assert_eq!(verify(&headers, 1_699_999_699), Err(Rejection::TimestampOutOfTolerance));
    }

    #[test]
    fn secrets_must_be_base64_and_are_not_echoed() {
        let err = source(&["whsec_not*base64!"]).unwrap_err().to_string();
        assert!(err.starts_with("sources[0].secrets") && !err.contains("not*base64"), "{err}");
        assert_eq!(decode_secret("whsec_AQ"), Some(vec![1]));
        assert_eq!(decode_secret("whsec_AQ=="), Some(vec![1]));
    }

    #[test]
    fn samples_verify_and_normalize_with_the_signed_time() {
        let source = source(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap();
        let facts = testing::sample_round_trip(&source);
        assert!(facts.provider_event_id.as_deref().is_some_and(|id| id.starts_with("msg_")));
        assert!((Utc::now() - facts.occurred_at).num_seconds() < 5);
    }
}
