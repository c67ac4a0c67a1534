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
//! - by provider event id: `{p}:pevent:{N}:<provider event id>`, a set of the
//!   idempotency keys that provider event announced, written by the same
//!   script with the same TTL, in the payment's own partition (so a search
//!   looks in every partition);
//! - by arrival id: the arrival is read and normalized again
//!   (`crate::processing`), and its dead letters are found in `{p}:dlq`.
//!
//! Memory per payment (Redis 7, measured with `MEMORY USAGE` on real keys of
//! a Stripe payment announced by two provider events): see the README's
//! console section; roughly 430 bytes for the story and 130 per provider
//! event id indexed.

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

/// One entry of a story, as stored (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_event_id: Option<String>,
    /// The provider's type of the notification.
    pub provider_event_type: String,
    /// The event published for the payment (now or before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The entry in the partition stream (when published now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// The dead letter's reason (when dead-lettered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the caller knows of an announcement; the publish script adds the
/// time, the outcome and the event.
#[derive(Clone, Debug, Serialize)]
pub struct Announcement<'a> {
    /// The arrival.
    pub arrival_id: &'a str,
    /// Its source.
    pub source: &'a str,
    /// The provider's id of the notification.
    #[serde(skip_serializing_if = "Option::is_none")]
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

    /// The entry saying it was dead-lettered for `reason` now.
    pub fn dead_lettered(&self, reason: &str) -> StoryEntry {
        StoryEntry {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            outcome: StoryOutcome::DeadLettered,
            via: self.via,
            arrival_id: self.arrival_id.to_owned(),
            source: self.source.to_owned(),
            provider_event_id: self.provider_event_id.map(str::to_owned),
            provider_event_type: self.provider_event_type.to_owned(),
            event_id: None,
            entry_id: None,
            reason: Some(reason.to_owned()),
        }
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
        let entries: Vec<StoryEntry> = raw.iter().filter_map(|e| serde_json::from_str(e).ok()).collect();
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
            let members: Vec<String> = redis::cmd("SMEMBERS").arg(index).query_async(&mut self.connection()).await?;
            keys.extend(members);
        }
        Ok(keys)
    }

    /// The dead letters of `arrivals`, and whether the search stopped at
    /// [`DLQ_SCAN_LIMIT`] before the end of the DLQ. A dead letter is always
    /// written after its arrival, so only letters from the oldest arrival's
    /// time on are read.
    pub async fn dead_letters_of(&self, arrivals: &[ArrivalId]) -> Result<(Vec<StoredDeadLetter>, bool), StoreError> {
        let Some(from) = arrivals.iter().filter_map(ArrivalId::millis).min() else { return Ok((Vec::new(), false)) };
        let (mut start, mut scanned, mut found) = (from.to_string(), 0, Vec::new());
        while scanned < DLQ_SCAN_LIMIT {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(self.keys.dlq())
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
                    .map(StoredDeadLetter::from_entry)
                    .filter(|l| arrivals.iter().any(|a| a.as_str() == l.arrival_id)),
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
            .arg(self.keys.arrivals())
            .arg(PROCESSORS_GROUP)
            .arg(id.as_str())
            .arg(id.as_str())
            .arg(1)
            .query_async(&mut self.connection())
            .await
            .or_else(|e| if e.code() == Some("NOGROUP") { Ok(Vec::new()) } else { Err(e) })?;
        if let Some((_, consumer, _, _)) = pending.first() {
            return Ok(if consumer == RETRY_CONSUMER { Progress::RetryScheduled } else { Progress::Pending });
        }
        let delivered = self.last_delivered().await?;
        let read = delivered.is_some_and(|last| entry_order(id.as_str()) <= entry_order(&last));
        Ok(if read { Progress::Done } else { Progress::Waiting })
    }

    /// The processors group's last delivered id, if the group exists.
    async fn last_delivered(&self) -> Result<Option<String>, StoreError> {
        let groups: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.keys.arrivals())
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

    #[test]
    fn an_entry_reads_back_what_the_script_writes() {
        let json = r#"{"at":"2026-06-02T09:30:00.000Z","outcome":"published","via":"live","arrival_id":"1-0",
            "source":"stripe","provider_event_id":"evt_1","provider_event_type":"payment_intent.succeeded",
            "event_id":"e","entry_id":"2-0"}"#;
        let entry: StoryEntry = serde_json::from_str(json).unwrap();
        assert_eq!((entry.outcome, entry.via, entry.reason), (StoryOutcome::Published, Via::Live, None));
    }

    #[test]
    fn an_announcement_leaves_what_the_script_adds_to_it() {
        let a = Announcement {
            arrival_id: "1-0",
            source: "stripe",
            provider_event_id: None,
            provider_event_type: "charge.succeeded",
            via: Via::Redrive,
        };
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"arrival_id":"1-0","source":"stripe","provider_event_type":"charge.succeeded","via":"redrive"}"#
        );
    }

    #[test]
    fn entry_ids_order_numerically() {
        assert!(entry_order("9-0") < entry_order("10-0"));
        assert!(entry_order("10-2") < entry_order("10-10"));
    }
}
