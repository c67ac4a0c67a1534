//! The provider-facing listener: `POST /webhooks/{source}`, `/healthz`, `/readyz`.
//!
//! The ingress looks up the source, reads the body under `max_body_bytes`,
//! verifies the signature, stores the raw arrival and answers. It never
//! parses the business payload: everything after storing is the processors'
//! job, so a provider gets its answer as soon as the arrival is durable, and
//! a payload payhook cannot understand is still kept (and dead-lettered later)
//! rather than lost.
//!
//! Touches: `{p}:arrivals` (append), `{p}:rejected` (append, capped).

mod error;
mod handler;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, Request},
    http::HeaderValue,
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
    Router,
};

pub use error::IngressError;

use crate::{admin::health, domain::RequestId, providers::SourceTable, store::Store, telemetry::Metrics};

/// Limits of the provider-facing listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Reading and storing must finish within this, else 408 / 503.
    pub request_timeout: Duration,
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
}

impl FromRef<IngressState> for Store {
    fn from_ref(state: &IngressState) -> Store {
        state.store.clone()
    }
}

/// The provider-facing router.
pub fn router(state: IngressState) -> Router {
    Router::new()
        .route("/webhooks/{source}", post(handler::receive))
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
