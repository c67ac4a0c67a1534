//! Identifiers that travel through the pipeline.

use std::{fmt, sync::Arc};

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use uuid::Uuid;

use super::IdempotencyKey;

/// Why a string is not a valid identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Not of the form `<milliseconds>-<sequence>` that Redis gives stream entries.
    #[error("not a stream entry id (expected <milliseconds>-<sequence>)")]
    NotAnEntryId,
    /// Empty, too long, or with characters outside the allowed set.
    #[error("must be 1 to {max} characters of {allowed}")]
    Shape {
        /// Longest accepted length.
        max: usize,
        /// Human description of the allowed characters.
        allowed: &'static str,
    },
}

/// The id of a stored arrival: the Redis stream entry id in its arrivals
/// stream, `<ms>-<seq>`, followed by `@<shard>` when the arrival is in shard
/// 1 or above (see [`Shard`]). With one shard, an arrival id is exactly the
/// entry id, as it always was.
///
/// Its first half is the arrival time in milliseconds, which is what trimming
/// by age and replay by time range rely on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArrivalId(String);

impl ArrivalId {
    /// Parses `<ms>-<seq>` or `<ms>-<seq>@<shard>`, all parts decimal, the
    /// shard from 1 and without leading zeros (one spelling per arrival).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let (entry, _) = split_shard(s).ok_or(IdError::NotAnEntryId)?;
        let (ms, seq) = entry.split_once('-').ok_or(IdError::NotAnEntryId)?;
        if numeric(ms) && numeric(seq) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::NotAnEntryId)
        }
    }

    /// The arrival stored as entry `entry` of `shard`'s stream.
    pub fn in_shard(entry: &str, shard: Shard) -> Result<Self, IdError> {
        match shard.0 {
            0 => Self::parse(entry),
            n => Self::parse(&format!("{entry}@{n}")),
        }
    }

    /// The id as payhook shows it (and as Redis spells it in shard 0).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stream entry id, as Redis spells it.
    pub fn entry(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(entry, _)| entry)
    }

    /// The arrival shard whose stream holds it.
    pub fn shard(&self) -> Shard {
        split_shard(&self.0).map_or(Shard(0), |(_, shard)| shard)
    }

    /// The arrival time in milliseconds since the epoch (the id's first half).
    pub fn millis(&self) -> Option<u64> {
        self.entry().split_once('-').and_then(|(ms, _)| ms.parse().ok())
    }
}

impl fmt::Display for ArrivalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One of the `redis.arrival_shards` arrival streams, by index from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard(u32);

impl Shard {
    /// Shard `index`.
    pub const fn new(index: u32) -> Self {
        Self(index)
    }

    /// Its index, `0 … arrival_shards-1`.
    pub fn index(self) -> u32 {
        self.0
    }
}

/// Splits `<entry>@<shard>` (or a bare `<entry>`: shard 0). `None` for a
/// shard suffix that is not a canonical number from 1, so that every id has
/// one spelling. Shared by arrival ids and dead-letter ids.
pub fn split_shard(s: &str) -> Option<(&str, Shard)> {
    match s.split_once('@') {
        None => Some((s, Shard(0))),
        Some((entry, shard)) => {
            let canonical = numeric(shard) && !shard.starts_with('0') && shard.len() <= 9;
            canonical.then(|| shard.parse().ok().map(|n| (entry, Shard(n)))).flatten()
        }
    }
}

fn numeric(p: &str) -> bool {
    !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit())
}

/// The `x-request-id` of a delivery, echoed in the response and carried into the
/// event as `correlationid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    const MAX: usize = 128;

    /// Accepts a caller's id if it is short printable ASCII without spaces, so
    /// it can be logged and echoed without escaping.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty() && s.len() <= Self::MAX && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Shape { max: Self::MAX, allowed: "visible ASCII" })
        }
    }

    /// A fresh random id, for requests that bring none.
    pub fn generate() -> Self {
        Self(Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a configured source: the `{source}` of `POST /webhooks/{source}`.
///
/// Cheap to clone (shared), because it labels metrics on every request. Only
/// configured names become labels, so label values stay bounded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceName(Arc<str>);

impl SourceName {
    const MAX: usize = 64;

    /// Lower-case letters, digits, `-` and `_`: safe in a URL path, a Redis
    /// field and a metric label without escaping.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        if !s.is_empty() && s.len() <= Self::MAX && s.bytes().all(allowed) {
            Ok(Self(s.into()))
        } else {
            Err(IdError::Shape { max: Self::MAX, allowed: "a-z, 0-9, '-' and '_'" })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets a table keyed by source name be searched with a borrowed `&str`
/// (the URL segment) without building a name first. Sound because a
/// `SourceName` hashes and compares exactly as its text.
impl std::borrow::Borrow<str> for SourceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl EncodeLabelValue for SourceName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_str(encoder, &self.0)
    }
}

/// The CloudEvent `id`: a UUIDv5 of the idempotency key, so every delivery,
/// retry and replay of one payment names the same event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventId(Uuid);

impl EventId {
    /// Namespace of payhook's event ids. Changing it would change every id
    /// consumers have stored, so it is fixed forever.
    const NAMESPACE: Uuid = Uuid::from_u128(0x5f0b_6a3e_2c1d_4e8f_9a7b_3c2d_1e0f_a9b8);

    /// The stable id of the event for `key`.
    pub fn for_key(key: &IdempotencyKey) -> Self {
        Self(Uuid::new_v5(&Self::NAMESPACE, key.as_str().as_bytes()))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_ids_are_redis_entry_ids() {
        assert!(ArrivalId::parse("1700000000000-0").is_ok());
        for bad in ["", "-", "1-", "-1", "a-1", "1-1-1", "1700000000000", "1 - 2"] {
            assert_eq!(ArrivalId::parse(bad), Err(IdError::NotAnEntryId), "{bad:?}");
        }
    }

    #[test]
    fn an_arrival_id_names_its_shard_from_one_on_and_has_one_spelling() {
        let id = ArrivalId::in_shard("1700000000000-7", Shard::new(3)).unwrap();
        assert_eq!((id.as_str(), id.entry(), id.shard()), ("1700000000000-7@3", "1700000000000-7", Shard::new(3)));
        assert_eq!(id.millis(), Some(1_700_000_000_000));
        let first = ArrivalId::in_shard("5-0", Shard::new(0)).unwrap();
        assert_eq!((first.as_str(), first.shard()), ("5-0", Shard::new(0)));
        for bad in ["5-0@0", "5-0@03", "5-0@", "5-0@x", "5-0@1@2", "@1"] {
            assert_eq!(ArrivalId::parse(bad), Err(IdError::NotAnEntryId), "{bad:?}");
        }
    }

    #[test]
    fn request_ids_refuse_spaces_controls_and_long_values() {
        assert!(RequestId::parse("req_5rNW0vcbLbnnuV").is_ok());
        assert!(RequestId::parse("a b").is_err());
        assert!(RequestId::parse("a\nb").is_err());
        assert!(RequestId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn source_names_are_url_and_label_safe() {
        assert!(SourceName::parse("stripe-eu_2").is_ok());
        for bad in ["", "Stripe", "a/b", "a b", "ä"] {
            assert!(SourceName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn event_ids_depend_only_on_the_idempotency_key() {
        let key = IdempotencyKey::new("stripe", &crate::domain::PaymentId::parse("pi_1").unwrap());
        let other = IdempotencyKey::new("stripe", &crate::domain::PaymentId::parse("pi_2").unwrap());
        assert_eq!(EventId::for_key(&key), EventId::for_key(&key));
        assert_ne!(EventId::for_key(&key), EventId::for_key(&other));
    }
}
