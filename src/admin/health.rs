//! `/healthz` and `/readyz`, served on both listeners.

use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};

use crate::store::Store;

/// 200 while the process runs.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when Redis answers `PING`, else 503: a load balancer should send no
/// webhooks to a gateway that cannot store them. The body says how durable
/// that Redis is (see `store::durability`).
pub async fn ready(State(store): State<Store>) -> (StatusCode, Json<Value>) {
    match store.ping().await {
        Ok(()) => {
            let durability = store.durability().await.ok();
            (StatusCode::OK, Json(json!({ "status": "ready", "redis": "ok", "durability": durability })))
        }
        Err(error) => {
            tracing::warn!(error = %error, "Readiness check failed: Redis does not answer.");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "redis": "unreachable" })))
        }
    }
}
