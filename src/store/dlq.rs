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
