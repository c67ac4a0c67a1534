//! The operator listener: `/metrics` (Prometheus text), `/healthz`, `/readyz`.
//!
//! It is a separate listener so that it can be bound to a private interface
//! while the webhook listener faces the internet, and so that a flood of
//! webhooks cannot starve a scrape. The bearer-protected `/admin/*` API of
//! the contract is not served yet.

pub mod health;

use std::sync::Arc;

use axum::{
    extract::{FromRef, State},
    http::header::CONTENT_TYPE,
    response::IntoResponse,
    routing::get,
    Router,
};

use crate::{store::Store, telemetry::Metrics};

/// What the admin handlers share.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The durable log (for readiness).
    pub store: Store,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
}

impl FromRef<AdminState> for Store {
    fn from_ref(state: &AdminState) -> Store {
        state.store.clone()
    }
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .with_state(state)
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
}
