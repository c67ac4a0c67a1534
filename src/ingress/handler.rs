//! `POST /webhooks/{source}`: look up → read → verify → store → answer.

use std::{future::Future, net::SocketAddr};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{header::CONTENT_LENGTH, HeaderMap},
    response::{IntoResponse, Response},
    Extension, Json,
};
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tokio::time::{timeout_at, Instant};
use tracing::{Instrument, Span};

use super::{rejections::Refusal, IngressError, IngressState};
use crate::{
    domain::{ArrivalId, RequestId, TraceContext, WebhookRequest},
    providers::{self, Rejection, SignatureMatch, Source, VerifiedArrival},
    store::{Appended, StoreError},
    telemetry::{
        events::{ArrivalRefused, ArrivalStored},
        metrics::Outcome,
        spans::{self, TRACEPARENT},
    },
};

/// The path prefix of `POST /webhooks/{source}`.
const WEBHOOKS: &str = "/webhooks/";

/// The response header naming the stored arrival.
pub const ARRIVAL_ID: &str = "x-payhook-arrival-id";

/// Handles one webhook delivery, in an `ingress` span continuing the
/// delivery's trace.
pub async fn receive(
    State(state): State<IngressState>,
    Extension(request_id): Extension<RequestId>,
    request: Request,
) -> Response {
    // The source segment is borrowed from the URI rather than extracted into
    // a `String`: the lookup needs no allocation.
    let segment = request.uri().path().strip_prefix(WEBHOOKS).unwrap_or_default();
    let source = state.sources.get(segment);
    let traceparent = request.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok());
    let span = spans::ingress(source.map(|s| &s.name), &request_id, traceparent);
    respond(&state, source, &request_id, request).instrument(span).await
}

/// Accepts or refuses the delivery, then logs, counts and answers.
async fn respond(state: &IngressState, source: Option<&Source>, request_id: &RequestId, request: Request) -> Response {
    let started = Instant::now();
    // Kept as an address: it is written out only for a refusal's record.
    let remote_addr = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    match accept(state, source, request_id, request, started).await {
        Ok(Accepted { arrival_id, matched, replayed }) => {
            let name = &source.expect("only a known source can be accepted").name;
            let outcome = if replayed { Outcome::Replayed } else { Outcome::Accepted };
            spans::finish(&Span::current(), outcome.as_str(), Some(arrival_id.as_str()));
            let (elapsed, secret_index) = (started.elapsed(), matched.secret_index);
            ArrivalStored { source: name, arrival_id: &arrival_id, request_id, secret_index, elapsed, replayed }
                .emit(&state.metrics);
            accepted(&arrival_id, source.and_then(Source::success_body))
        }
        Err((error, body_len)) => {
            spans::finish(&Span::current(), error.outcome().as_str(), None);
            let unavailable = matches!(error, IngressError::Unavailable(_) | IngressError::KeyUnavailable(_));
            let cause = unavailable.then_some(&error as &dyn std::error::Error);
            ArrivalRefused {
                source: source.map(|s| &s.name),
                outcome: error.outcome(),
                request_id,
                elapsed: started.elapsed(),
                cause,
            }
            .emit(&state.metrics);
            if let (IngressError::Rejected(rejection), Some(source)) = (&error, source) {
                let refusal = Refusal { source: source.name.clone(), reason: rejection.code(), remote_addr, body_len };
                state.rejections.record(&state.store, &state.metrics, refusal, state.limits.request_timeout);
            }
            error.into_response()
        }
    }
}

/// A delivery answered 2xx.
struct Accepted {
    arrival_id: ArrivalId,
    matched: SignatureMatch,
    /// An exact replay of a stored request: answered, not stored again.
    replayed: bool,
}

/// The steps that can fail, in order. On failure, also the body length read
/// so far (for the forensic record).
async fn accept(
    state: &IngressState,
    source: Option<&Source>,
    request_id: &RequestId,
    request: Request,
    started: Instant,
) -> Result<Accepted, (IngressError, usize)> {
    let deadline = started + state.limits.request_timeout;
    let source = source.ok_or((IngressError::UnknownSource, 0))?;
    if !state.rate_limits.admit(&source.name) {
        return Err((IngressError::RateLimited, 0));
    }
    let request = read_request(state, source, request, deadline).await.map_err(|e| (e, 0))?;
    let body_len = request.body.len();
    let verified = providers::verify(source, request, request_id.clone(), deadline).await;
    let verified = verified.map_err(|e| (e.into(), body_len))?;
    store_once(state, &verified, deadline).await.map_err(|e| (e, body_len))
}

/// The body (bounded) and the headers the source keeps, with a trace context.
async fn read_request(
    state: &IngressState,
    source: &Source,
    request: Request,
    deadline: Instant,
) -> Result<WebhookRequest, IngressError> {
    let received_at = Utc::now();
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body, state.limits.max_body_bytes, deadline).await?;
    let mut headers = source.keep_headers(&parts.headers);
    if headers.get(TRACEPARENT).and_then(TraceContext::parse).is_none() {
        // A delivery without a trace starts one, so its event can be followed:
        // the exported `ingress` span's own when export is on, else a new one.
        let started = spans::continuation(None).unwrap_or_else(TraceContext::generate);
        headers.set(TRACEPARENT, &started.to_string());
    }
    Ok(WebhookRequest { headers, body, received_at })
}

/// Stores the arrival, unless it is an exact replay of a delivery stored
/// while a copy of it could still verify (then that arrival is the answer).
/// Another body under a delivery already stored is refused: only where a
/// checksum, not the signature, covers the body can it get here (PayPal).
async fn store_once(
    state: &IngressState,
    verified: &VerifiedArrival,
    deadline: Instant,
) -> Result<Accepted, IngressError> {
    let matched = verified.matched();
    match within(deadline, state.store.append(verified)).await? {
        Appended::Stored(arrival_id) => Ok(Accepted { arrival_id, matched, replayed: false }),
        Appended::Replayed(arrival_id) => Ok(Accepted { arrival_id, matched, replayed: true }),
        Appended::Conflict => Err(Rejection::InvalidSignature.into()),
    }
}

/// A Redis call under the request deadline; failing or late: 503.
async fn within<T>(deadline: Instant, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, IngressError> {
    match timeout_at(deadline, call).await {
        Ok(result) => result.map_err(IngressError::Unavailable),
        Err(_) => Err(IngressError::Unavailable(StoreError::Timeout)),
    }
}

/// Reads the whole body, refusing it as soon as it passes `limit` (a declared
/// `Content-Length` over the limit is refused before reading anything).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize, deadline: Instant) -> Result<Bytes, IngressError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(IngressError::BodyTooLarge);
    }
    match timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(IngressError::RequestTimeout),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(IngressError::BodyTooLarge),
        Ok(Err(e)) => Err(IngressError::BadBody(e)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// 200 with payhook's JSON, or with the body the provider requires.
fn accepted(arrival_id: &ArrivalId, provider_body: Option<&'static str>) -> Response {
    let mut response = match provider_body {
        Some(body) => body.into_response(),
        None => Json(json!({ "status": "accepted", "arrival_id": arrival_id.as_str() })).into_response(),
    };
    let value = arrival_id.as_str().parse().expect("arrival ids are ASCII digits, '-' and '@'");
    response.headers_mut().insert(ARRIVAL_ID, value);
    response
}
