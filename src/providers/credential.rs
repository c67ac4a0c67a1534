//! A static credential some providers send in `Authorization` besides their
//! signature: Adyen's HTTP Basic auth, Checkout.com's "Authorization header
//! key". It is checked on arrival only and never stored, so a stored arrival
//! is verified again by its signature alone.
//!
//! A request without the header is `missing_signature`, one with another
//! value `invalid_signature`. Values are compared by SHA-256 digest in
//! constant time, revealing neither content nor length.

use base64::{engine::general_purpose::STANDARD, Engine};
use secrecy::{ExposeSecret, SecretString};

use super::{signature::credential_eq, Rejection};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::Headers,
};

/// The header carrying the credential.
pub(super) const AUTHORIZATION: &str = "authorization";

/// What a source expects in `Authorization`. `Debug` shows no secret.
#[derive(Debug)]
pub(super) enum Credential {
    /// `Basic base64(username:password)` (Adyen).
    Basic { username: String, password: SecretString },
    /// The whole header value (Checkout.com).
    Key(SecretString),
}

impl Credential {
    /// `basic_auth_username` and `basic_auth_password(_env)`, together or not at all.
    pub(super) fn basic(settings: &mut SourceSettings<'_>) -> Result<Option<Self>, ConfigError> {
        let username = settings.string("basic_auth_username")?;
        let password = settings.secret("basic_auth_password")?;
        let missing =
            |key: &str, with: &str| ConfigError::invalid(settings.key(key), format!("is required with a {with}"));
        match (username, password) {
            (Some(username), Some(password)) if !username.contains(':') => Ok(Some(Self::Basic { username, password })),
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
        Ok(settings.secret(key)?.map(Self::Key))
    }

    /// The credential bytes as sent: decoded `username:password` for Basic.
    fn expected(&self) -> String {
        match self {
            Self::Basic { username, password } => format!("{username}:{}", password.expose_secret()),
            Self::Key(key) => key.expose_secret().to_owned(),
        }
    }

    /// Whether `headers` carry the credential.
    pub(super) fn check(&self, headers: &Headers) -> Result<(), Rejection> {
        let header = headers.get(AUTHORIZATION).ok_or(Rejection::MissingSignature)?;
        let received = match self {
            Self::Basic { .. } => parse_basic(header).ok_or(Rejection::InvalidSignature)?,
            Self::Key(_) => header.as_bytes().to_vec(),
        };
        if credential_eq(&received, self.expected().as_bytes()) {
            Ok(())
        } else {
            Err(Rejection::InvalidSignature)
        }
    }

    /// The header the provider sends (for `payhook sign` and tests).
    pub(super) fn header(&self) -> (String, String) {
        let value = match self {
            Self::Basic { .. } => format!("Basic {}", STANDARD.encode(self.expected())),
            Self::Key(_) => self.expected(),
        };
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
