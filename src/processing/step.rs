//! One round of processing: read a batch, turn each arrival into an event (or
//! a reason it cannot be one), publish, then acknowledge the batch at once.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use futures::future::join_all;
use tracing::Instrument;

use super::retry::Backoff;
use crate::{
    domain::{Arrival, CloudEvent, Normalized, PaymentFacts, PaymentSucceededV1, TraceContext},
    providers::SourceTable,
    publish::{Published, Publisher},
    store::{Announcement, ArrivalEntry, DeadLetter, Store, StoreError, Via},
    telemetry::{
        events::{DeadLettered, Processed},
        metrics::SourceLabels,
        spans, Metrics,
    },
};

/// What one batch did. Tests drive [`Processor::process_batch`] and read this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Arrivals read or reclaimed.
    pub read: usize,
    /// New events published.
    pub published: usize,
    /// Payments already published with the same facts.
    pub duplicates: usize,
    /// Notifications that are not a payment success.
    pub ignored: usize,
    /// Arrivals moved to the DLQ.
    pub dead_lettered: usize,
    /// Arrivals parked after a failure, to be retried after their backoff.
    pub retried: usize,
}

/// What became of one arrival. An arrival may carry several notifications
/// (an Adyen batch); it is acknowledged only when all of them are done.
enum Disposition {
    Done(Counts),
    Dead(DeadLetter),
    Retry,
}

impl Disposition {
    /// The machine word for the `process` span.
    fn outcome(&self) -> &'static str {
        match self {
            Self::Done(counts) if counts.published > 0 => "published",
            Self::Done(counts) if counts.duplicates > 0 => "duplicate",
            Self::Done(_) => "ignored",
            Self::Dead(_) => "dead_lettered",
            Self::Retry => "retry",
        }
    }
}

/// What the notifications of one finished arrival became.
#[derive(Default)]
struct Counts {
    published: usize,
    duplicates: usize,
    ignored: usize,
}

/// What became of one notification.
enum Step {
    Published,
    Duplicate,
    Ignored,
    Dead { reason: &'static str, error: String },
    Retry,
}

/// A processor: one consumer in the `processors` group.
#[derive(Clone, Debug)]
pub struct Processor {
    /// A dedicated connection: this processor's blocking reads must not stall others.
    pub(super) store: Store,
    pub(super) publisher: Publisher,
    pub(super) sources: SourceTable,
    pub(super) metrics: Arc<Metrics>,
    /// Consumer name in the group, unique per process and worker.
    pub(super) consumer: String,
    pub(super) batch_size: usize,
    /// `event_type_prefix` + `payment.succeeded.v1`.
    pub(super) event_type: String,
    pub(super) visibility_timeout: Duration,
    /// Deliveries after which a failing arrival goes to the DLQ.
    pub(super) max_attempts: u32,
    /// Delays between attempts of a failing arrival.
    pub(super) backoff: Backoff,
}

impl Processor {
    /// The number of output partitions.
    pub fn partitions(&self) -> std::num::NonZeroU32 {
        self.publisher.partitions()
    }

    /// Reads a batch (first arrivals abandoned by a crashed or failed
    /// processor, else new ones, waiting up to `block`) and processes it.
    pub async fn process_batch(&self, block: Duration) -> Result<BatchOutcome, StoreError> {
        let entries = self.next_batch(block).await?;
        self.process(entries).await
    }

    /// The next batch to work on: failed arrivals whose retry is due, then
    /// arrivals abandoned by a dead processor, then new ones.
    pub(super) async fn next_batch(&self, block: Duration) -> Result<Vec<ArrivalEntry>, StoreError> {
        let backoff = self.backoff;
        let is_due = |id: &str, deliveries, idle| backoff.is_due(id, deliveries, idle);
        let due = self.store.claim_due(&self.consumer, self.batch_size, backoff.base / 2, is_due).await?;
        if !due.is_empty() {
            return Ok(due);
        }
        let stale = self.store.claim_stale(&self.consumer, self.visibility_timeout, self.batch_size).await?;
        if !stale.is_empty() {
            return Ok(stale);
        }
        self.store.read_new(&self.consumer, self.batch_size, block).await
    }

    /// Processes `entries` concurrently (their Redis calls pipeline on one
    /// connection), then acknowledges the finished ones and dead-letters the
    /// failed ones in one atomic step.
    pub(super) async fn process(&self, entries: Vec<ArrivalEntry>) -> Result<BatchOutcome, StoreError> {
        let dispositions = join_all(entries.iter().map(|entry| self.process_one(entry))).await;
        let mut outcome = BatchOutcome { read: entries.len(), ..BatchOutcome::default() };
        let (mut done, mut dead, mut retry) = (Vec::new(), Vec::new(), Vec::new());
        for (entry, disposition) in entries.iter().zip(dispositions) {
            match disposition {
                Disposition::Done(counts) => {
                    outcome.published += counts.published;
                    outcome.duplicates += counts.duplicates;
                    outcome.ignored += counts.ignored;
                }
                Disposition::Dead(letter) => {
                    dead.push(letter);
                    continue;
                }
                Disposition::Retry => {
                    outcome.retried += 1;
                    retry.push(entry.id.clone());
                    continue;
                }
            }
            done.push(entry.id.clone());
        }
        self.store.settle(&done, &dead, &retry).await?;
        outcome.dead_lettered = dead.len();
        for letter in &dead {
            DeadLettered { letter }.emit(&self.metrics);
        }
        Ok(outcome)
    }

    /// Processes one arrival in a `process` span continuing its stored trace.
    async fn process_one(&self, entry: &ArrivalEntry) -> Disposition {
        let span = spans::process(entry);
        let disposition = self.dispose(entry).instrument(span.clone()).await;
        spans::finish(&span, disposition.outcome(), None);
        disposition
    }

    async fn dispose(&self, entry: &ArrivalEntry) -> Disposition {
        let dead = |source, reason, error: String| {
            let (arrival_id, attempts, failed_at) = (entry.id.clone(), entry.deliveries, Utc::now());
            Disposition::Dead(DeadLetter { arrival_id, source, reason, error, attempts, failed_at })
        };
        let arrival = match &entry.arrival {
            Ok(arrival) => arrival,
            Err(field) => {
                return dead(None, "malformed_arrival", format!("stream entry field {field} is missing or invalid"))
            }
        };
        let source = Some(arrival.source.clone());
        self.metrics.attempts.get_or_create(&SourceLabels { source: source.clone() }).inc();
        let Some(configured) = self.sources.get(arrival.source.as_str()) else {
            return dead(source, "unknown_source", "the source is no longer configured".into());
        };
        if configured.provider_name != arrival.provider {
            let error =
                format!("stored for provider {}, source now uses {}", arrival.provider, configured.provider_name);
            return dead(source, "provider_mismatch", error);
        }
        let notifications = match configured.provider.normalize(arrival) {
            Ok(notifications) => notifications,
            Err(error) => return dead(source, error.reason(), error.to_string()),
        };
        let mut counts = Counts::default();
        for notification in notifications {
            match self.handle(entry, arrival, &configured.payment_provider, notification).await {
                Step::Published => counts.published += 1,
                Step::Duplicate => counts.duplicates += 1,
                Step::Ignored => counts.ignored += 1,
                // The whole arrival is retried or dead-lettered; notifications
                // already published are then suppressed as duplicates.
                Step::Dead { reason, error } => return dead(source, reason, error),
                Step::Retry => return Disposition::Retry,
            }
        }
        Disposition::Done(counts)
    }

    async fn handle(&self, entry: &ArrivalEntry, arrival: &Arrival, provider: &str, notification: Normalized) -> Step {
        match notification {
            Normalized::Ignored { event_type } => {
                Processed::Ignored { provider_event_type: &event_type }.emit(arrival, entry.deliveries, &self.metrics);
                Step::Ignored
            }
            Normalized::Payment(facts) => self.publish(entry, arrival, provider, &facts).await,
        }
    }

    /// The event for `facts`, carrying the delivery's correlation and trace ids.
    pub(super) fn event(
        &self,
        arrival: &Arrival,
        provider: &str,
        facts: &PaymentFacts,
    ) -> CloudEvent<PaymentSucceededV1> {
        // The event continues the delivery's trace (CloudEvents distributed
        // tracing extension) as the exported `process` span, or, with export
        // off, as a new span id: consumers continue it in turn.
        let stored = arrival.request.headers.get(spans::TRACEPARENT).and_then(TraceContext::parse);
        let trace = spans::continuation(stored).map(|t| t.to_string());
        let (source, correlation) = (&arrival.source, &arrival.request_id);
        CloudEvent::payment_succeeded(facts, source, provider, &self.event_type, correlation, trace.as_deref())
    }

    async fn publish(&self, entry: &ArrivalEntry, arrival: &Arrival, provider: &str, facts: &PaymentFacts) -> Step {
        let key = facts.idempotency_key(provider);
        let event = self.event(arrival, provider, facts);
        let provider_event_id = facts.provider_event_id.as_deref();
        let announcement = Announcement::of(arrival, facts, Via::Live);
        match self.publisher.publish(&event, &key, &facts.fingerprint(provider), &announcement).await {
            Ok(Published::New { .. }) => {
                let (event_id, event_type) = (event.id(), event.event_type());
                Processed::Published { key: &key, event_id, event_type, provider_event_id }.emit(
                    arrival,
                    entry.deliveries,
                    &self.metrics,
                );
                Step::Published
            }
            Ok(Published::Duplicate { .. }) => {
                Processed::Duplicate { key: &key, provider_event_id }.emit(arrival, entry.deliveries, &self.metrics);
                Step::Duplicate
            }
            Ok(Published::Conflict { event_id }) => Step::Dead {
                reason: "idempotency_conflict",
                error: format!("{key} was published as event {event_id} with other amount, currency or livemode"),
            },
            Err(error) if entry.deliveries >= self.max_attempts => {
                // Best effort: Redis just refused the publish; the dead letter itself is what counts.
                if let Err(e) = self.publisher.record_dead_letter(&key, &announcement, "publish_failed").await {
                    tracing::warn!(arrival_id = %arrival.id, error = %e, "Dead letter not recorded in the payment's story.");
                }
                Step::Dead { reason: "publish_failed", error: error.to_string() }
            }
            Err(error) => {
                Processed::Failed { reason: "publish_failed", error: &error }.emit(
                    arrival,
                    entry.deliveries,
                    &self.metrics,
                );
                Step::Retry
            }
        }
    }
}
