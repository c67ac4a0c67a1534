//! A payment's story: what became of every announcement of one payment, for
//! the operator who is told "my customer paid and got nothing".
//!
//! `{p}:story:{N}:<idempotency key>` is a list of JSON [`StoryEntry`]s. The
//! publish script (`crate::publish`) appends one in the same atomic step in
//! which it publishes, counts a duplicate or refuses a conflict, so the story
//! is never out of step with what was published. It shares the dedupe
//! record's hash tag `{N}` (one Redis Cluster slot, so the script stays
//! single-slot), lives exactly as long as the dedupe record (same TTL), and
//! keeps at most [`STORY_CAP`] entries: the first (how the payment was first
//! published or refused) and the newest.
//!
//! Finding a story:
//! - by idempotency key: the key itself;
//! - by bare payment id: `<provider>:<id>` for each configured provider (no
//!   index needed);
//! - by provider event id: `{p}:pevent:{N}:<provider event id>`, a string
//!   holding the idempotency key that provider event announced, written by
//!   the same script with the same TTL, in the payment's own partition (so a
//!   search looks in every partition);
//! - by arrival id: the arrival is read and normalized again
//!   (`crate::processing`), and its dead letters are found in `{p}:dlq`.
//!
//! Cost (Redis 7.0, `MEMORY USAGE` on real keys after 2,000 Stripe payments
//! each announced by two provider events, `scripts/story-memory`): the story
//! 424 bytes (about 120 more per further announcement, so at most about 4 KB
//! at the cap), each provider event id's index 120 bytes; with the keyspace's
//! own overhead, `used_memory` grows by about 790 bytes per such payment
//! (the dedupe record alone is 312). The publish script does three more
//! writes in the same round trip.

use chrono::{DateTime, SecondsFormat, Utc};
use redis::streams::StreamRangeReply;
use serde::{Deserialize, Serialize};

use super::{dlq::StoredDeadLetter, keys::PROCESSORS_GROUP, Store, StoreError, RETRY_CONSUMER};
use crate::domain::{Arrival, ArrivalId, IdempotencyKey, Partition, PaymentFacts};

/// Most entries a story keeps (the first and the newest): a provider that
/// retries one notification for days cannot grow it without bound.
pub const STORY_CAP: usize = 32;

/// Dead letters looked at, at most, when searching for an arrival's: an
/// answer in bounded time even when the DLQ has grown large.
const DLQ_SCAN_LIMIT: usize = 20_000;

/// Dead letters read per round trip while searching.
const DLQ_PAGE: usize = 1_000;

/// What processed the announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A processor, as the arrival came in.
    Live,
    /// `payhook replay` or `POST /admin/replay`.
    Replay,
    /// A redrive of a dead letter.
    Redrive,
}

impl Via {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Replay => "replay",
            Self::Redrive => "redrive",
        }
    }
}

/// What became of one announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoryOutcome {
    /// The event was published.
    Published,
    /// Published before with the same facts: suppressed.
    Duplicate,
    /// Published before with other facts: refused (and dead-lettered).
    Conflict,
    /// The announcement was dead-lettered for another reason.
    DeadLettered,
}

impl StoryOutcome {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Duplicate => "duplicate",
            Self::Conflict => "conflict",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// One entry of a story.
///
/// Stored as a JSON array, which is about half the size of an object with
/// named fields: `[at (ms since the epoch), outcome, via, arrival id,
/// source, provider event type, provider event id or null, detail or null]`,
/// where the detail is the stream entry id of a published event or the reason
/// of a dead letter. The event id is not stored: it is derived from the
/// idempotency key, and the dedupe record holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoryEntry {
    /// When it happened (RFC 3339, ms).
    pub at: String,
    /// What happened.
    pub outcome: StoryOutcome,
    /// Live processing, replay or redrive.
    pub via: Via,
    /// The arrival that announced the payment.
    pub arrival_id: String,
    /// Its source.
    pub source: String,
    /// The provider's id of the notification, if it has one.
    pub provider_event_id: Option<String>,
    /// The provider's type of the notification.
    pub provider_event_type: String,
    /// The entry in the partition stream (when published now).
    pub entry_id: Option<String>,
    /// The dead letter's reason (when dead-lettered).
    pub reason: Option<String>,
}

/// The stored form of a [`StoryEntry`].
type Stored = (i64, StoryOutcome, Via, String, String, String, Option<String>, Option<String>);

impl StoryEntry {
    /// Reads an entry as the publish script stores it; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (at, outcome, via, arrival_id, source, provider_event_type, provider_event_id, detail): Stored =
            serde_json::from_str(text).ok()?;
        let at = DateTime::from_timestamp_millis(at)?.to_rfc3339_opts(SecondsFormat::Millis, true);
        let (entry_id, reason) = match outcome {
            StoryOutcome::Published => (detail, None),
            StoryOutcome::DeadLettered => (None, detail),
            StoryOutcome::Duplicate | StoryOutcome::Conflict => (None, None),
        };
        Some(Self { at, outcome, via, arrival_id, source, provider_event_id, provider_event_type, entry_id, reason })
    }
}

/// What the caller knows of an announcement; the publish script adds the
/// time, the outcome and the stream entry.
#[derive(Clone, Debug)]
pub struct Announcement<'a> {
    /// The arrival.
    pub arrival_id: &'a str,
    /// Its source.
    pub source: &'a str,
    /// The provider's id of the notification.
    pub provider_event_id: Option<&'a str>,
    /// The provider's type of the notification.
    pub provider_event_type: &'a str,
    /// What processed it.
    pub via: Via,
}

impl<'a> Announcement<'a> {
    /// The announcement of `facts` by `arrival`.
    pub fn of(arrival: &'a Arrival, facts: &'a PaymentFacts, via: Via) -> Self {
        Self {
            arrival_id: arrival.id.as_str(),
            source: arrival.source.as_str(),
            provider_event_id: facts.provider_event_id.as_deref(),
            provider_event_type: &facts.provider_event_type,
            via,
        }
    }

    /// The middle of its stored entry, which the script completes:
    /// `[via, arrival id, source, provider event type, provider event id]`.
    pub fn middle(&self) -> String {
        let middle = (self.via, self.arrival_id, self.source, self.provider_event_type, self.provider_event_id);
        serde_json::to_string(&middle).expect("strings always serialize")
    }

    /// The stored entry saying it was dead-lettered for `reason` now.
    pub fn dead_lettered(&self, reason: &str) -> String {
        let entry = (
            Utc::now().timestamp_millis(),
            StoryOutcome::DeadLettered,
            self.via,
            self.arrival_id,
            self.source,
            self.provider_event_type,
            self.provider_event_id,
            Some(reason),
        );
        serde_json::to_string(&entry).expect("strings always serialize")
    }
}

/// The event published for a payment, from its dedupe record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The event id.
    pub event_id: String,
    /// When it was published.
    pub published_at: String,
    /// Its entry in the partition stream.
    #[serde(default)]
    pub entry_id: Option<String>,
}

/// What Redis holds about one idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentRecord {
    /// The idempotency key.
    pub idempotency_key: String,
    /// Its partition.
    pub partition: u32,
    /// The event published, if the dedupe record is kept.
    pub published: Option<Publication>,
    /// Seconds until the dedupe record and story expire.
    pub expires_in_secs: Option<u64>,
    /// The story, oldest first.
    pub entries: Vec<StoryEntry>,
    /// Entries that are not what payhook writes (skipped).
    pub unreadable_entries: usize,
}

/// Where an arrival is in processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// No processor has read it yet.
    Waiting,
    /// A processor holds it (or it failed and waits for its retry).
    Pending,
    /// It failed and waits for its next attempt.
    RetryScheduled,
    /// Processed and acknowledged (published, ignored or dead-lettered).
    Done,
}

impl Progress {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Pending => "pending",
            Self::RetryScheduled => "retry_scheduled",
            Self::Done => "done",
        }
    }
}

impl Store {
    /// The record and story of `key`, or `None` when Redis holds neither.
    pub async fn payment_record(
        &self,
        partition: Partition,
        key: &IdempotencyKey,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let (idem, story) = (self.keys.idempotency(partition, key), self.keys.story(partition, key));
        let (record, ttl_ms, raw): (Option<String>, i64, Vec<String>) = redis::pipe()
            .get(&idem)
            .cmd("PTTL")
            .arg(&idem)
            .lrange(&story, 0, -1)
            .query_async(&mut self.connection())
            .await?;
        if record.is_none() && raw.is_empty() {
            return Ok(None);
        }
        let entries: Vec<StoryEntry> = raw.iter().filter_map(|e| StoryEntry::parse(e)).collect();
        Ok(Some(PaymentRecord {
            idempotency_key: key.as_str().to_owned(),
            partition: partition.index(),
            published: record.and_then(|r| serde_json::from_str(&r).ok()),
            expires_in_secs: u64::try_from(ttl_ms).ok().map(|ms| ms / 1000),
            unreadable_entries: raw.len() - entries.len(),
            entries,
        }))
    }

    /// The idempotency keys that provider event `event_id` announced, looked
    /// up in every partition.
    pub async fn announced_by(
        &self,
        partitions: std::num::NonZeroU32,
        event_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for n in 0..partitions.get() {
            let index = self.keys.provider_event(Partition::from_index(n), event_id);
            let key: Option<String> = redis::cmd("GET").arg(index).query_async(&mut self.connection()).await?;
            keys.extend(key);
        }
        Ok(keys)
    }

    /// The dead letters of `arrivals`, and whether the search stopped at
    /// [`DLQ_SCAN_LIMIT`] before the end of the DLQ. A dead letter is always
    /// written after its arrival, so only letters from the oldest arrival's
    /// time on are read.
    pub async fn dead_letters_of(&self, arrivals: &[ArrivalId]) -> Result<(Vec<StoredDeadLetter>, bool), StoreError> {
        let (mut found, mut truncated) = (Vec::new(), false);
        for shard in self.keys.shards() {
            // A dead letter is in the DLQ of its arrival's shard.
            let here: Vec<&ArrivalId> = arrivals.iter().filter(|a| a.shard() == shard).collect();
            let Some(from) = here.iter().filter_map(|a| a.millis()).min() else { continue };
            let (letters, cut) = self.shard_dead_letters_of(shard, &here, from).await?;
            found.extend(letters);
            truncated |= cut;
        }
        Ok((found, truncated))
    }

    async fn shard_dead_letters_of(
        &self,
        shard: crate::domain::Shard,
        arrivals: &[&ArrivalId],
        from: u64,
    ) -> Result<(Vec<StoredDeadLetter>, bool), StoreError> {
        let (mut start, mut scanned, mut found) = (from.to_string(), 0, Vec::new());
        while scanned < DLQ_SCAN_LIMIT {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(self.keys.dlq(shard))
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(DLQ_PAGE)
                .query_async(&mut self.connection())
                .await?;
            let Some(last) = page.ids.last() else { return Ok((found, false)) };
            start = format!("({}", last.id);
            let full = page.ids.len() == DLQ_PAGE;
            scanned += page.ids.len();
            found.extend(
                page.ids
                    .into_iter()
                    .map(|entry| StoredDeadLetter::from_entry(entry, shard))
                    .filter(|l| arrivals.iter().any(|a| a.as_str() == l.arrival_id())),
            );
            if !full {
                return Ok((found, false));
            }
        }
        Ok((found, true))
    }

    /// Where the arrival `id` is in processing.
    pub async fn progress(&self, id: &ArrivalId) -> Result<Progress, StoreError> {
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(self.keys.arrivals(id.shard()))
            .arg(PROCESSORS_GROUP)
            .arg(id.entry())
            .arg(id.entry())
            .arg(1)
            .query_async(&mut self.connection())
            .await
            .or_else(|e| if e.code() == Some("NOGROUP") { Ok(Vec::new()) } else { Err(e) })?;
        if let Some((_, consumer, _, _)) = pending.first() {
            return Ok(if consumer == RETRY_CONSUMER { Progress::RetryScheduled } else { Progress::Pending });
        }
        let delivered = self.last_delivered(id.shard()).await?;
        let read = delivered.is_some_and(|last| entry_order(id.entry()) <= entry_order(&last));
        Ok(if read { Progress::Done } else { Progress::Waiting })
    }

    /// The processors group's last delivered id in `shard`, if the group exists.
    async fn last_delivered(&self, shard: crate::domain::Shard) -> Result<Option<String>, StoreError> {
        let groups: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.keys.arrivals(shard))
            .query_async(&mut self.connection())
            .await
            .or_else(|e| if e.code() == Some("ERR") { Ok(Vec::new()) } else { Err(e) })?;
        for group in groups {
            let fields: std::collections::HashMap<String, redis::Value> =
                redis::from_redis_value(group).unwrap_or_default();
            let text = |name: &str| fields.get(name).and_then(|v| redis::from_redis_value::<String>(v.clone()).ok());
            if text("name").as_deref() == Some(PROCESSORS_GROUP) {
                return Ok(text("last-delivered-id"));
            }
        }
        Ok(None)
    }
}

/// A stream entry id as a number pair, for ordering.
fn entry_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// When an arrival came in, from its id.
pub fn received_at(id: &ArrivalId) -> Option<DateTime<Utc>> {
    id.millis().and_then(|ms| DateTime::from_timestamp_millis(i64::try_from(ms).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(via: Via) -> Announcement<'static> {
        Announcement {
            arrival_id: "1-0",
            source: "stripe",
            provider_event_id: None,
            provider_event_type: "charge.succeeded",
            via,
        }
    }

    #[test]
    fn an_entry_reads_back_what_the_script_writes() {
        let middle = announcement(Via::Live).middle();
        assert_eq!(middle, r#"["live","1-0","stripe","charge.succeeded",null]"#);
        // What the script splices around the middle.
        let stored = format!(r#"[1780392600000,"published",{},"2-0"]"#, &middle[1..middle.len() - 1]);
        let entry = StoryEntry::parse(&stored).unwrap();
        assert_eq!((entry.outcome, entry.via, entry.reason), (StoryOutcome::Published, Via::Live, None));
        assert_eq!((entry.at.as_str(), entry.entry_id.as_deref()), ("2026-06-02T09:30:00.000Z", Some("2-0")));
    }

    #[test]
    fn a_dead_letter_entry_carries_its_reason() {
        let entry = StoryEntry::parse(&announcement(Via::Redrive).dead_lettered("publish_failed")).unwrap();
        assert_eq!((entry.outcome, entry.via), (StoryOutcome::DeadLettered, Via::Redrive));
        assert_eq!((entry.reason.as_deref(), entry.entry_id), (Some("publish_failed"), None));
    }

    #[test]
    fn text_payhook_did_not_write_is_no_entry() {
        for text in ["", "{}", "[1]", r#"[1,"eaten","live","1-0","s","t",null,null]"#] {
            assert_eq!(StoryEntry::parse(text), None, "{text}");
        }
    }

    #[test]
    fn entry_ids_order_numerically() {
        assert!(entry_order("9-0") < entry_order("10-0"));
        assert!(entry_order("10-2") < entry_order("10-10"));
    }
}
