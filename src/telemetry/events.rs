//! One type per observable event: `emit` logs it and counts it together, so
//! logs and metrics cannot drift apart. Fields are ids, names and machine
//! words only: never a body, a header value, a secret or personal data.

use std::time::Duration;

use tracing::{debug, info, warn};

use super::metrics::{
    ArrivalLabels, Metrics, Outcome, PublishedLabels, ReasonLabels, SecretIndex, SecretLabels, SourceLabels,
};
use crate::{
    domain::{Arrival, ArrivalId, IdempotencyKey, RequestId, SourceName, TraceContext},
    store::{DeadLetter, DlqReason},
};

/// A verified delivery was stored (or found stored) and answered 2xx.
pub struct ArrivalStored<'a> {
    /// Source.
    pub source: &'a SourceName,
    /// The new arrival.
    pub arrival_id: &'a ArrivalId,
    /// The delivery's request id.
    pub request_id: &'a RequestId,
    /// Which secret matched, by position.
    pub secret_index: usize,
    /// Time from request to answer.
    pub elapsed: Duration,
    /// An exact replay of a stored request: answered, not stored again.
    pub replayed: bool,
}

impl ArrivalStored<'_> {
    /// Logs and counts.
    pub fn emit(&self, metrics: &Metrics) {
        let outcome = if self.replayed { Outcome::Replayed } else { Outcome::Accepted };
        let message = if self.replayed { "Exact replay answered; not stored again." } else { "Arrival stored." };
        // At debug: a line per arrival costs ingest rate, the metrics count
        // arrivals, and the processing line carries the same ids.
        debug!(arrival_id = %self.arrival_id, source = %self.source, request_id = %self.request_id,
               secret_index = self.secret_index, outcome = outcome.as_str(), "{message}");
        let labels = ArrivalLabels { source: Some(self.source.clone()), outcome };
        metrics.arrivals.get_or_create(&labels).inc();
        metrics.ingest_seconds.observe(self.elapsed.as_secs_f64());
        let secret = SecretLabels { source: Some(self.source.clone()), secret_index: SecretIndex(self.secret_index) };
        metrics.secret_matches.get_or_create(&secret).inc();
    }
}

/// A delivery was refused (4xx) or could not be stored (503).
pub struct ArrivalRefused<'a> {
    /// Source, when the URL named a configured one.
    pub source: Option<&'a SourceName>,
    /// Why.
    pub outcome: Outcome,
    /// The delivery's request id.
    pub request_id: &'a RequestId,
    /// Time from request to answer.
    pub elapsed: Duration,
    /// The internal cause, for 503s.
    pub cause: Option<&'a dyn std::error::Error>,
}

impl ArrivalRefused<'_> {
    /// Logs and counts.
    pub fn emit(&self, metrics: &Metrics) {
        let source = self.source.map(SourceName::as_str).unwrap_or("");
        match self.cause {
            Some(error) => warn!(source, request_id = %self.request_id, outcome = self.outcome.as_str(),
                                 error = %error, "Arrival not stored; provider will retry."),
            None => info!(source, request_id = %self.request_id, outcome = self.outcome.as_str(), "Arrival refused."),
        }
        let labels = ArrivalLabels { source: self.source.cloned(), outcome: self.outcome };
        metrics.arrivals.get_or_create(&labels).inc();
        metrics.ingest_seconds.observe(self.elapsed.as_secs_f64());
    }
}

/// How processing an arrival (or one notification of it) ended: the
/// `outcome` of its log lines and of the `process` span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessingOutcome {
    /// A new event was published.
    Published,
    /// Already published with the same facts.
    Duplicate,
    /// Not a payment success.
    Ignored,
    /// Moved to the DLQ.
    DeadLettered,
    /// Failed for now; tried again after a backoff.
    Retry,
}

impl ProcessingOutcome {
    /// The machine word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::DeadLettered => "dead_lettered",
            Self::Retry => "retry",
        }
    }
}

/// A refused request's forensic record was not written: too many records
/// were already waiting for Redis, or Redis failed or was too slow. The
/// refusal itself was answered and counted.
pub struct RejectionUnrecorded<'a> {
    /// Source.
    pub source: &'a SourceName,
    /// Why it failed; none when it was dropped for lack of room.
    pub cause: Option<&'a dyn std::error::Error>,
}

impl RejectionUnrecorded<'_> {
    /// Logs (at debug: a flood of forgeries must not flood the log) and counts.
    pub fn emit(&self, metrics: &Metrics) {
        match self.cause {
            Some(error) => debug!(source = %self.source, error = %error, "Rejection not recorded."),
            None => debug!(source = %self.source, "Rejection not recorded; too many records in flight."),
        }
        metrics.rejections_unrecorded.inc();
    }
}

/// What processing did with one notification.
pub enum Processed<'a> {
    /// A new event was published.
    Published {
        /// Its idempotency key.
        key: &'a IdempotencyKey,
        /// Event id.
        event_id: &'a str,
        /// Event type.
        event_type: &'a str,
        /// Provider's event id.
        provider_event_id: Option<&'a str>,
    },
    /// Already published with the same facts.
    Duplicate {
        /// Its idempotency key.
        key: &'a IdempotencyKey,
        /// Provider's event id.
        provider_event_id: Option<&'a str>,
    },
    /// Not a payment success.
    Ignored {
        /// Provider's event type.
        provider_event_type: &'a str,
    },
    /// Failed for now; left pending for a retry.
    Failed {
        /// What it becomes if it keeps failing.
        reason: DlqReason,
        /// The cause.
        error: &'a dyn std::error::Error,
    },
}

impl Processed<'_> {
    /// Logs and counts, with the arrival's ids and its delivery `attempt`
    /// (0 for a replay or redrive, which are not deliveries).
    pub fn emit(&self, arrival: &Arrival, attempt: u32, metrics: &Metrics) {
        let source = Some(arrival.source.clone());
        let (id, src, req) = (&arrival.id, &arrival.source, &arrival.request_id);
        let trace_id = arrival.request.headers.get("traceparent").and_then(TraceContext::parse).map(|t| t.trace_id());
        let trace_id = trace_id.as_deref().unwrap_or_default();
        let _arrival = tracing::info_span!("arrival", trace_id, attempt).entered();
        match self {
            Self::Published { key, event_id, event_type, provider_event_id } => {
                info!(arrival_id = %id, source = %src, request_id = %req, idempotency_key = %key, event_id,
                      event_type, provider_event_id, outcome = ProcessingOutcome::Published.as_str(), "Event published.");
                let labels = PublishedLabels { source, r#type: (*event_type).to_owned() };
                metrics.published.get_or_create(&labels).inc();
                let latency = chrono::Utc::now() - arrival.request.received_at;
                metrics.end_to_end_seconds.observe(latency.as_seconds_f64().max(0.0));
            }
            Self::Duplicate { key, provider_event_id } => {
                info!(arrival_id = %id, source = %src, request_id = %req, idempotency_key = %key,
                      provider_event_id, outcome = ProcessingOutcome::Duplicate.as_str(), "Duplicate suppressed.");
                metrics.duplicates.get_or_create(&SourceLabels { source }).inc();
            }
            Self::Ignored { provider_event_type } => {
                debug!(arrival_id = %id, source = %src, request_id = %req, provider_event_type,
                       outcome = ProcessingOutcome::Ignored.as_str(), "Notification ignored: not a payment success.");
                metrics.ignored.get_or_create(&SourceLabels { source }).inc();
            }
            Self::Failed { reason, error } => {
                warn!(arrival_id = %id, source = %src, request_id = %req, reason = reason.as_str(), error = %error,
                      outcome = ProcessingOutcome::Retry.as_str(), "Processing failed; will retry.");
                metrics.processing_errors.get_or_create(&ReasonLabels { source, reason: reason.as_str() }).inc();
            }
        }
    }
}

/// An arrival, or one notification of it, moved to the DLQ.
pub struct DeadLettered<'a> {
    /// The letter.
    pub letter: &'a DeadLetter,
}

impl DeadLettered<'_> {
    /// Logs (as an error: an operator must act) and counts.
    pub fn emit(&self, metrics: &Metrics) {
        let letter = self.letter;
        let source = letter.source.as_ref().map(SourceName::as_str).unwrap_or("");
        let reason = letter.reason.as_str();
        tracing::error!(arrival_id = %letter.arrival_id, source, item = letter.item, reason, error = %letter.error,
                        attempts = letter.attempts, outcome = ProcessingOutcome::DeadLettered.as_str(),
                        "Arrival dead-lettered.");
        if letter.reason == DlqReason::IdempotencyConflict {
            metrics.conflicts.get_or_create(&SourceLabels { source: letter.source.clone() }).inc();
        }
        let labels = ReasonLabels { source: letter.source.clone(), reason };
        metrics.dead_lettered.get_or_create(&labels).inc();
    }
}

/// A pending arrival was found deleted from the stream before any processor
/// acknowledged it: a delivery answered 2xx that can never be processed.
pub struct ArrivalLost<'a> {
    /// The arrival (its entry is gone, so there is nothing more to tell).
    pub arrival_id: &'a ArrivalId,
}

impl ArrivalLost<'_> {
    /// Logs (as an error: data loss) and counts.
    pub fn emit(&self, metrics: &Metrics) {
        tracing::error!(arrival_id = %self.arrival_id, outcome = "lost",
                        "Arrival lost: deleted from the stream before it was acknowledged.");
        metrics.arrivals_lost.inc();
    }
}
