//! Failed arrivals waiting for their retry.
//!
//! A processor that cannot finish an arrival (Redis refused the publish)
//! hands it to the pseudo-consumer `retry` with `XCLAIM … JUSTID`, which
//! keeps its delivery count and restarts its idle clock. Processors then
//! claim back only the parked arrivals whose backoff has passed. Arrivals
//! held by a *live* consumer are never taken this way, so a slow batch is
//! not processed twice; a *dead* consumer's arrivals are reclaimed after the
//! visibility timeout instead (`Store::claim_stale`).

use std::time::Duration;

use redis::streams::{StreamClaimReply, StreamPendingCountReply};

use super::{keys::PROCESSORS_GROUP, ArrivalEntry, Store, StoreError};
use crate::domain::ArrivalId;

/// The pseudo-consumer that holds arrivals waiting for a retry.
pub const RETRY_CONSUMER: &str = "retry";

impl Store {
    /// Queues, on `pipe`, the parking of `ids` with the retry pseudo-consumer.
    pub(super) fn park(&self, pipe: &mut redis::Pipeline, ids: &[ArrivalId]) {
        if ids.is_empty() {
            return;
        }
        pipe.cmd("XCLAIM")
            .arg(self.keys.arrivals())
            .arg(PROCESSORS_GROUP)
            .arg(RETRY_CONSUMER)
            .arg(0)
            .arg(ids.iter().map(ArrivalId::as_str).collect::<Vec<_>>())
            .arg("JUSTID")
            .ignore();
    }

    /// Claims for `consumer` up to `count` parked arrivals that are due:
    /// `is_due(entry id, deliveries so far, idle time)`. Only arrivals parked
    /// at least `min_idle` are looked at.
    pub async fn claim_due(
        &self,
        consumer: &str,
        count: usize,
        min_idle: Duration,
        is_due: impl Fn(&str, u32, Duration) -> bool,
    ) -> Result<Vec<ArrivalEntry>, StoreError> {
        let min_idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let parked: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(self.keys.arrivals())
            .arg(PROCESSORS_GROUP)
            .arg("IDLE")
            .arg(min_idle_ms)
            .arg("-")
            .arg("+")
            .arg(count)
            .arg(RETRY_CONSUMER)
            .query_async(&mut self.connection())
            .await?;
        let deliveries = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let due: Vec<(String, u32)> = parked
            .ids
            .into_iter()
            .filter(|p| is_due(&p.id, deliveries(p.times_delivered), Duration::from_millis(p.last_delivered_ms as u64)))
            .map(|p| (p.id, deliveries(p.times_delivered)))
            .collect();
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let claimed: StreamClaimReply = redis::cmd("XCLAIM")
            .arg(self.keys.arrivals())
            .arg(PROCESSORS_GROUP)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg(due.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
            .query_async(&mut self.connection())
            .await?;
        let before = |id: &str| due.iter().find(|(d, _)| d == id).map_or(0, |(_, n)| *n);
        // XCLAIM counted this delivery.
        Ok(claimed
            .ids
            .into_iter()
            .map(|entry| {
                let count = before(&entry.id).saturating_add(1);
                self.parse_entry(entry, count)
            })
            .collect())
    }
}
