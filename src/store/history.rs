//! Reading stored arrivals back by id or time range, for replay, redrive and
//! the admin API. Arrival ids are Redis stream ids (with their shard), whose
//! first half is the arrival time in milliseconds, so a time range is an id
//! range in each shard's stream.

use chrono::{DateTime, Utc};
use redis::streams::StreamRangeReply;

use super::{ArrivalEntry, Store, StoreError};
use crate::domain::{ArrivalId, Shard};

impl Store {
    /// Up to `count` arrivals of `shard` with entry ids from `start`
    /// (inclusive, `(id` for exclusive) to `end`, in order.
    pub async fn arrivals_between(
        &self,
        shard: Shard,
        start: &str,
        end: &str,
        count: usize,
    ) -> Result<Vec<ArrivalEntry>, StoreError> {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.arrivals(shard))
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.connection())
            .await?;
        Ok(reply.ids.into_iter().map(|entry| self.parse_entry(entry, shard, 0)).collect())
    }

    /// The arrival `id`, if it is still kept (and its shard exists).
    pub async fn arrival(&self, id: &ArrivalId) -> Result<Option<ArrivalEntry>, StoreError> {
        if !self.keys.has(id.shard()) {
            return Ok(None);
        }
        Ok(self.arrivals_between(id.shard(), id.entry(), id.entry(), 1).await?.into_iter().next())
    }

    /// When the oldest kept arrival (of any shard) came in, if any is kept.
    pub async fn oldest_arrival(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut oldest: Option<u64> = None;
        for shard in self.keys.shards() {
            let first = self.arrivals_between(shard, "-", "+", 1).await?;
            if let Some(ms) = first.first().and_then(|e| e.id.millis()) {
                oldest = Some(oldest.map_or(ms, |o| o.min(ms)));
            }
        }
        Ok(oldest.and_then(|ms| DateTime::from_timestamp_millis(ms as i64)))
    }
}
