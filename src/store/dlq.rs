//! `{p}:dlq` (one stream per arrival shard, beside its arrivals): arrivals,
//! or single notifications of them, that cannot become events, with the
//! reason why. A letter's id is its entry id, with `@<shard>` from shard 1
//! on, as for arrivals; listings merge every shard's letters, newest first.
//!
//! Entry fields: `arrival_id`, `source`, `reason` (a [`DlqReason`]), `error`
//! (text without payload contents), `attempts`, `failed_at`, and `item` (the
//! notification's index within its arrival) when one notification failed
//! rather than the arrival as a whole: an Adyen batch settles item by item.
//! The arrival itself stays in `{p}:arrivals`, so it can be inspected and
//! re-driven once the cause is fixed. Letters read back parse into the same
//! typed [`DeadLetter`] that was written.

use std::{fmt, str::FromStr};

use chrono::{DateTime, SecondsFormat, Utc};
use redis::streams::{StreamId, StreamRangeReply};
use serde::{Serialize, Serializer};

use super::{Store, StoreError};
use crate::domain::{split_shard, ArrivalId, Shard, SourceName};

/// Why an arrival, or one notification of it, became a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DlqReason {
    /// The stream entry lacks a field payhook writes, or holds one it cannot read.
    MalformedArrival,
    /// The arrival's source is no longer configured.
    UnknownSource,
    /// The source now uses another provider than the one that verified the arrival.
    ProviderMismatch,
    /// A key that verification needs could not be fetched (a PayPal certificate).
    KeyUnavailable,
    /// The stored arrival does not verify against the source's current settings.
    InvalidSignature,
    /// The body is not JSON (or not the provider's envelope).
    UnparseablePayload,
    /// A field the event needs is missing or of the wrong type.
    SchemaViolation,
    /// Not an ISO 4217 currency with a minor unit.
    UnsupportedCurrency,
    /// An amount the currency cannot hold exactly.
    InvalidAmount,
    /// The payload's unsigned live/test flag contradicts the source's `livemode`.
    LivemodeMismatch,
    /// The same payment was already published with other facts.
    IdempotencyConflict,
    /// Redis refused the publish on the last attempt.
    PublishFailed,
}

impl DlqReason {
    /// Every reason, for parsing and documentation.
    pub const ALL: [Self; 12] = [
        Self::MalformedArrival,
        Self::UnknownSource,
        Self::ProviderMismatch,
        Self::KeyUnavailable,
        Self::InvalidSignature,
        Self::UnparseablePayload,
        Self::SchemaViolation,
        Self::UnsupportedCurrency,
        Self::InvalidAmount,
        Self::LivemodeMismatch,
        Self::IdempotencyConflict,
        Self::PublishFailed,
    ];

    /// The machine word: the stream's `reason` field and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedArrival => "malformed_arrival",
            Self::UnknownSource => "unknown_source",
            Self::ProviderMismatch => "provider_mismatch",
            Self::KeyUnavailable => "key_unavailable",
            Self::InvalidSignature => "invalid_signature",
            Self::UnparseablePayload => "unparseable_payload",
            Self::SchemaViolation => "schema_violation",
            Self::UnsupportedCurrency => "unsupported_currency",
            Self::InvalidAmount => "invalid_amount",
            Self::LivemodeMismatch => "livemode_mismatch",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::PublishFailed => "publish_failed",
        }
    }
}

impl fmt::Display for DlqReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `reason` that names no [`DlqReason`].
#[derive(Debug, thiserror::Error)]
#[error("unknown dead-letter reason")]
pub struct UnknownReason;

impl FromStr for DlqReason {
    type Err = UnknownReason;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == word).ok_or(UnknownReason)
    }
}

impl Serialize for DlqReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One dead letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The arrival that failed.
    pub arrival_id: ArrivalId,
    /// Its source, if the entry named one.
    pub source: Option<SourceName>,
    /// The notification that failed, by its index in the arrival; `None`
    /// when the arrival failed as a whole (before it had notifications).
    pub item: Option<usize>,
    /// Why.
    pub reason: DlqReason,
    /// Human text; never payload contents.
    pub error: String,
    /// Deliveries so far.
    pub attempts: u32,
    /// When it was dead-lettered.
    pub failed_at: DateTime<Utc>,
}

impl DeadLetter {
    /// Queues the `XADD` of this letter on `pipe`.
    pub(super) fn add_to(&self, pipe: &mut redis::Pipeline, dlq: &str) {
        let xadd = pipe.cmd("XADD").arg(dlq).arg("*");
        xadd.arg("arrival_id")
            .arg(self.arrival_id.as_str())
            .arg("source")
            .arg(self.source.as_ref().map_or("", SourceName::as_str))
            .arg("reason")
            .arg(self.reason.as_str())
            .arg("error")
            .arg(&self.error)
            .arg("attempts")
            .arg(self.attempts)
            .arg("failed_at")
            .arg(self.failed_at.to_rfc3339_opts(SecondsFormat::Millis, true));
        if let Some(item) = self.item {
            xadd.arg("item").arg(item);
        }
        xadd.ignore();
    }

    /// Parses the fields of a stream entry; the error names the field at fault.
    fn from_entry(entry: &StreamId) -> Result<Self, &'static str> {
        let text = |field: &'static str| entry.get::<String>(field).ok_or(field);
        let source = match text("source")?.as_str() {
            "" => None,
            name => Some(SourceName::parse(name).map_err(|_| "source")?),
        };
        let failed_at = DateTime::parse_from_rfc3339(&text("failed_at")?).map_err(|_| "failed_at")?;
        Ok(Self {
            arrival_id: ArrivalId::parse(&text("arrival_id")?).map_err(|_| "arrival_id")?,
            source,
            item: entry.get::<String>("item").map(|i| i.parse()).transpose().map_err(|_| "item")?,
            reason: text("reason")?.parse().map_err(|_| "reason")?,
            error: text("error")?,
            attempts: text("attempts")?.parse().map_err(|_| "attempts")?,
            failed_at: failed_at.with_timezone(&Utc),
        })
    }
}

/// A dead letter as stored: its own entry id, and the letter, or the name of
/// the field that cannot be read (an entry payhook did not write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDeadLetter {
    /// Its own entry id in its shard's `{p}:dlq`, with `@<shard>` from shard 1 on.
    pub id: String,
    /// The letter, or the field at fault.
    pub letter: Result<DeadLetter, &'static str>,
}

impl StoredDeadLetter {
    pub(super) fn from_entry(entry: StreamId, shard: Shard) -> Self {
        let id = match shard.index() {
            0 => entry.id.clone(),
            n => format!("{}@{n}", entry.id),
        };
        Self { letter: DeadLetter::from_entry(&entry), id }
    }

    /// Its entry id's (milliseconds, sequence), for ordering across shards.
    pub(super) fn order(&self) -> (u64, u64) {
        Self::order_of(&self.id)
    }

    /// A letter id's (milliseconds, sequence); (0, 0) for text that is none.
    pub(super) fn order_of(id: &str) -> (u64, u64) {
        let entry = split_shard(id).map_or("", |(entry, _)| entry);
        let (ms, seq) = entry.split_once('-').unwrap_or_default();
        (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
    }

    /// The failed arrival's id as text; empty for an unreadable letter.
    pub fn arrival_id(&self) -> &str {
        self.letter.as_ref().map_or("", |l| l.arrival_id.as_str())
    }

    /// The source's name; empty when unknown or unreadable.
    pub fn source(&self) -> &str {
        self.letter.as_ref().ok().and_then(|l| l.source.as_ref()).map_or("", SourceName::as_str)
    }

    /// The reason's machine word; empty for an unreadable letter.
    pub fn reason(&self) -> &'static str {
        self.letter.as_ref().map_or("", |l| l.reason.as_str())
    }

    /// Deliveries before it was dead-lettered; 0 for an unreadable letter.
    pub fn attempts(&self) -> u32 {
        self.letter.as_ref().map_or(0, |l| l.attempts)
    }

    /// The error text (never payload contents); for an unreadable letter,
    /// which field cannot be read.
    pub fn error(&self) -> String {
        match &self.letter {
            Ok(letter) => letter.error.clone(),
            Err(field) => format!("the letter's field {field} cannot be read"),
        }
    }

    /// When it was dead-lettered (RFC 3339, ms); empty for an unreadable letter.
    pub fn failed_at(&self) -> String {
        self.letter.as_ref().map(|l| l.failed_at.to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default()
    }
}

/// What `dlq show` and `GET /admin/dlq` print: the stream's fields, typed.
#[derive(Serialize)]
struct LetterView<'a> {
    id: &'a str,
    arrival_id: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
    reason: DlqReason,
    error: &'a str,
    attempts: u32,
    failed_at: String,
}

/// A letter that cannot be read, shown by its id and the field at fault.
#[derive(Serialize)]
struct UnreadableView<'a> {
    id: &'a str,
    malformed_field: &'a str,
}

impl Serialize for StoredDeadLetter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.letter {
            Err(field) => UnreadableView { id: &self.id, malformed_field: field }.serialize(serializer),
            Ok(letter) => LetterView {
                id: &self.id,
                arrival_id: letter.arrival_id.as_str(),
                source: letter.source.as_ref().map_or("", SourceName::as_str),
                item: letter.item,
                reason: letter.reason,
                error: &letter.error,
                attempts: letter.attempts,
                failed_at: letter.failed_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            }
            .serialize(serializer),
        }
    }
}

impl Store {
    /// The newest `count` dead letters of every shard, newest first.
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        let mut letters = Vec::new();
        for shard in self.keys.shards() {
            let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(self.keys.dlq(shard))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut self.connection())
                .await?;
            letters.extend(reply.ids.into_iter().map(|entry| StoredDeadLetter::from_entry(entry, shard)));
        }
        letters.sort_by_key(|letter| std::cmp::Reverse(letter.order()));
        letters.truncate(count);
        Ok(letters)
    }

    /// The dead letter `id` (none for an id of no shard of this layout).
    pub async fn dead_letter(&self, id: &str) -> Result<Option<StoredDeadLetter>, StoreError> {
        let Some((entry, shard)) = split_shard(id).filter(|(_, shard)| self.keys.has(*shard)) else {
            return Ok(None);
        };
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.dlq(shard))
            .arg(entry)
            .arg(entry)
            .query_async(&mut self.connection())
            .await?;
        Ok(reply.ids.into_iter().next().map(|entry| StoredDeadLetter::from_entry(entry, shard)))
    }

    /// Removes the dead letter `id` after a redrive, adding `successors` in
    /// the same MULTI/EXEC: the letters of an arrival's notifications that
    /// still fail once the arrival as a whole passes. They are letters of the
    /// same arrival, so of the same shard: one slot.
    pub async fn retire_dead_letter(&self, id: &str, successors: &[DeadLetter]) -> Result<(), StoreError> {
        let Some((entry, shard)) = split_shard(id).filter(|(_, shard)| self.keys.has(*shard)) else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("XDEL").arg(self.keys.dlq(shard)).arg(entry).ignore();
        for letter in successors {
            letter.add_to(&mut pipe, self.keys.dlq(shard));
        }
        pipe.query_async::<()>(&mut self.connection()).await?;
        Ok(())
    }

    /// Number of dead letters in `shard`.
    pub(super) async fn dlq_len(&self, shard: Shard) -> Result<u64, StoreError> {
        self.stream_len(self.keys.dlq(shard)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_as_itself() {
        for reason in DlqReason::ALL {
            assert_eq!(reason.as_str().parse::<DlqReason>().ok(), Some(reason));
        }
        assert!("conflict".parse::<DlqReason>().is_err());
    }

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        let map = fields.iter().map(|(k, v)| ((*k).to_owned(), redis::Value::BulkString(v.as_bytes().to_vec())));
        StreamId { id: "5-0".into(), map: map.collect(), ..StreamId::default() }
    }

    const LETTER: [(&str, &str); 6] = [
        ("arrival_id", "1700000000000-0"),
        ("source", "adyen"),
        ("reason", "idempotency_conflict"),
        ("error", "adyen:P1 was published with other facts"),
        ("attempts", "1"),
        ("failed_at", "2024-07-25T21:03:30.123Z"),
    ];

    #[test]
    fn a_stored_letter_parses_into_typed_fields() {
        let mut fields = LETTER.to_vec();
        fields.push(("item", "2"));
        let letter = DeadLetter::from_entry(&entry(&fields)).unwrap();
        assert_eq!((letter.reason, letter.item, letter.attempts), (DlqReason::IdempotencyConflict, Some(2), 1));
        assert_eq!(letter.source.as_ref().map(SourceName::as_str), Some("adyen"));
        assert_eq!(DeadLetter::from_entry(&entry(&LETTER)).unwrap().item, None, "item is optional");
    }

    #[test]
    fn an_unreadable_letter_names_its_field() {
        let mut fields = LETTER.to_vec();
        fields[2] = ("reason", "conflict");
        assert_eq!(DeadLetter::from_entry(&entry(&fields)), Err("reason"));
        fields[2] = ("reason", "publish_failed");
        fields.push(("item", "first"));
        assert_eq!(DeadLetter::from_entry(&entry(&fields)), Err("item"));
    }
}
