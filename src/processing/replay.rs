//! Re-processing stored arrivals: replay of a time range, and redrive of
//! dead letters. Both go through the same dedupe-and-publish step as live
//! processing, so neither can publish a payment twice.
//!
//! Each stored arrival is verified again against its *recorded* arrival time
//! (not now), so a replayed webhook is exactly as trustworthy as its first
//! delivery, and a body altered in Redis since is refused.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Processor;
use crate::{
    domain::{Arrival, Normalized, Partition},
    publish::Published,
    store::{Announcement, ArrivalEntry, StoreError, StoredDeadLetter, Via},
    telemetry::events::Processed,
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

/// What a replay or redrive did. In a dry run, `published` counts what would
/// be published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Arrivals in the range (and source).
    pub matched: u64,
    /// Events published (or, in a dry run, that would be).
    pub published: u64,
    /// Payments already published: suppressed.
    pub duplicate: u64,
    /// Notifications that are not a payment success.
    pub ignored: u64,
    /// Arrivals that failed verification, normalization or dedupe.
    pub failed: u64,
    /// Dead letters whose arrival is no longer kept (redrive only).
    pub missing: u64,
    /// Whether nothing was published.
    pub dry_run: bool,
    /// Said when the range reaches past what is kept.
    pub note: Option<String>,
}

/// What re-processing one arrival did.
#[derive(Default)]
struct Redo {
    published: u64,
    duplicate: u64,
    ignored: u64,
    failure: Option<&'static str>,
}

impl ReplayReport {
    fn add(&mut self, redo: &Redo) {
        self.published += redo.published;
        self.duplicate += redo.duplicate;
        self.ignored += redo.ignored;
        self.failed += u64::from(redo.failure.is_some());
    }
}

impl Processor {
    /// Re-processes every stored arrival of `range`.
    pub async fn replay(&self, range: &ReplayRange) -> Result<ReplayReport, StoreError> {
        self.store.claim_layout().await?;
        let until = range.until.unwrap_or_else(Utc::now);
        let mut report = ReplayReport {
            dry_run: range.dry_run,
            note: self.retention_note(range.since).await?,
            ..Default::default()
        };
        let mut start = range.since.timestamp_millis().max(0).to_string();
        let end = until.timestamp_millis().max(0).to_string();
        loop {
            let page = self.store.arrivals_between(&start, &end, PAGE).await?;
            let Some(last) = page.last() else { break };
            start = format!("({}", last.id);
            for entry in &page {
                if self.matches(entry, range.source.as_deref()) {
                    report.matched += 1;
                    report.add(&self.redo(entry, range.dry_run, Via::Replay).await?);
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        self.metrics.replays.inc();
        Ok(report)
    }

    /// Re-drives dead letters: a letter whose arrival now succeeds (published,
    /// duplicate or ignored) is removed from the DLQ; one that still fails stays.
    pub async fn redrive(&self, letters: &[StoredDeadLetter]) -> Result<ReplayReport, StoreError> {
        self.store.claim_layout().await?;
        let mut report = ReplayReport::default();
        for letter in letters {
            report.matched += 1;
            let arrival = match crate::domain::ArrivalId::parse(&letter.arrival_id) {
                Ok(id) => self.store.arrival(&id).await?,
                Err(_) => None,
            };
            let Some(entry) = arrival else {
                report.missing += 1;
                continue;
            };
            let redo = self.redo(&entry, false, Via::Redrive).await?;
            report.add(&redo);
            if redo.failure.is_none() {
                self.store.remove_dead_letter(&letter.id).await?;
            }
        }
        Ok(report)
    }

    fn matches(&self, entry: &ArrivalEntry, source: Option<&str>) -> bool {
        match (source, &entry.arrival) {
            (None, _) => true,
            (Some(wanted), Ok(arrival)) => arrival.source.as_str() == wanted,
            (Some(_), Err(_)) => false,
        }
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

    /// Verifies, normalizes and (unless `dry_run`) publishes one stored
    /// arrival; the payment's story records it as done `via` replay or redrive.
    async fn redo(&self, entry: &ArrivalEntry, dry_run: bool, via: Via) -> Result<Redo, StoreError> {
        let Ok(arrival) = &entry.arrival else { return Ok(failed("malformed_arrival")) };
        let Some(source) = self.sources.get(arrival.source.as_str()) else { return Ok(failed("unknown_source")) };
        if let Some(fetch) = source.provider.prefetch(&arrival.request) {
            if fetch.await.is_err() {
                return Ok(failed("key_unavailable"));
            }
        }
        if source.provider.reverify(&arrival.request).is_err() {
            return Ok(failed("invalid_signature"));
        }
        let notifications = match source.provider.normalize(arrival) {
            Ok(notifications) => notifications,
            Err(error) => return Ok(failed(error.reason())),
        };
        let mut redo = Redo::default();
        for notification in notifications {
            match notification {
                Normalized::Ignored { .. } => redo.ignored += 1,
                Normalized::Payment(facts) => {
                    let key = facts.idempotency_key(&source.payment_provider);
                    let outcome = if dry_run {
                        let partition = Partition::of(&key, self.publisher.partitions());
                        if self.store.is_published(partition, &key).await? {
                            Published::Duplicate { event_id: String::new() }
                        } else {
                            Published::New { entry_id: String::new() }
                        }
                    } else {
                        self.publish_event(arrival, &source.payment_provider, &facts, &key, via).await?
                    };
                    match outcome {
                        Published::New { .. } => redo.published += 1,
                        Published::Duplicate { .. } => redo.duplicate += 1,
                        Published::Conflict { .. } => return Ok(failed("idempotency_conflict")),
                    }
                }
            }
        }
        Ok(redo)
    }

    async fn publish_event(
        &self,
        arrival: &Arrival,
        provider: &str,
        facts: &crate::domain::PaymentFacts,
        key: &crate::domain::IdempotencyKey,
        via: Via,
    ) -> Result<Published, StoreError> {
        let event = self.event(arrival, provider, facts);
        let announcement = Announcement::of(arrival, facts, via);
        let published = self.publisher.publish(&event, key, &facts.fingerprint(provider), &announcement).await?;
        let provider_event_id = facts.provider_event_id.as_deref();
        match &published {
            Published::New { .. } => {
                let (event_id, event_type) = (event.id(), event.event_type());
                Processed::Published { key, event_id, event_type, provider_event_id }.emit(arrival, 0, &self.metrics)
            }
            Published::Duplicate { .. } => {
                Processed::Duplicate { key, provider_event_id }.emit(arrival, 0, &self.metrics)
            }
            Published::Conflict { .. } => {}
        }
        Ok(published)
    }
}

fn failed(reason: &'static str) -> Redo {
    Redo { failure: Some(reason), ..Redo::default() }
}
