//! `GET /admin/payments/{id}`: a payment's story, by payment id, idempotency
//! key, provider event id or arrival id (see `crate::processing::Story`).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::AdminState;
use crate::processing::StoryQuery;

/// 200 with the story; 404 when nothing matches; 400 for text that is no id.
pub async fn story(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let Ok(query) = StoryQuery::parse(&id) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_query" }))).into_response();
    };
    match state.pipeline.story(&query).await {
        Ok(story) if story.is_empty() => {
            (StatusCode::NOT_FOUND, Json(json!({ "error": "not_found", "query": query.as_str() }))).into_response()
        }
        Ok(story) => Json(story).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "Admin request failed: Redis unavailable.");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "unavailable" }))).into_response()
        }
    }
}
