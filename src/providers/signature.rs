//! What signature schemes share: HMAC, constant-time comparison, key lists,
//! timestamp tolerance; and the static credential some providers send in
//! `Authorization` besides their signature (Adyen's HTTP Basic auth,
//! Checkout.com's "Authorization header key"), checked on arrival only and
//! never stored, so a stored arrival is verified again by its signature
//! alone. Without the header a request is `missing_signature`, with another
//! value `invalid_signature`.

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{Rejection, SignatureMatch};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::Headers,
};

/// A source's accepted keys, in configured order (rotation: new and old).
/// `Debug` shows only the count.
pub struct SigningKeys(Vec<SecretSlice<u8>>);

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({} redacted)", self.0.len())
    }
}

impl SigningKeys {
    /// Keys from raw bytes. The caller has checked there is at least one.
    pub fn new(keys: Vec<Vec<u8>>) -> Self {
        Self(keys.into_iter().map(SecretSlice::from).collect())
    }

    /// The source's `secrets`/`secrets_env`, used as they are (UTF-8 bytes):
    /// what most providers do.
    pub fn from_settings(settings: &mut SourceSettings<'_>) -> Result<Self, ConfigError> {
        Self::decoded(settings, "text", |secret| Some(secret.as_bytes().to_vec()))
    }

    /// The source's secrets turned into keys by `decode` (hex, base64, …);
    /// an undecodable secret is an error naming its position and the
    /// expected form (`what`), never its value.
    pub fn decoded(
        settings: &mut SourceSettings<'_>,
        what: &str,
        decode: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Self, ConfigError> {
        let key = settings.key("secrets");
        let keys = settings
            .secrets()?
            .iter()
            .enumerate()
            .map(|(i, secret)| {
                let decoded = decode(secret.expose_secret())
                    .ok_or_else(|| ConfigError::invalid(&key, format!("secret #{i} is not {what}")))?;
                // `whsec_` alone, or hex "", decodes to a zero-byte key.
                if decoded.is_empty() {
                    return Err(ConfigError::invalid(&key, format!("secret #{i} is an empty key once decoded")));
                }
                Ok(decoded)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(keys))
    }

    /// The key used to sign samples and test requests.
    ///
    /// # Panics
    /// Never: config refuses a source without a secret.
    pub fn first(&self) -> &[u8] {
        self.0.first().expect("config guarantees at least one secret").expose_secret()
    }

    /// The first key (by position) whose HMAC over `parts` equals one of
    /// `candidates`, and the HMAC naming the delivery (see
    /// [`SigningKeys::naming_mac`]). Each comparison is constant-time, so
    /// timing reveals nothing of the expected signature.
    pub fn match_hmac(
        &self,
        algorithm: Algorithm,
        parts: &[&[u8]],
        candidates: &[Vec<u8>],
    ) -> Option<(SignatureMatch, MacBytes)> {
        self.0.iter().enumerate().find_map(|(secret_index, key)| {
            let expected = algorithm.mac(key.expose_secret(), parts);
            let matches = candidates.iter().any(|c| constant_time_eq(c, expected.as_ref()));
            let matched = SignatureMatch { secret_index };
            matches.then(|| (matched, self.naming_mac(matched, expected, || algorithm.mac(self.first(), parts))))
        })
    }

    /// The HMAC that names a verified delivery for its replay guard: the one
    /// under the first key, whichever key matched, so that a header listing
    /// signatures by several keys (a rotation) names one delivery however
    /// many of them a copy keeps. `matched_mac` is the HMAC under the key
    /// that matched; `first_mac` computes the other, only when needed.
    pub fn naming_mac(
        &self,
        matched: SignatureMatch,
        matched_mac: MacBytes,
        first_mac: impl FnOnce() -> MacBytes,
    ) -> MacBytes {
        if matched.secret_index == 0 {
            matched_mac
        } else {
            first_mac()
        }
    }

    /// The first key (by position) for which `matches` holds: for schemes the
    /// helpers above do not cover (another MAC, or one key that must verify
    /// every signature of a batch). `matches` must compare in constant time.
    pub fn find(&self, mut matches: impl FnMut(&[u8]) -> bool) -> Option<SignatureMatch> {
        self.0.iter().position(|key| matches(key.expose_secret())).map(|secret_index| SignatureMatch { secret_index })
    }
}

/// Equality that takes the same time wherever the inputs differ (only their
/// lengths may show).
pub fn constant_time_eq(received: &[u8], expected: &[u8]) -> bool {
    bool::from(received.ct_eq(expected))
}

/// Equality of two secrets of any length that reveals neither content nor
/// length: their SHA-256 digests are compared in constant time. For static
/// credentials such as HTTP Basic auth or a shared `Authorization` key.
pub fn credential_eq(received: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest;
    constant_time_eq(&Sha256::digest(received), &Sha256::digest(expected))
}

/// The hash behind an HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA1 (Braintree, older generic senders).
    Sha1,
    /// HMAC-SHA256 (most providers).
    Sha256,
    /// HMAC-SHA512 (Paystack).
    Sha512,
}

impl Algorithm {
    /// The HMAC of the concatenation of `parts`, without copying them into
    /// one buffer or the MAC onto the heap.
    pub fn mac<P: AsRef<[u8]>>(self, key: &[u8], parts: impl IntoIterator<Item = P>) -> MacBytes {
        fn run<M: Mac + hmac::digest::KeyInit, P: AsRef<[u8]>>(
            key: &[u8],
            parts: impl IntoIterator<Item = P>,
        ) -> MacBytes {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
            parts.into_iter().for_each(|part| mac.update(part.as_ref()));
            let out = mac.finalize().into_bytes();
            let mut bytes = [0; 64];
            bytes[..out.len()].copy_from_slice(&out);
            MacBytes { bytes, len: out.len() }
        }
        match self {
            Self::Sha1 => run::<Hmac<Sha1>, P>(key, parts),
            Self::Sha256 => run::<Hmac<Sha256>, P>(key, parts),
            Self::Sha512 => run::<Hmac<Sha512>, P>(key, parts),
        }
    }
}

/// An HMAC on the stack (SHA-512's, the longest, is 64 bytes).
#[derive(Debug)]
pub struct MacBytes {
    bytes: [u8; 64],
    len: usize,
}

impl MacBytes {
    /// A received signature that verified: the HMAC itself.
    pub fn copy_of(bytes: &[u8]) -> Option<Self> {
        let mut mac = Self { bytes: [0; 64], len: bytes.len() };
        mac.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(mac)
    }
}

impl AsRef<[u8]> for MacBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Whether a signed unix time lies within `tolerance_secs` of the arrival, in
/// either direction: a stale timestamp is a replay, one from the future a
/// clock fault or a forgery prepared in advance.
pub fn within_tolerance(signed_at: i64, received_at: DateTime<Utc>, tolerance_secs: u64) -> bool {
    let skew = received_at.timestamp().abs_diff(signed_at);
    skew <= tolerance_secs
}

/// The header carrying the credential.
pub(super) const AUTHORIZATION: &str = "authorization";

/// What a source expects in `Authorization`: the credential as sent
/// (`username:password` before Basic's base64, or the whole header value).
/// `Debug` shows no secret.
#[derive(Debug)]
pub(super) struct Credential {
    expected: SecretString,
    basic: bool,
}

impl Credential {
    /// `basic_auth_username` and `basic_auth_password(_env)`, together or not at all.
    pub(super) fn basic(settings: &mut SourceSettings<'_>) -> Result<Option<Self>, ConfigError> {
        let username = settings.string("basic_auth_username")?;
        let password = settings.secret("basic_auth_password")?;
        let missing =
            |key: &str, with: &str| ConfigError::invalid(settings.key(key), format!("is required with a {with}"));
        match (username, password) {
            (Some(username), Some(password)) if !username.contains(':') => {
                let expected = format!("{username}:{}", password.expose_secret()).into();
                Ok(Some(Self { expected, basic: true }))
            }
            (Some(_), Some(_)) => {
                Err(ConfigError::invalid(settings.key("basic_auth_username"), "must not contain ':'"))
            }
            (Some(_), None) => Err(missing("basic_auth_password", "username")),
            (None, Some(_)) => Err(missing("basic_auth_username", "password")),
            (None, None) => Ok(None),
        }
    }

    /// The key given as `key` (or `{key}_env`), if any.
    pub(super) fn key(settings: &mut SourceSettings<'_>, key: &str) -> Result<Option<Self>, ConfigError> {
        Ok(settings.secret(key)?.map(|expected| Self { expected, basic: false }))
    }

    /// Whether `headers` carry the credential.
    pub(super) fn check(&self, headers: &Headers) -> Result<(), Rejection> {
        let header = headers.get(AUTHORIZATION).ok_or(Rejection::MissingSignature)?;
        let received = if self.basic { parse_basic(header).ok_or(Rejection::InvalidSignature)? } else { header.into() };
        if credential_eq(&received, self.expected.expose_secret().as_bytes()) {
            Ok(())
        } else {
            Err(Rejection::InvalidSignature)
        }
    }

    /// The header the provider sends (for `payhook sign` and tests).
    pub(super) fn header(&self) -> (String, String) {
        let expected = self.expected.expose_secret();
        let value = if self.basic { format!("Basic {}", STANDARD.encode(expected)) } else { expected.to_owned() };
        ("Authorization".into(), value)
    }
}

/// The decoded `user:password` bytes of a Basic `Authorization` value;
/// `None` for another scheme or bad base64.
fn parse_basic(header: &str) -> Option<Vec<u8>> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    STANDARD.decode(token.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: Algorithm = Algorithm::Sha256;

    #[test]
    fn hmac_of_parts_equals_hmac_of_whole() {
        let whole: [&[u8]; 1] = [b"abc"];
        let split: [&[u8]; 3] = [b"ab", b"", b"c"];
        assert_eq!(SHA256.mac(b"k", split).as_ref(), SHA256.mac(b"k", whole).as_ref());
    }

    #[test]
    fn the_matching_key_is_reported_by_position() {
        let keys = SigningKeys::new(vec![b"new".to_vec(), b"old".to_vec()]);
        let by_old = SHA256.mac(b"old", [b"body"]).as_ref().to_vec();
        let (matched, mac) = keys.match_hmac(SHA256, &[b"body"], &[vec![0; 32], by_old.clone()]).unwrap();
        assert_eq!(matched, SignatureMatch { secret_index: 1 });
        let by_new = SHA256.mac(b"new", [b"body"]);
        assert_eq!(mac.as_ref(), by_new.as_ref(), "the delivery is named by the first key's MAC");
        let (_, mac) = keys.match_hmac(SHA256, &[b"body"], &[by_new.as_ref().to_vec(), by_old.clone()]).unwrap();
        assert_eq!(mac.as_ref(), by_new.as_ref());
        assert!(keys.match_hmac(SHA256, &[b"other"], &[by_old]).is_none());
        assert!(keys.match_hmac(SHA256, &[b"body"], &[]).is_none());
    }

    #[test]
    fn each_algorithm_has_its_own_output() {
        let lengths =
            [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512].map(|a| a.mac(b"k", [b"m"]).as_ref().len());
        assert_eq!(lengths, [20, 32, 64]);
    }

    #[test]
    fn truncated_signatures_never_match() {
        let keys = SigningKeys::new(vec![b"k".to_vec()]);
        let full = SHA256.mac(b"k", [b"body"]).as_ref().to_vec();
        assert!(keys.match_hmac(SHA256, &[b"body"], &[full[..31].to_vec()]).is_none());
    }

    #[test]
    fn tolerance_applies_both_ways() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(within_tolerance(1_700_000_000 - 300, now, 300));
        assert!(within_tolerance(1_700_000_000 + 300, now, 300));
        assert!(!within_tolerance(1_700_000_000 - 301, now, 300));
        assert!(!within_tolerance(1_700_000_000 + 301, now, 300));
        assert!(!within_tolerance(i64::MIN, now, 300));
    }

    #[test]
    fn find_reports_the_first_key_that_satisfies_the_check() {
        let keys = SigningKeys::new(vec![b"a".to_vec(), b"b".to_vec(), b"b".to_vec()]);
        assert_eq!(keys.find(|k| k == b"b"), Some(SignatureMatch { secret_index: 1 }));
        assert_eq!(keys.find(|_| false), None);
    }

    #[test]
    fn credentials_compare_by_content_whatever_their_length() {
        assert!(credential_eq(b"user:pass", b"user:pass"));
        assert!(!credential_eq(b"user:pas", b"user:pass"));
        assert!(!credential_eq(b"", b"user:pass"));
    }

    #[test]
    fn debug_never_shows_keys() {
        let keys = SigningKeys::new(vec![b"supersecret".to_vec()]);
        assert!(!format!("{keys:?}").contains("supersecret"));
    }
}
