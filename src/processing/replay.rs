//! Re-processing stored arrivals: replay of a time range, and redrive of
//! dead letters. Both ask [`Pipeline::decide`], as live processing does, so
//! they make the same checks, give the same reasons, and go through the same
//! dedupe-and-publish step: neither can publish a payment twice.
//!
//! Each stored arrival is verified again against its *recorded* arrival time
//! (not now), so a replayed webhook is exactly as trustworthy as its first
//! delivery, and a body altered in Redis since is refused.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pipeline::{Attempt, Decision, Mode, Pipeline, Settled};
use crate::{
    domain::{ArrivalId, Shard},
    store::{ArrivalEntry, DeadLetter, DlqReason, StoreError, StoredDeadLetter, Via},
    telemetry::events::DeadLettered,
};

/// Arrivals read per round trip while replaying.
const PAGE: usize = 500;

/// What to replay (the CLI's flags and `POST /admin/replay`'s body).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRange {
    /// First arrival time included.
    pub since: DateTime<Utc>,
    /// Last arrival time included; default now.
    pub until: Option<DateTime<Utc>>,
    /// Only this source.
    pub source: Option<String>,
    /// Verify and normalize, check what is already published, publish nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a replay or redrive did, counted by notification (an Adyen batch has
/// several), exactly as live processing would settle them. In a dry run,
/// `published` counts what would be published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Arrivals in the range (and source); for a redrive, the letters.
    pub matched: u64,
    /// Events published (or, in a dry run, that would be).
    pub published: u64,
    /// Payments already published: suppressed.
    pub duplicate: u64,
    /// Notifications that are not a payment success.
    pub ignored: u64,
    /// Arrivals that failed as a whole, and notifications that failed.
    pub failed: u64,
    /// `failed` by dead-letter reason.
    pub reasons: BTreeMap<DlqReason, u64>,
    /// Dead letters whose arrival is no longer kept, or that cannot be read
    /// (redrive only).
    pub missing: u64,
    /// Whether nothing was published.
    pub dry_run: bool,
    /// Said when the range reaches past what is kept.
    pub note: Option<String>,
}

impl ReplayReport {
    fn add(&mut self, decision: &Decision) {
        if let Decision::Settled(items) = decision {
            for item in items {
                match item {
                    Settled::Published => self.published += 1,
                    Settled::Duplicate => self.duplicate += 1,
                    Settled::Ignored => self.ignored += 1,
                    Settled::Failed(_) => {}
                }
            }
        }
        for (_, failure) in decision.failures() {
            self.failed += 1;
            *self.reasons.entry(failure.reason).or_default() += 1;
        }
    }
}

impl Pipeline {
    /// Re-processes every stored arrival of `range`.
    pub async fn replay(&self, range: &ReplayRange) -> Result<ReplayReport, StoreError> {
        self.store.claim_layout().await?;
        let until = range.until.unwrap_or_else(Utc::now);
        let mode = if range.dry_run { Mode::DryRun } else { Mode::Publish };
        let mut report = ReplayReport {
            dry_run: range.dry_run,
            note: self.retention_note(range.since).await?,
            ..Default::default()
        };
        let (since, until) = (range.since.timestamp_millis().max(0), until.timestamp_millis().max(0));
        for shard in self.store.keys().shards() {
            self.replay_shard(shard, (since, until), range.source.as_deref(), mode, &mut report).await?;
        }
        self.metrics.replays.inc();
        Ok(report)
    }

    /// Replays the arrivals of `shard` stored within `(since, until)` (ms),
    /// page by page in arrival order. Shards are replayed one after the
    /// other: their arrivals were never ordered among each other.
    async fn replay_shard(
        &self,
        shard: Shard,
        (since, until): (i64, i64),
        source: Option<&str>,
        mode: Mode,
        report: &mut ReplayReport,
    ) -> Result<(), StoreError> {
        let (mut start, end) = (since.to_string(), until.to_string());
        loop {
            let page = self.store.arrivals_between(shard, &start, &end, PAGE).await?;
            let Some(last) = page.last() else { break };
            start = format!("({}", last.id.entry());
            for entry in &page {
                if matches(entry, source) {
                    report.matched += 1;
                    report.add(&self.decide(entry, mode, Attempt::Operator(Via::Replay)).await);
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(())
    }

    /// Re-drives dead letters. Each arrival is re-processed once, however
    /// many of its letters are named. A letter leaves the DLQ when what it
    /// stands for now settles: its own notification (published, duplicate or
    /// ignored), or, for a letter without an item, the arrival as a whole;
    /// that arrival's notifications that still fail then get their own
    /// letters in its place.
    pub async fn redrive(&self, letters: &[StoredDeadLetter]) -> Result<ReplayReport, StoreError> {
        self.store.claim_layout().await?;
        let mut report = ReplayReport::default();
        let mut decided: HashMap<ArrivalId, Option<Decision>> = HashMap::new();
        for stored in letters {
            report.matched += 1;
            let Ok(letter) = &stored.letter else {
                report.missing += 1;
                continue;
            };
            if !decided.contains_key(&letter.arrival_id) {
                let decision = match self.store.arrival(&letter.arrival_id).await? {
                    Some(entry) => Some(self.decide(&entry, Mode::Publish, Attempt::Operator(Via::Redrive)).await),
                    None => None,
                };
                if let Some(decision) = &decision {
                    report.add(decision);
                }
                decided.insert(letter.arrival_id.clone(), decision);
            }
            let Some(Some(decision)) = decided.get(&letter.arrival_id) else {
                report.missing += 1;
                continue;
            };
            if let Some(successors) = successors(letter, decision) {
                self.store.retire_dead_letter(&stored.id, &successors).await?;
                for letter in &successors {
                    DeadLettered { letter }.emit(&self.metrics);
                }
            }
        }
        Ok(report)
    }

    /// Says so when `since` lies before the oldest arrival still kept.
    async fn retention_note(&self, since: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let oldest = self.store.oldest_arrival().await?;
        Ok(match oldest {
            Some(oldest) if since < oldest => Some(format!(
                "arrivals before {} are no longer kept (retention: arrival_retention_secs); the range starts earlier",
                crate::domain::rfc3339(oldest)
            )),
            _ => None,
        })
    }
}

fn matches(entry: &ArrivalEntry, source: Option<&str>) -> bool {
    match (source, &entry.arrival) {
        (None, _) => true,
        (Some(wanted), Ok(arrival)) => arrival.source.as_str() == wanted,
        (Some(_), Err(_)) => false,
    }
}

/// `None` when `letter` stays in the DLQ after its arrival was decided
/// again; else the letters that replace it (none, unless a letter for the
/// whole arrival gives way to letters for its failing notifications).
fn successors(letter: &DeadLetter, decision: &Decision) -> Option<Vec<DeadLetter>> {
    let Decision::Settled(items) = decision else { return None };
    match letter.item {
        Some(item) => match items.get(item) {
            Some(Settled::Failed(_)) | None => None,
            Some(_) => Some(Vec::new()),
        },
        None => Some(decision.dead_letters(&letter.arrival_id, letter.source.as_ref(), letter.attempts)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processing::pipeline::Failure;

    fn letter(item: Option<usize>) -> DeadLetter {
        DeadLetter {
            arrival_id: ArrivalId::parse("1700000000000-0").unwrap(),
            source: None,
            item,
            reason: DlqReason::IdempotencyConflict,
            error: String::new(),
            attempts: 1,
            failed_at: Utc::now(),
        }
    }

    fn conflict() -> Settled {
        Settled::Failed(Failure { reason: DlqReason::IdempotencyConflict, error: String::new() })
    }

    #[test]
    fn a_letter_for_one_item_follows_that_item_alone() {
        let decision = Decision::Settled(vec![conflict(), Settled::Published]);
        assert_eq!(successors(&letter(Some(0)), &decision), None, "item 0 still fails: the letter stays");
        assert_eq!(successors(&letter(Some(1)), &decision), Some(Vec::new()), "item 1 settled: it leaves");
        assert_eq!(successors(&letter(Some(2)), &decision), None, "an item that no longer exists stays");
    }

    #[test]
    fn a_letter_for_the_whole_arrival_gives_way_to_its_failing_items() {
        let decision = Decision::Settled(vec![Settled::Duplicate, conflict()]);
        let replaced = successors(&letter(None), &decision).unwrap();
        assert_eq!(replaced.iter().map(|l| l.item).collect::<Vec<_>>(), [Some(1)]);
        let rejected = Decision::Rejected(Failure { reason: DlqReason::ProviderMismatch, error: String::new() });
        assert_eq!(successors(&letter(None), &rejected), None);
    }
}
