//! `{p}:dlq`: arrivals that cannot become events, with the reason why.
//!
//! Entry fields: `arrival_id`, `source`, `reason` (a short machine word),
//! `error` (text without payload contents), `attempts`, `failed_at`. The
//! arrival itself stays in `{p}:arrivals`, so it can be inspected and
//! re-driven once the cause is fixed.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{ArrivalId, SourceName};

/// One dead letter.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The arrival that failed.
    pub arrival_id: ArrivalId,
    /// Its source, if the entry named one.
    pub source: Option<SourceName>,
    /// Machine word: `unparseable_payload`, `idempotency_conflict`, …
    pub reason: &'static str,
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
        pipe.cmd("XADD")
            .arg(dlq)
            .arg("*")
            .arg("arrival_id")
            .arg(self.arrival_id.as_str())
            .arg("source")
            .arg(self.source.as_ref().map_or("", SourceName::as_str))
            .arg("reason")
            .arg(self.reason)
            .arg("error")
            .arg(&self.error)
            .arg("attempts")
            .arg(self.attempts)
            .arg("failed_at")
            .arg(self.failed_at.to_rfc3339_opts(SecondsFormat::Millis, true))
            .ignore();
    }
}

/// A dead letter as stored, for listing and redriving.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoredDeadLetter {
    /// Its own entry id in `{p}:dlq`.
    pub id: String,
    /// The arrival that failed.
    pub arrival_id: String,
    /// Its source.
    pub source: String,
    /// Machine word.
    pub reason: String,
    /// Human text.
    pub error: String,
    /// Deliveries.
    pub attempts: String,
    /// When.
    pub failed_at: String,
}

impl StoredDeadLetter {
    pub(super) fn from_entry(entry: redis::streams::StreamId) -> Self {
        let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
        Self {
            arrival_id: field("arrival_id"),
            source: field("source"),
            reason: field("reason"),
            error: field("error"),
            attempts: field("attempts"),
            failed_at: field("failed_at"),
            id: entry.id,
        }
    }
}

impl super::Store {
    /// The newest `count` dead letters, newest first.
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<StoredDeadLetter>, super::StoreError> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.dlq())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.connection())
            .await?;
        Ok(reply.ids.into_iter().map(StoredDeadLetter::from_entry).collect())
    }

    /// The dead letter `id`.
    pub async fn dead_letter(&self, id: &str) -> Result<Option<StoredDeadLetter>, super::StoreError> {
        let reply: redis::streams::StreamRangeReply =
            redis::cmd("XRANGE").arg(self.keys.dlq()).arg(id).arg(id).query_async(&mut self.connection()).await?;
        Ok(reply.ids.into_iter().next().map(StoredDeadLetter::from_entry))
    }

    /// Removes the dead letter `id` (after a successful redrive).
    pub async fn remove_dead_letter(&self, id: &str) -> Result<(), super::StoreError> {
        let _: u64 = redis::cmd("XDEL").arg(self.keys.dlq()).arg(id).query_async(&mut self.connection()).await?;
        Ok(())
    }

    /// Number of dead letters.
    pub async fn dlq_len(&self) -> Result<u64, super::StoreError> {
        Ok(redis::cmd("XLEN").arg(self.keys.dlq()).query_async(&mut self.connection()).await?)
    }
}
