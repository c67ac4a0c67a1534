//! What becomes of one arrival: the one decision that live processing,
//! retries, replay and redrive share, so they cannot drift apart.
//!
//! [`Pipeline::decide`] makes the same checks, in the same order, whoever
//! asks: the stream entry is readable; its source is still configured, with
//! the provider that stored it; it verifies again at its recorded arrival
//! time (a body altered in Redis since is refused); it normalizes. Then each
//! notification settles on its own: published (in a dry run: would be),
//! duplicate, ignored, or failed with its own reason, so one conflicting item
//! of an Adyen batch does not hold back the others.
//!
//! A failure that may pass (Redis refused the publish, a verification key
//! could not be fetched) retries the whole arrival while a delivery has
//! attempts left: notifications already published are then duplicates.
//! Otherwise, and always for an operator's replay or redrive, it is a failure
//! like any other. Callers only act on the [`Decision`]: a processor
//! acknowledges, parks or dead-letters; a replay counts; a redrive keeps or
//! retires a letter.

use std::sync::Arc;

use chrono::Utc;

use crate::{
    config::Config,
    domain::{Arrival, ArrivalId, CloudEvent, Normalized, PaymentFacts, PaymentSucceededV1, SourceName, TraceContext},
    providers::{NormalizeError, Notification, Source, SourceTable, VerifyError},
    publish::{PublishError, Published, Publisher},
    store::{Announcement, ArrivalEntry, DeadLetter, DlqReason, Store, StoreError, Via},
    telemetry::{
        events::{Processed, ProcessingOutcome},
        metrics::SourceLabels,
        spans, Metrics,
    },
};

/// Whether deciding publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Publish what is new.
    Publish,
    /// Check everything a publish would, and publish nothing.
    DryRun,
}

/// Who asks, which decides what a failure that may pass does.
#[derive(Clone, Copy, Debug)]
pub(super) enum Attempt {
    /// Delivery `number` by the consumer group; `last` when no retry follows.
    Delivery {
        /// Deliveries so far, this one included.
        number: u32,
        /// Whether this delivery reached `max_attempts`.
        last: bool,
    },
    /// A replay or redrive (which one, for the payment's story): not a
    /// delivery, and never retried.
    Operator(Via),
}

impl Attempt {
    fn may_retry(self) -> bool {
        matches!(self, Self::Delivery { last: false, .. })
    }

    /// The delivery number for logs; 0 for an operator's run.
    fn number(self) -> u32 {
        match self {
            Self::Delivery { number, .. } => number,
            Self::Operator(_) => 0,
        }
    }

    /// What processed the arrival, as the payment's story says.
    fn via(self) -> Via {
        match self {
            Self::Delivery { .. } => Via::Live,
            Self::Operator(via) => via,
        }
    }
}

/// Why an arrival, or one notification of it, cannot become an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The machine word.
    pub reason: DlqReason,
    /// Human text; never payload contents.
    pub error: String,
}

/// What became of one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// A new event was published (in a dry run: would be).
    Published,
    /// The same payment was published before with the same facts.
    Duplicate,
    /// Not a payment success.
    Ignored,
    /// It cannot become an event.
    Failed(Failure),
}

/// What happens to an arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Each notification, in order, settled on its own. The arrival is done;
    /// each failed notification gets its own dead letter.
    Settled(Vec<Settled>),
    /// The arrival failed as a whole, before it had notifications: one dead
    /// letter without an item.
    Rejected(Failure),
    /// A failure that may pass, with attempts left: the whole arrival is
    /// tried again after its backoff. Never the decision for an operator.
    Retry,
}

impl Decision {
    /// The failures, each with the index of its notification (`None`: the
    /// arrival as a whole).
    pub(super) fn failures(&self) -> Vec<(Option<usize>, &Failure)> {
        match self {
            Self::Settled(items) => items
                .iter()
                .enumerate()
                .filter_map(|(index, settled)| match settled {
                    Settled::Failed(failure) => Some((Some(index), failure)),
                    _ => None,
                })
                .collect(),
            Self::Rejected(failure) => vec![(None, failure)],
            Self::Retry => Vec::new(),
        }
    }

    /// One dead letter per failure, for `arrival_id` of `source`.
    pub(super) fn dead_letters(
        &self,
        arrival_id: &ArrivalId,
        source: Option<&SourceName>,
        attempts: u32,
    ) -> Vec<DeadLetter> {
        let failed_at = Utc::now();
        let letter = |(item, failure): (Option<usize>, &Failure)| DeadLetter {
            arrival_id: arrival_id.clone(),
            source: source.cloned(),
            item,
            reason: failure.reason,
            error: failure.error.clone(),
            attempts,
            failed_at,
        };
        self.failures().into_iter().map(letter).collect()
    }

    /// How processing the arrival ended, for its span: dead-lettered when
    /// anything failed (an operator must look), else the best outcome.
    pub(super) fn outcome(&self) -> ProcessingOutcome {
        let items = match self {
            Self::Settled(items) => items,
            Self::Rejected(_) => return ProcessingOutcome::DeadLettered,
            Self::Retry => return ProcessingOutcome::Retry,
        };
        let any = |wanted: fn(&Settled) -> bool| items.iter().any(wanted);
        if any(|s| matches!(s, Settled::Failed(_))) {
            ProcessingOutcome::DeadLettered
        } else if any(|s| *s == Settled::Published) {
            ProcessingOutcome::Published
        } else if any(|s| *s == Settled::Duplicate) {
            ProcessingOutcome::Duplicate
        } else {
            ProcessingOutcome::Ignored
        }
    }
}

/// The shared path from a stored arrival to events: processors, replay,
/// redrive and the admin API each hold one. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub(super) store: Store,
    publisher: Publisher,
    sources: SourceTable,
    pub(super) metrics: Arc<Metrics>,
    /// `event_type_prefix` + `payment.succeeded.v1`.
    event_type: String,
}

impl Pipeline {
    /// The pipeline of `config` for `sources`, publishing through `store`'s connection.
    pub fn new(config: &Config, sources: &SourceTable, store: &Store, metrics: Arc<Metrics>) -> Self {
        let processing = &config.processing;
        Self {
            publisher: Publisher::new(store.clone(), config.redis.partitions, processing.idempotency_ttl_secs),
            store: store.clone(),
            sources: sources.clone(),
            metrics,
            event_type: format!("{}{}", processing.event_type_prefix, crate::domain::EVENT_TYPE),
        }
    }

    /// Loads the publish script into Redis.
    pub async fn load(&self) -> Result<(), StoreError> {
        self.publisher.load().await
    }

    /// The number of output partitions.
    pub fn partitions(&self) -> std::num::NonZeroU32 {
        self.publisher.partitions()
    }

    /// The configured sources.
    pub fn sources(&self) -> &SourceTable {
        &self.sources
    }

    /// Decides what happens to `entry`: the one function behind live
    /// processing, retries, replay and redrive.
    pub(super) async fn decide(&self, entry: &ArrivalEntry, mode: Mode, attempt: Attempt) -> Decision {
        let (arrival, source, notifications) = match self.admit(entry, attempt).await {
            Ok(admitted) => admitted,
            Err(decision) => return decision,
        };
        let mut settled = Vec::with_capacity(notifications.len());
        for notification in notifications {
            let notification = match notification {
                Ok(notification) => notification,
                Err(error) => {
                    settled
                        .push(Settled::Failed(Failure { reason: normalize_reason(&error), error: error.to_string() }));
                    continue;
                }
            };
            match self.settle(arrival, &source.payment_provider, notification, mode, attempt).await {
                Ok(outcome) => settled.push(outcome),
                Err(error) => match self.may_pass(arrival, attempt, DlqReason::PublishFailed, &error) {
                    Some(failure) => settled.push(Settled::Failed(failure)),
                    None => return Decision::Retry,
                },
            }
        }
        Decision::Settled(settled)
    }

    /// The checks on the arrival as a whole; it passes with its source and
    /// notifications, or the decision is already made.
    async fn admit<'a>(
        &'a self,
        entry: &'a ArrivalEntry,
        attempt: Attempt,
    ) -> Result<(&'a Arrival, &'a Source, Vec<Notification>), Decision> {
        let reject = |reason, error: String| Decision::Rejected(Failure { reason, error });
        let arrival = entry.arrival.as_ref().map_err(|field| {
            reject(DlqReason::MalformedArrival, format!("stream entry field {field} is missing or invalid"))
        })?;
        if let Attempt::Delivery { .. } = attempt {
            self.metrics.attempts.get_or_create(&SourceLabels { source: Some(arrival.source.clone()) }).inc();
        }
        let Some(source) = self.sources.get(arrival.source.as_str()) else {
            return Err(reject(DlqReason::UnknownSource, "the source is no longer configured".into()));
        };
        if source.provider_name != arrival.provider {
            let error = format!("stored for provider {}, source now uses {}", arrival.provider, source.provider_name);
            return Err(reject(DlqReason::ProviderMismatch, error));
        }
        // Live processing verifies again too, so every path makes the same
        // checks: no Redis round trip, and a fetch only for a key not cached.
        match source.reverify(&arrival.request).verdict().await {
            Ok(_) => {}
            Err(VerifyError::KeyUnavailable(error)) => {
                return Err(match self.may_pass(arrival, attempt, DlqReason::KeyUnavailable, &error) {
                    Some(failure) => Decision::Rejected(failure),
                    None => Decision::Retry,
                });
            }
            Err(VerifyError::Rejected(rejection)) => {
                let error = format!("the stored arrival does not verify: {rejection}");
                return Err(reject(DlqReason::InvalidSignature, error));
            }
        }
        let notifications =
            source.normalize(arrival).map_err(|error| reject(normalize_reason(&error), error.to_string()))?;
        Ok((arrival, source, notifications))
    }

    /// A failure that may pass: `None` (retry) while the delivery has
    /// attempts left, else a failure like any other.
    fn may_pass(
        &self,
        arrival: &Arrival,
        attempt: Attempt,
        reason: DlqReason,
        error: &(dyn std::error::Error + 'static),
    ) -> Option<Failure> {
        if !attempt.may_retry() {
            return Some(Failure { reason, error: error.to_string() });
        }
        Processed::Failed { reason, error }.emit(arrival, attempt.number(), &self.metrics);
        None
    }

    /// Settles one notification; an error is a failure that may pass.
    async fn settle(
        &self,
        arrival: &Arrival,
        provider: &str,
        notification: Normalized,
        mode: Mode,
        attempt: Attempt,
    ) -> Result<Settled, PublishError> {
        let facts = match notification {
            Normalized::Payment(facts) => facts,
            Normalized::Ignored { event_type } => {
                if mode == Mode::Publish {
                    let ignored = Processed::Ignored { provider_event_type: &event_type };
                    ignored.emit(arrival, attempt.number(), &self.metrics);
                }
                return Ok(Settled::Ignored);
            }
        };
        let published = match mode {
            Mode::Publish => Some(self.publish(arrival, provider, &facts, attempt).await?),
            Mode::DryRun => {
                self.publisher.check(&facts.idempotency_key(provider), &facts.fingerprint(provider)).await?
            }
        };
        Ok(match published {
            None | Some(Published::New { .. }) => Settled::Published,
            Some(Published::Duplicate { .. }) => Settled::Duplicate,
            Some(Published::Conflict { event_id }) => Settled::Failed(Failure {
                reason: DlqReason::IdempotencyConflict,
                error: format!(
                    "{} was published as event {event_id} with other amount, currency or livemode",
                    facts.idempotency_key(provider)
                ),
            }),
        })
    }

    /// Dedupes and publishes the event for `facts`, and says so.
    async fn publish(
        &self,
        arrival: &Arrival,
        provider: &str,
        facts: &PaymentFacts,
        attempt: Attempt,
    ) -> Result<Published, PublishError> {
        let key = facts.idempotency_key(provider);
        let event = self.event(arrival, provider, facts);
        let announcement = Announcement::of(arrival, facts, attempt.via());
        let published = match self.publisher.publish(&event, &key, &facts.fingerprint(provider), &announcement).await {
            Err(error) if !attempt.may_retry() => {
                // Best effort: Redis just refused the publish; the dead letter
                // itself is what counts.
                let recorded = self.publisher.record_dead_letter(&key, &announcement, "publish_failed").await;
                if let Err(e) = recorded {
                    tracing::warn!(arrival_id = %arrival.id, error = %e, "Dead letter not recorded in the payment's story.");
                }
                return Err(error);
            }
            other => other?,
        };
        let provider_event_id = facts.provider_event_id.as_deref();
        let said = match &published {
            Published::New { .. } => {
                let (event_id, event_type) = (event.id(), event.event_type());
                Some(Processed::Published { key: &key, event_id, event_type, provider_event_id })
            }
            Published::Duplicate { .. } => Some(Processed::Duplicate { key: &key, provider_event_id }),
            // Said as a dead letter, or counted by the replay.
            Published::Conflict { .. } => None,
        };
        if let Some(said) = said {
            said.emit(arrival, attempt.number(), &self.metrics);
        }
        Ok(published)
    }

    /// The event for `facts`, carrying the delivery's correlation and trace ids.
    fn event(&self, arrival: &Arrival, provider: &str, facts: &PaymentFacts) -> CloudEvent<PaymentSucceededV1> {
        // The event continues the delivery's trace (CloudEvents distributed
        // tracing extension) as the exported `process` span, or, with export
        // off, as a new span id: consumers continue it in turn.
        let stored = arrival.request.headers.get(spans::TRACEPARENT).and_then(TraceContext::parse);
        let trace = spans::continuation(stored).map(|t| t.to_string());
        let (source, correlation) = (&arrival.source, &arrival.request_id);
        CloudEvent::payment_succeeded(facts, source, provider, &self.event_type, correlation, trace.as_deref())
    }
}

/// The dead-letter reason of a normalization error.
fn normalize_reason(error: &NormalizeError) -> DlqReason {
    match error {
        NormalizeError::Unparseable(_) => DlqReason::UnparseablePayload,
        NormalizeError::Field { .. } => DlqReason::SchemaViolation,
        NormalizeError::Currency { .. } => DlqReason::UnsupportedCurrency,
        NormalizeError::Amount { .. } => DlqReason::InvalidAmount,
        NormalizeError::LivemodeMismatch { .. } => DlqReason::LivemodeMismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AmountError;

    #[test]
    fn normalization_errors_keep_their_documented_reason() {
        let errors = [
            NormalizeError::Unparseable(serde_json::from_str::<u8>("{").unwrap_err()),
            NormalizeError::field("amount", "is missing"),
            NormalizeError::Currency { field: "currency".into() },
            NormalizeError::Amount { field: "amount".into(), source: AmountError::Overflow },
            NormalizeError::LivemodeMismatch { field: "live".into(), configured: false },
        ];
        for error in &errors {
            assert_eq!(normalize_reason(error).as_str(), error.reason());
        }
    }

    fn failed(reason: DlqReason) -> Settled {
        Settled::Failed(Failure { reason, error: String::new() })
    }

    #[test]
    fn each_failed_notification_gets_its_own_letter() {
        let decision = Decision::Settled(vec![failed(DlqReason::IdempotencyConflict), Settled::Published]);
        let id = ArrivalId::parse("1700000000000-0").unwrap();
        let letters = decision.dead_letters(&id, None, 1);
        assert_eq!(letters.len(), 1);
        assert_eq!((letters[0].item, letters[0].reason), (Some(0), DlqReason::IdempotencyConflict));
        assert_eq!(decision.outcome(), ProcessingOutcome::DeadLettered);
        let rejected = Decision::Rejected(Failure { reason: DlqReason::UnknownSource, error: String::new() });
        assert_eq!(rejected.dead_letters(&id, None, 1)[0].item, None, "the arrival as a whole");
        assert!(Decision::Retry.dead_letters(&id, None, 1).is_empty());
    }

    #[test]
    fn an_arrival_without_failures_ends_with_its_best_outcome() {
        let outcome = |items: Vec<Settled>| Decision::Settled(items).outcome();
        assert_eq!(outcome(vec![Settled::Ignored, Settled::Published]), ProcessingOutcome::Published);
        assert_eq!(outcome(vec![Settled::Duplicate, Settled::Ignored]), ProcessingOutcome::Duplicate);
        assert_eq!(outcome(Vec::new()), ProcessingOutcome::Ignored);
        assert_eq!(Decision::Retry.outcome(), ProcessingOutcome::Retry);
    }
}
