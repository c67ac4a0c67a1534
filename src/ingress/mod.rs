//! The provider-facing listener: `POST /webhooks/{source}`, `/healthz`, `/readyz`.
//!
//! The ingress looks up the source, reads the body under `max_body_bytes`,
//! verifies the signature, stores the raw arrival and answers. It never
//! parses the business payload: everything after storing is the processors'
//! job, so a provider gets its answer as soon as the arrival is durable, and
//! a payload payhook cannot understand is still kept (and dead-lettered later)
//! rather than lost.
//!
//! Touches: `{p}:arrivals` (append), `{p}:seen:…` (the exact-replay guard),
//! `{p}:rejected` (append, capped, in the background).

mod error;
mod handler;
mod rate_limit;
mod rejections;

use std::{sync::Arc, time::Duration};

use axum::{
    error_handling::HandleErrorLayer,
    extract::{FromRef, Request},
    http::HeaderValue,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    BoxError, Router,
};
use tower::ServiceBuilder;

pub use error::IngressError;
pub use rate_limit::RateLimits;
pub use rejections::RejectionRecorder;

use crate::{
    admin::health,
    domain::RequestId,
    providers::SourceTable,
    store::Store,
    telemetry::{
        metrics::{ArrivalLabels, Outcome},
        Metrics,
    },
};

/// Limits of the provider-facing listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Reading and storing must finish within this, else 408 / 503.
    pub request_timeout: Duration,
    /// Webhook requests handled at once.
    pub max_concurrent: usize,
}

/// What the ingress handlers share: cheap handles only.
#[derive(Clone, Debug)]
pub struct IngressState {
    /// Configured sources.
    pub sources: SourceTable,
    /// The durable log.
    pub store: Store,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Limits.
    pub limits: Limits,
    /// Per-source rate limits.
    pub rate_limits: Arc<RateLimits>,
    /// Writes the forensic records of refusals off the request path.
    pub rejections: RejectionRecorder,
}

impl FromRef<IngressState> for Store {
    fn from_ref(state: &IngressState) -> Store {
        state.store.clone()
    }
}

/// The provider-facing router. Webhook requests beyond
/// `max_concurrent_requests` are shed at once with 503 and `Retry-After`
/// (the provider retries) instead of queueing until they time out; health
/// checks are never shed.
pub fn router(state: IngressState) -> Router {
    let metrics = state.metrics.clone();
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |_: BoxError| {
            let metrics = metrics.clone();
            async move {
                metrics.arrivals.get_or_create(&ArrivalLabels { source: None, outcome: Outcome::Overloaded }).inc();
                IngressError::Overloaded.into_response()
            }
        }))
        .load_shed()
        .concurrency_limit(state.limits.max_concurrent);
    Router::new()
        .route("/webhooks/{source}", post(handler::receive).route_layer(shed))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// The header carrying the request id in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// Takes the caller's `x-request-id` (if it is a sane one) or makes one, hands
/// it to the handler, and echoes it on every response, errors included.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| RequestId::parse(v).ok())
        .unwrap_or_else(RequestId::generate);
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    let value = HeaderValue::from_str(id.as_str()).expect("request ids are visible ASCII");
    response.headers_mut().insert(REQUEST_ID, value);
    response
}
