//! A delivery as it arrived: raw body, the headers that matter, the time.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{ArrivalId, RequestId, SourceName};

/// The request headers payhook keeps with an arrival: those its provider needs
/// to verify it again (replay) and to normalize it, plus tracing context.
/// Names are lower case; a repeated header keeps its first value.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Headers(BTreeMap<String, String>);

/// `Authorization` carries a credential (Adyen's Basic auth, Checkout.com's
/// key): `Debug` shows that it is there, never its value.
impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.0 {
            map.entry(name, &if name == "authorization" { "[redacted]" } else { value.as_str() });
        }
        map.finish()
    }
}

impl Headers {
    /// Adds `name` (lower-cased) unless already present.
    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.entry(name.to_ascii_lowercase()).or_insert_with(|| value.to_owned());
    }

    /// The value of `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The names kept (values may be signatures: never shown).
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// Sets `name` (lower-cased) to `value`, replacing any value.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_ascii_lowercase(), value.to_owned());
    }

    /// Drops `name` (lower case).
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Headers {
    fn from(pairs: [(&str, &str); N]) -> Self {
        let mut headers = Headers::default();
        for (name, value) in pairs {
            headers.insert(name, value);
        }
        headers
    }
}

/// What a provider verifies: the raw body exactly as received, the kept
/// headers, and the time it arrived (verification of timestamps is relative to
/// it, so a replay judges a stored arrival as it was judged on arrival).
#[derive(Clone, Debug)]
pub struct WebhookRequest {
    /// Kept headers.
    pub headers: Headers,
    /// The raw body; never re-serialized.
    pub body: Bytes,
    /// When payhook received it.
    pub received_at: DateTime<Utc>,
}

/// An arrival read back from `payhook:arrivals`.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// Stream entry id.
    pub id: ArrivalId,
    /// Source it was posted to.
    pub source: SourceName,
    /// Provider that verified it.
    pub provider: String,
    /// The request as received.
    pub request: WebhookRequest,
    /// The delivery's `x-request-id`.
    pub request_id: RequestId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_authorization_header() {
        let headers = Headers::from([("Authorization", "Basic c2VjcmV0"), ("X-Other", "visible")]);
        let shown = format!("{headers:?}");
        assert!(!shown.contains("c2VjcmV0") && shown.contains("visible") && shown.contains("authorization"), "{shown}");
    }

    #[test]
    fn removed_headers_are_gone() {
        let mut headers = Headers::from([("Authorization", "Basic c2VjcmV0")]);
        headers.remove("authorization");
        assert_eq!(headers.get("authorization"), None);
    }
}
