//! Housekeeping of `{p}:arrivals` (every shard's) and its `processors` group.
//!
//! Trimming by age lives here, not in the ingress's `XADD`: only the group
//! knows which arrivals are still unacknowledged, and trimming one of those
//! would lose a payment answered 2xx. Each pass is one Lua script
//! (`maintain.lua`), so the floor it computes cannot go stale before the
//! trim, and any number of gateways may run it at once: each pass only
//! removes what every pass agrees may go.
//!
//! Touches: `{p}:arrivals` (`XTRIM`, `XGROUP DELCONSUMER`).

use std::{sync::LazyLock, time::Duration};

use redis::Script;

use super::{keys::PROCESSORS_GROUP, Store, StoreError, RETRY_CONSUMER};
use crate::domain::{ArrivalId, Shard};

/// Trims by age below the oldest unacknowledged arrival, removes idle
/// consumers, and reports the oldest unacknowledged arrival.
static MAINTAIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("maintain.lua")));

/// What one maintenance pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Entries trimmed from the arrivals stream.
    pub trimmed: u64,
    /// Consumers removed from the group: idle and holding nothing.
    pub removed_consumers: Vec<String>,
}

/// The script's reply: oldest unacknowledged id (or empty), Redis's clock
/// in ms, entries trimmed, consumers removed.
type Reply = (String, u64, u64, Vec<String>);

impl Store {
    /// One maintenance pass over every shard: trims arrivals older than the retention window
    /// unless the processors have not acknowledged them (pending, or not yet
    /// delivered; without the group, nothing is trimmed), and removes
    /// consumers that hold no arrival and were idle for `idle_consumer` (the
    /// retry pseudo-consumer stays).
    pub async fn maintain(&self, idle_consumer: Duration) -> Result<Maintained, StoreError> {
        let mut done = Maintained::default();
        for shard in self.keys.shards() {
            let (_, _, trimmed, removed) = self.run_maintain(shard, self.retention, idle_consumer).await?;
            done.trimmed += trimmed;
            done.removed_consumers.extend(removed);
        }
        // A gateway's consumer is in the group of every shard it read.
        done.removed_consumers.sort_unstable();
        done.removed_consumers.dedup();
        Ok(done)
    }

    /// How long the oldest arrival of `shard` the processors have not
    /// acknowledged (pending, or never delivered) has waited; zero when there
    /// is none.
    pub(super) async fn oldest_unacknowledged_age(&self, shard: Shard) -> Result<Duration, StoreError> {
        // Zero durations ask the script to only look.
        let (oldest, now_ms, _, _) = self.run_maintain(shard, Duration::ZERO, Duration::ZERO).await?;
        let stored_ms = ArrivalId::parse(&oldest).ok().and_then(|id| id.millis());
        Ok(stored_ms.map_or(Duration::ZERO, |ms| Duration::from_millis(now_ms.saturating_sub(ms))))
    }

    async fn run_maintain(
        &self,
        shard: Shard,
        retention: Duration,
        idle_consumer: Duration,
    ) -> Result<Reply, StoreError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Ok(MAINTAIN
            .key(self.keys.arrivals(shard))
            .arg(PROCESSORS_GROUP)
            .arg(ms(retention))
            .arg(ms(idle_consumer))
            .arg(RETRY_CONSUMER)
            .invoke_async(&mut self.connection())
            .await?)
    }
}
