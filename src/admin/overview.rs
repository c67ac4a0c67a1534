//! `GET /admin/overview`: what the console's first view shows, in one quick
//! answer: stream totals (the page turns two readings into rates, so this
//! never waits), backlog, DLQ size, the durability verdict, and per source
//! the accepted and refused requests and what processing made of them.
//!
//! The per-source counts are this gateway's own counters since it started
//! (the metrics registry, read back from its exposition, so they are exactly
//! what Prometheus scrapes); the totals and backlog are Redis's, shared by
//! every gateway.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use super::AdminState;
use crate::store::StoreError;

/// One source's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SourceCounts {
    /// Its provider (`""` for requests to unknown sources).
    pub provider: String,
    /// Requests verified and stored.
    pub accepted: f64,
    /// Exact replays answered 200 without storing.
    pub replayed: f64,
    /// Requests refused, by reason (the contract's error codes).
    pub refused: BTreeMap<String, f64>,
    /// Events published.
    pub published: f64,
    /// Duplicates suppressed.
    pub duplicates: f64,
    /// Notifications that were not a payment success.
    pub ignored: f64,
    /// Arrivals dead-lettered, by reason.
    pub dead_lettered: BTreeMap<String, f64>,
}

/// The overview.
pub async fn overview(State(state): State<AdminState>) -> Response {
    let partitions = state.pipeline.partitions();
    let reading = async { Ok::<_, StoreError>((state.store.totals(partitions).await?, state.store.stats().await?)) };
    let (totals, backlog) = match reading.await {
        Ok(reading) => reading,
        Err(e) => {
            tracing::warn!(error = %e, "Admin request failed: Redis unavailable.");
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "unavailable" }))).into_response();
        }
    };
    // `CONFIG` may be disabled (managed Redis): the verdict is then unknown.
    let durability = state.store.durability().await.ok();
    let mut sources = per_source(&state.metrics.render());
    for source in state.pipeline.sources().iter() {
        sources.entry(source.name.as_str().to_owned()).or_default().provider = source.provider_name.to_owned();
    }
    Json(json!({
        "now_ms": Utc::now().timestamp_millis(),
        "totals": totals,
        "backlog": backlog,
        "durability": durability,
        "sources": sources,
    }))
    .into_response()
}

/// The per-source counters in a Prometheus text exposition.
fn per_source(exposition: &str) -> BTreeMap<String, SourceCounts> {
    let mut sources: BTreeMap<String, SourceCounts> = BTreeMap::new();
    for (name, labels, value) in exposition.lines().filter_map(sample) {
        let label = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned());
        let Some(source) = label("source") else { continue };
        let counts = sources.entry(source).or_default();
        match (name, label("outcome"), label("reason")) {
            ("payhook_arrivals_total", Some(outcome), _) if outcome == "accepted" => counts.accepted += value,
            ("payhook_arrivals_total", Some(outcome), _) if outcome == "replayed" => counts.replayed += value,
            ("payhook_arrivals_total", Some(outcome), _) => *counts.refused.entry(outcome).or_default() += value,
            ("payhook_events_published_total", _, _) => counts.published += value,
            ("payhook_duplicates_total", _, _) => counts.duplicates += value,
            ("payhook_ignored_total", _, _) => counts.ignored += value,
            ("payhook_dead_lettered_total", _, Some(reason)) => {
                *counts.dead_lettered.entry(reason).or_default() += value
            }
            _ => {}
        }
    }
    sources
}

/// A sample's metric name, labels and value.
type Sample<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// `name{k="v",…} value` → its parts. Label values here are source names
/// and machine words, which hold no quote or comma.
fn sample(line: &str) -> Option<Sample<'_>> {
    let (name, rest) = line.split_once('{')?;
    let (labels, value) = rest.split_once("} ")?;
    let labels =
        labels.split(',').filter_map(|pair| pair.split_once('=').map(|(k, v)| (k, v.trim_matches('"')))).collect();
    Some((name, labels, value.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_per_source_and_reason() {
        let text = "\
# TYPE payhook_arrivals counter
payhook_arrivals_total{source=\"stripe\",outcome=\"accepted\"} 3
payhook_arrivals_total{source=\"stripe\",outcome=\"invalid_signature\"} 2
payhook_arrivals_total{source=\"\",outcome=\"unknown_source\"} 1
payhook_events_published_total{source=\"stripe\",type=\"payment.succeeded.v1\"} 2
payhook_dead_lettered_total{source=\"stripe\",reason=\"schema_violation\"} 1
payhook_ingest_duration_seconds_bucket{le=\"0.5\"} 9
payhook_replays_total 4
";
        let sources = per_source(text);
        let stripe = &sources["stripe"];
        assert_eq!((stripe.accepted, stripe.published), (3.0, 2.0));
        assert_eq!(stripe.refused["invalid_signature"], 2.0);
        assert_eq!(stripe.dead_lettered["schema_violation"], 1.0);
        assert_eq!(sources[""].refused["unknown_source"], 1.0);
        assert_eq!(sources.len(), 2);
    }
}
