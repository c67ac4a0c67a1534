//! The console's view of the DLQ: `GET /admin/dlq/search` (newest first,
//! filtered by reason and source, paged) and `GET /admin/dlq/{id}` (one
//! letter with its arrival's metadata: times, body length and SHA-256,
//! never the body). Redrive stays `POST /admin/dlq/redrive`.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AdminState;
use crate::{
    domain::{rfc3339, ArrivalId},
    store::{DeadLetterFilter, StoreError},
};

/// Most letters on one page.
const MAX_PAGE: usize = 500;

/// `?reason=&source=&before=&count=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    reason: Option<String>,
    source: Option<String>,
    /// Entry id the page starts below (exclusive): the previous page's `next`.
    before: Option<String>,
    count: Option<usize>,
}

/// A page of matching letters and where the next one starts.
pub async fn search(State(state): State<AdminState>, Query(search): Query<Search>) -> Response {
    if search.before.as_deref().is_some_and(|id| ArrivalId::parse(id).is_err()) {
        return error(StatusCode::BAD_REQUEST, "invalid_cursor");
    }
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = DeadLetterFilter { reason: nonempty(search.reason), source: nonempty(search.source) };
    let count = search.count.unwrap_or(50).clamp(1, MAX_PAGE);
    match state.store.search_dead_letters(&filter, search.before.as_deref(), count).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => unavailable(e),
    }
}

/// One letter, with its arrival's metadata while the arrival is kept.
pub async fn letter(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    if ArrivalId::parse(&id).is_err() {
        return error(StatusCode::BAD_REQUEST, "invalid_dead_letter_id");
    }
    let letter = match state.store.dead_letter(&id).await {
        Ok(Some(letter)) => letter,
        Ok(None) => return error(StatusCode::NOT_FOUND, "dead_letter_not_found"),
        Err(e) => return unavailable(e),
    };
    let arrival = match ArrivalId::parse(letter.arrival_id()) {
        Ok(arrival_id) => match state.store.arrival(&arrival_id).await {
            Ok(entry) => entry.and_then(|e| e.arrival.ok()),
            Err(e) => return unavailable(e),
        },
        Err(_) => None,
    };
    let arrival = arrival.map(|a| {
        json!({
            "received_at": rfc3339(a.request.received_at),
            "source": a.source.as_str(),
            "provider": a.provider,
            "request_id": a.request_id.as_str(),
            "body_length": a.request.body.len(),
            "body_sha256": hex::encode(Sha256::digest(&a.request.body)),
        })
    });
    Json(json!({ "letter": letter, "arrival": arrival })).into_response()
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

fn unavailable(e: StoreError) -> Response {
    tracing::warn!(error = %e, "Admin request failed: Redis unavailable.");
    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
}
