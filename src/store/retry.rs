//! Failed arrivals waiting for their retry.
//!
//! A processor that cannot finish an arrival (Redis refused the publish)
//! hands it to the pseudo-consumer `retry` with `XCLAIM … JUSTID`, which
//! keeps its delivery count and restarts its idle clock. Processors then
//! claim back only the parked arrivals whose backoff has passed, however
//! long past the visibility timeout that is: the search for a dead
//! processor's arrivals (`Store::claim_stale`) skips this pseudo-consumer,
//! so each retry is a real attempt after its full backoff. Arrivals held by
//! a *live* consumer are never taken this way, so a slow batch is not
//! processed twice.

use std::time::Duration;

use redis::streams::StreamPendingCountReply;

use super::{keys::PROCESSORS_GROUP, Claimed, Store, StoreError};
use crate::domain::{ArrivalId, Shard};

/// The pseudo-consumer that holds arrivals waiting for a retry.
pub const RETRY_CONSUMER: &str = "retry";

/// How many parked arrivals one look covers, per arrival wanted.
const SCAN_FACTOR: usize = 10;

impl Store {
    /// Queues, on `pipe`, the parking of `ids` (all of `shard`) with the
    /// retry pseudo-consumer.
    pub(super) fn park(&self, pipe: &mut redis::Pipeline, shard: Shard, ids: &[ArrivalId]) {
        if ids.is_empty() {
            return;
        }
        pipe.cmd("XCLAIM")
            .arg(self.keys.arrivals(shard))
            .arg(PROCESSORS_GROUP)
            .arg(RETRY_CONSUMER)
            .arg(0)
            .arg(ids.iter().map(ArrivalId::entry).collect::<Vec<_>>())
            .arg("JUSTID")
            .ignore();
    }

    /// Claims for `consumer` up to `count` parked arrivals of `shard` that are due:
    /// `is_due(entry id, deliveries so far, idle time)`. Only arrivals parked
    /// at least `min_idle` are looked at, and a window of several times
    /// `count` of them, so arrivals with long delays at the head of the
    /// queue do not hold back the due ones behind them.
    pub async fn claim_due(
        &self,
        shard: Shard,
        consumer: &str,
        count: usize,
        min_idle: Duration,
        is_due: impl Fn(&str, u32, Duration) -> bool,
    ) -> Result<Claimed, StoreError> {
        let parked: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(self.keys.arrivals(shard))
            .arg(PROCESSORS_GROUP)
            .arg("IDLE")
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg("-")
            .arg("+")
            .arg(count.saturating_mul(SCAN_FACTOR))
            .arg(RETRY_CONSUMER)
            .query_async(&mut self.connection())
            .await?;
        let deliveries = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let due: Vec<&str> = parked
            .ids
            .iter()
            .filter(|p| is_due(&p.id, deliveries(p.times_delivered), Duration::from_millis(p.last_delivered_ms as u64)))
            .map(|p| p.id.as_str())
            .take(count)
            .collect();
        if due.is_empty() {
            return Ok(Claimed::default());
        }
        self.claim(shard, consumer, min_idle, count, &due).await
    }
}
