//! Paging through `{p}:dlq` newest first, filtered by reason and source, for
//! the console. The DLQ has no secondary index, so a filter reads entries
//! and keeps the matching ones; each request reads at most
//! [`SCAN_LIMIT`] entries and says where to go on.

use redis::streams::StreamRangeReply;

use super::{dlq::StoredDeadLetter, Store, StoreError};

/// Entries read per round trip.
const PAGE: usize = 500;

/// Entries read, at most, by one search.
const SCAN_LIMIT: usize = 20_000;

/// Which dead letters to list.
#[derive(Clone, Debug, Default)]
pub struct DeadLetterFilter {
    /// Only this reason.
    pub reason: Option<String>,
    /// Only this source.
    pub source: Option<String>,
}

impl DeadLetterFilter {
    fn accepts(&self, letter: &StoredDeadLetter) -> bool {
        self.reason.as_ref().is_none_or(|r| r == letter.reason())
            && self.source.as_ref().is_none_or(|s| s == letter.source())
    }
}

/// One page of a search.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetterPage {
    /// Matching letters, newest first.
    pub letters: Vec<StoredDeadLetter>,
    /// Where the next (older) page starts, exclusive; none at the end of the DLQ.
    pub next: Option<String>,
}

impl Store {
    /// Up to `count` letters matching `filter`, newest first over every
    /// shard, older than `before` (a letter id; none: from the newest).
    pub async fn search_dead_letters(
        &self,
        filter: &DeadLetterFilter,
        before: Option<&str>,
        count: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        let cursor = before.map(StoredDeadLetter::order_of);
        let mut matching = Vec::new();
        let mut truncated = None;
        for shard in self.keys().shards() {
            let (found, last) = self.search_shard(shard, filter, cursor).await?;
            matching.extend(found);
            // A shard read up to the scan limit may hold more, older letters.
            truncated = truncated.max(last);
        }
        matching.sort_by_key(|letter| std::cmp::Reverse(letter.order()));
        let more = matching.len() > count;
        matching.truncate(count);
        let next = match (more, truncated) {
            (true, _) => matching.last().map(|l| l.id.clone()),
            (false, Some(last)) => Some(last),
            (false, None) => None,
        };
        Ok(DeadLetterPage { letters: matching, next })
    }

    /// The letters of `shard` matching `filter` older than `cursor`, read
    /// newest first up to [`SCAN_LIMIT`]; with the id of the last letter
    /// read when the limit cut the reading short.
    async fn search_shard(
        &self,
        shard: crate::domain::Shard,
        filter: &DeadLetterFilter,
        cursor: Option<(u64, u64)>,
    ) -> Result<(Vec<StoredDeadLetter>, Option<String>), StoreError> {
        let mut end = cursor.map_or_else(|| "+".to_owned(), |(ms, seq)| format!("({ms}-{seq}"));
        let (mut found, mut scanned) = (Vec::new(), 0);
        loop {
            let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(self.keys().dlq(shard))
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut self.connection())
                .await?;
            let full = reply.ids.len() == PAGE;
            let Some(last) = reply.ids.last().map(|e| e.id.clone()) else { return Ok((found, None)) };
            scanned += reply.ids.len();
            let letters = reply.ids.into_iter().map(|entry| StoredDeadLetter::from_entry(entry, shard));
            found.extend(letters.filter(|letter| filter.accepts(letter)));
            if !full {
                return Ok((found, None));
            }
            if scanned >= SCAN_LIMIT {
                let last = found.last().map_or(last, |l: &StoredDeadLetter| l.id.clone());
                return Ok((found, Some(last)));
            }
            end = format!("({last}");
        }
    }
}
