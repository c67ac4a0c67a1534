//! The spans that mean something: `ingress` (one webhook request) and
//! `process` (one arrival in a processor).
//!
//! They are ordinary `tracing` spans, so logs show them. When export is on
//! (see [`super::otlp`]) each also becomes an OpenTelemetry span whose parent
//! is the delivery's W3C `traceparent`, and the event carries the `process`
//! span's own context, so the trace runs provider → ingress → processing →
//! consumer. With export off, none of the OpenTelemetry work below runs.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::{field::Empty, info_span, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::otlp;
use crate::{
    domain::{RequestId, SourceName, TraceContext},
    store::ArrivalEntry,
};

/// The W3C trace context header, as the ingress keeps it with an arrival.
pub const TRACEPARENT: &str = "traceparent";

/// The span of one webhook request, continuing the delivery's `traceparent`.
/// `source` is `None` for a name no source has (never echoed from the URL).
pub fn ingress(source: Option<&SourceName>, request_id: &RequestId, traceparent: Option<&str>) -> Span {
    let source = source.map(SourceName::as_str).unwrap_or("");
    let span = info_span!("ingress", source, request_id = %request_id, arrival_id = Empty, outcome = Empty);
    continue_trace(&span, traceparent);
    span
}

/// The span of processing one arrival, continuing its stored `traceparent`.
pub fn process(entry: &ArrivalEntry) -> Span {
    let arrival = entry.arrival.as_ref().ok();
    let source = arrival.map(|a| a.source.as_str()).unwrap_or("");
    let request_id = arrival.map(|a| a.request_id.as_str()).unwrap_or("");
    let span = info_span!("process", arrival_id = %entry.id, source, request_id, outcome = Empty);
    continue_trace(&span, arrival.and_then(|a| a.request.headers.get(TRACEPARENT)));
    span
}

/// Records how `span` ended (a machine word) and, when known, the arrival.
pub fn finish(span: &Span, outcome: &'static str, arrival_id: Option<&str>) {
    span.record("outcome", outcome);
    if let Some(id) = arrival_id {
        span.record("arrival_id", id);
    }
}

/// The `traceparent` for the step that continues `stored` here: the current
/// span's own context when it is exported and belongs to that trace (so a
/// consumer continues exactly the exported span); otherwise a new span id in
/// `stored`'s trace. `None` only when there is neither.
pub fn continuation(stored: Option<TraceContext>) -> Option<TraceContext> {
    let own = current().filter(|own| stored.is_none_or(|stored| own.same_trace(&stored)));
    own.or_else(|| stored.map(TraceContext::child))
}

/// Makes `traceparent` the OpenTelemetry parent of `span`, which must not have
/// been entered yet (the parent of a started span is fixed).
fn continue_trace(span: &Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent.filter(|_| otlp::is_on()) else {
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    if let Err(error) = span.set_parent(TraceContextPropagator::new().extract(&carrier)) {
        tracing::debug!(error = %error, "Span not linked to the delivery's trace.");
    }
}

/// The current span's own OpenTelemetry context, when spans are exported.
fn current() -> Option<TraceContext> {
    if !otlp::is_on() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&Span::current().context(), &mut carrier);
    carrier.get(TRACEPARENT).and_then(|value| TraceContext::parse(value))
}
