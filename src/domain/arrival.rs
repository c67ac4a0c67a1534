//! A delivery as it arrived: raw body, the headers that matter, the time.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{ArrivalId, RequestId, SourceName};

/// The request headers payhook keeps with an arrival: those its provider needs
/// to verify it again (replay) and to normalize it, plus tracing context.
/// Names are lower case; a repeated header keeps its first value.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Headers(BTreeMap<String, String>);

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
