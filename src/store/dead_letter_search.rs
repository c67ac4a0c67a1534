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
    /// Up to `count` letters matching `filter`, newest first, older than
    /// `before` (an entry id; none: from the newest).
    pub async fn search_dead_letters(
        &self,
        filter: &DeadLetterFilter,
        before: Option<&str>,
        count: usize,
    ) -> Result<DeadLetterPage, StoreError> {
        let mut end = before.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        let (mut letters, mut scanned) = (Vec::<StoredDeadLetter>::new(), 0);
        loop {
            let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(self.keys.dlq())
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut self.connection())
                .await?;
            let full = reply.ids.len() == PAGE;
            let Some(last) = reply.ids.last().map(|e| e.id.clone()) else {
                return Ok(DeadLetterPage { letters, next: None });
            };
            scanned += reply.ids.len();
            for letter in reply.ids.into_iter().map(StoredDeadLetter::from_entry) {
                if !filter.accepts(&letter) {
                    continue;
                }
                if letters.len() == count {
                    // One more match exists: the page ends at the last one shown.
                    let next = letters.last().map(|l| l.id.clone());
                    return Ok(DeadLetterPage { letters, next });
                }
                letters.push(letter);
            }
            if !full {
                return Ok(DeadLetterPage { letters, next: None });
            }
            if scanned >= SCAN_LIMIT {
                return Ok(DeadLetterPage { letters, next: Some(last) });
            }
            end = format!("({last}");
        }
    }
}
