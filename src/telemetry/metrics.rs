//! Prometheus metrics, through the `prometheus-client` crate.
//!
//! Each gateway (and each test app) owns its own [`Registry`], so nothing is
//! global. Label values are enums or configured source names: never ids, so
//! the number of series stays bounded whatever the traffic. Requests to an
//! unknown source are counted with `source=""`.

use std::fmt;

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use crate::domain::SourceName;

/// What happened to a request on `POST /webhooks/{source}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Verified and stored.
    Accepted,
    /// An exact replay of a stored signed delivery: answered 200, not stored.
    Replayed,
    /// Refused: no signature header.
    MissingSignature,
    /// Refused: signature does not match.
    InvalidSignature,
    /// Refused: signed time outside tolerance.
    TimestampOutOfTolerance,
    /// Refused: no such source.
    UnknownSource,
    /// Refused: body over the limit.
    BodyTooLarge,
    /// The body did not arrive before the deadline.
    RequestTimeout,
    /// The connection broke while the body was read.
    BadRequest,
    /// Redis could not store it (503).
    Unavailable,
    /// Shed: too many requests at once (503).
    Overloaded,
    /// The source's rate limit was exhausted (429).
    RateLimited,
}

impl Outcome {
    /// The label value (and, for refusals, the contract's error code).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Replayed => "replayed",
            Self::MissingSignature => "missing_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Self::UnknownSource => "unknown_source",
            Self::BodyTooLarge => "body_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::BadRequest => "bad_request",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// `{source, outcome}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ArrivalLabels {
    /// Configured source, or none for an unknown one.
    pub source: Option<SourceName>,
    /// What happened.
    pub outcome: Outcome,
}

/// `{source}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabels {
    /// Configured source (none when an arrival names no known source).
    pub source: Option<SourceName>,
}

/// `{source, type}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PublishedLabels {
    /// Configured source.
    pub source: Option<SourceName>,
    /// Event type (one per configured prefix: bounded).
    pub r#type: String,
}

/// `{source, reason}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Configured source.
    pub source: Option<SourceName>,
    /// Machine word from a fixed set.
    pub reason: &'static str,
}

/// `{source, secret_index}`: which configured secret verified a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SecretLabels {
    /// Configured source.
    pub source: Option<SourceName>,
    /// Position in the source's secrets (bounded by config).
    pub secret_index: SecretIndex,
}

/// A secret's position, as a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SecretIndex(pub usize);

impl EncodeLabelValue for SecretIndex {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_fmt(encoder, format_args!("{}", self.0))
    }
}

/// Every metric payhook exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `payhook_arrivals_total{source,outcome}`.
    pub arrivals: Family<ArrivalLabels, Counter>,
    /// `payhook_ingest_duration_seconds`: request received → answered.
    pub ingest_seconds: Histogram,
    /// `payhook_events_published_total{source,type}`.
    pub published: Family<PublishedLabels, Counter>,
    /// `payhook_duplicates_total{source}`.
    pub duplicates: Family<SourceLabels, Counter>,
    /// `payhook_idempotency_conflicts_total{source}`.
    pub conflicts: Family<SourceLabels, Counter>,
    /// `payhook_ignored_total{source}`: acknowledged notifications that are not a payment success.
    pub ignored: Family<SourceLabels, Counter>,
    /// `payhook_dead_lettered_total{source,reason}`.
    pub dead_lettered: Family<ReasonLabels, Counter>,
    /// `payhook_processing_errors_total{source,reason}`: failures left for retry.
    pub processing_errors: Family<ReasonLabels, Counter>,
    /// `payhook_replays_total`: replays run (CLI or admin API).
    pub replays: Counter,
    /// `payhook_processing_attempts_total{source}`: arrivals taken up by a processor.
    pub attempts: Family<SourceLabels, Counter>,
    /// `payhook_end_to_end_seconds`: arrival received → its event published.
    pub end_to_end_seconds: Histogram,
    /// `payhook_secret_matches_total{source,secret_index}`: which secret verified.
    pub secret_matches: Family<SecretLabels, Counter>,
    /// `payhook_backlog_pending`: arrivals delivered and not yet acknowledged.
    pub backlog_pending: Gauge,
    /// `payhook_backlog_lag`: arrivals not yet delivered to a processor.
    pub backlog_lag: Gauge,
    /// `payhook_backlog_oldest_age_seconds`: age of the oldest unacknowledged
    /// arrival, pending or not yet delivered.
    pub backlog_oldest_age: Gauge,
    /// `payhook_dlq_size`: dead letters.
    pub dlq_size: Gauge,
    /// `payhook_arrivals_lost_total`: pending arrivals found deleted from the
    /// stream before they were acknowledged.
    pub arrivals_lost: Counter,
    /// `payhook_rejections_unrecorded_total`: refusals whose forensic record
    /// was dropped (too many in flight) or failed.
    pub rejections_unrecorded: Counter,
}

impl Metrics {
    /// A fresh registry with every metric registered at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("payhook");
        let metrics = Self {
            arrivals: Family::default(),
            ingest_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            published: Family::default(),
            duplicates: Family::default(),
            conflicts: Family::default(),
            ignored: Family::default(),
            dead_lettered: Family::default(),
            processing_errors: Family::default(),
            replays: Counter::default(),
            attempts: Family::default(),
            end_to_end_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            secret_matches: Family::default(),
            backlog_pending: Gauge::default(),
            backlog_lag: Gauge::default(),
            backlog_oldest_age: Gauge::default(),
            dlq_size: Gauge::default(),
            arrivals_lost: Counter::default(),
            rejections_unrecorded: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("arrivals", "Webhook requests by source and outcome", metrics.arrivals.clone());
        registry.register("ingest_duration_seconds", "Time from request to answer", metrics.ingest_seconds.clone());
        registry.register("events_published", "Events published by source and type", metrics.published.clone());
        registry.register("duplicates", "Payments announced again and not republished", metrics.duplicates.clone());
        registry.register(
            "idempotency_conflicts",
            "Same payment announced with different facts",
            metrics.conflicts.clone(),
        );
        registry.register("ignored", "Notifications that are not a payment success", metrics.ignored.clone());
        registry.register("dead_lettered", "Arrivals moved to the DLQ by reason", metrics.dead_lettered.clone());
        registry.register("processing_errors", "Processing failures left for retry", metrics.processing_errors.clone());
        registry.register("replays", "Replays of stored arrivals", metrics.replays.clone());
        registry.register("processing_attempts", "Arrivals taken up by a processor", metrics.attempts.clone());
        registry.register(
            "end_to_end_seconds",
            "Arrival received to event published",
            metrics.end_to_end_seconds.clone(),
        );
        registry.register(
            "secret_matches",
            "Verified requests by matching secret position",
            metrics.secret_matches.clone(),
        );
        registry.register(
            "backlog_pending",
            "Arrivals delivered, not yet acknowledged",
            metrics.backlog_pending.clone(),
        );
        registry.register("backlog_lag", "Arrivals not yet delivered to a processor", metrics.backlog_lag.clone());
        registry.register(
            "backlog_oldest_age_seconds",
            "Age of the oldest unacknowledged arrival, pending or not yet delivered",
            metrics.backlog_oldest_age.clone(),
        );
        registry.register("dlq_size", "Dead letters", metrics.dlq_size.clone());
        registry.register(
            "arrivals_lost",
            "Pending arrivals deleted from the stream before they were acknowledged",
            metrics.arrivals_lost.clone(),
        );
        registry.register(
            "rejections_unrecorded",
            "Refused requests whose forensic record was dropped or failed",
            metrics.rejections_unrecorded.clone(),
        );
        Self { registry, ..metrics }
    }

    /// Creates the per-source series at zero, so dashboards and alerts see a
    /// 0 rather than no data before the first event of a source.
    pub fn init_source(&self, source: &SourceName, event_type: &str) {
        let source = Some(source.clone());
        self.arrivals.get_or_create(&ArrivalLabels { source: source.clone(), outcome: Outcome::Accepted }).inc_by(0);
        self.published
            .get_or_create(&PublishedLabels { source: source.clone(), r#type: event_type.to_owned() })
            .inc_by(0);
        for family in [&self.duplicates, &self.conflicts, &self.ignored] {
            family.get_or_create(&SourceLabels { source: source.clone() }).inc_by(0);
        }
    }

    /// Sets the backlog gauges from a fresh reading.
    pub fn set_backlog(&self, stats: &crate::store::Stats) {
        let as_gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.backlog_pending.set(as_gauge(stats.pending));
        self.backlog_lag.set(as_gauge(stats.lag));
        self.backlog_oldest_age.set(as_gauge(stats.oldest_pending_age_secs));
        self.dlq_size.set(as_gauge(stats.dlq));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
