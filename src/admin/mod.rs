//! The operator listener: `/metrics` (Prometheus text), `/healthz`,
//! `/readyz`, the bearer-protected `/admin/*` API, and `/console`, the web
//! page that drives it. Every answer carries strict security headers
//! (`console::security_headers`).
//!
//! It is a separate listener so that it can be bound to a private interface
//! while the webhook listener faces the internet, and so that a flood of
//! webhooks cannot starve a scrape.

pub mod api;
pub mod console;
pub mod dead_letters;
pub mod health;
pub mod overview;
pub mod payments;

use std::sync::Arc;

use axum::{
    extract::{FromRef, State},
    http::header::CONTENT_TYPE,
    middleware,
    response::IntoResponse,
    routing::{get, post},
    Router,
};
use secrecy::SecretString;

use crate::{processing::Pipeline, store::Store, telemetry::Metrics};

/// What the admin handlers share.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The durable log.
    pub store: Store,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Re-processing for replay and redrive (never reads the consumer group).
    pub pipeline: Pipeline,
    /// The bearer token; `None`: no `/admin/*` routes.
    pub token: Option<Arc<SecretString>>,
}

impl FromRef<AdminState> for Store {
    fn from_ref(state: &AdminState) -> Store {
        state.store.clone()
    }
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let open = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready));
    // Without a token there is no console either: it could do nothing.
    let router = match state.token {
        None => open,
        Some(_) => open.nest("/admin", admin_api(state.clone())).merge(console::routes()),
    };
    router.layer(middleware::map_response(console::security_headers)).with_state(state)
}

fn admin_api(state: AdminState) -> Router<AdminState> {
    Router::new()
        .route("/arrivals/{id}", get(api::arrival))
        .route("/replay", post(api::replay))
        .route("/dlq", get(api::dlq))
        .route("/dlq/redrive", post(api::redrive))
        .route("/dlq/search", get(dead_letters::search))
        .route("/dlq/{id}", get(dead_letters::letter))
        .route("/stats", get(api::stats))
        .route("/overview", get(overview::overview))
        .route("/payments/{id}", get(payments::story))
        .layer(middleware::from_fn_with_state(state, api::authorize))
}

/// The exposition, with the backlog gauges read from Redis at scrape time
/// (briefly: a scrape must not hang on a Redis outage; the gauges then keep
/// their last values, and `/readyz` tells the outage).
async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    if let Ok(Ok(stats)) = tokio::time::timeout(std::time::Duration::from_millis(500), state.store.stats()).await {
        state.metrics.set_backlog(&stats);
    }
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
}
