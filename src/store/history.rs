//! Reading stored arrivals back by id or time range, for replay, redrive and
//! the admin API. Arrival ids are Redis stream ids, whose first half is the
//! arrival time in milliseconds, so a time range is an id range.

use chrono::{DateTime, Utc};
use redis::streams::StreamRangeReply;

use super::{ArrivalEntry, Store, StoreError};
use crate::domain::ArrivalId;

impl Store {
    /// Up to `count` arrivals with ids from `start` (inclusive, `(id` for
    /// exclusive) to `end`, in order.
    pub async fn arrivals_between(
        &self,
        start: &str,
        end: &str,
        count: usize,
    ) -> Result<Vec<ArrivalEntry>, StoreError> {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.arrivals())
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.connection())
            .await?;
        Ok(reply.ids.into_iter().map(|entry| self.parse_entry(entry, 0)).collect())
    }

    /// The arrival `id`, if it is still kept.
    pub async fn arrival(&self, id: &ArrivalId) -> Result<Option<ArrivalEntry>, StoreError> {
        Ok(self.arrivals_between(id.as_str(), id.as_str(), 1).await?.into_iter().next())
    }

    /// When the oldest kept arrival came in, if any is kept.
    pub async fn oldest_arrival(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let first = self.arrivals_between("-", "+", 1).await?;
        Ok(first.first().and_then(|e| e.id.millis()).and_then(|ms| DateTime::from_timestamp_millis(ms as i64)))
    }
}
