//! `/admin/*`: arrivals, replay, dead letters and stats, behind a bearer
//! token compared in constant time. Served only when the token is set.

use axum::{
    extract::{Path, Query, Request, State},
    http::{header::AUTHORIZATION, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AdminState;
use crate::{
    domain::ArrivalId,
    processing::ReplayRange,
    providers::credential_eq,
    store::{StoreError, StoredDeadLetter},
};

/// Refuses any request without `Authorization: Bearer <token>`.
pub async fn authorize(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let given =
        request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let expected = state.token.as_ref().map(|t| t.expose_secret().as_bytes());
    let ok = match (given, expected) {
        (Some(given), Some(expected)) => credential_eq(given.as_bytes(), expected),
        _ => false,
    };
    if ok {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": "unauthorized"}))).into_response()
    }
}

/// A stored arrival's metadata. The body is not returned (it may hold
/// personal data): its length and SHA-256 identify it.
pub async fn arrival(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let Ok(id) = ArrivalId::parse(&id) else { return error(StatusCode::BAD_REQUEST, "invalid_arrival_id") };
    match state.store.arrival(&id).await {
        Err(e) => unavailable(e),
        Ok(None) => error(StatusCode::NOT_FOUND, "arrival_not_found"),
        Ok(Some(entry)) => match entry.arrival {
            Err(field) => Json(json!({"arrival_id": id.as_str(), "malformed_field": field})).into_response(),
            Ok(a) => Json(json!({
                "arrival_id": a.id.as_str(),
                "source": a.source.as_str(),
                "provider": a.provider,
                "received_at": crate::domain::rfc3339(a.request.received_at),
                "request_id": a.request_id.as_str(),
                "header_names": a.request.headers.names(),
                "body_length": a.request.body.len(),
                "body_sha256": hex::encode(Sha256::digest(&a.request.body)),
            }))
            .into_response(),
        },
    }
}

/// `POST /admin/replay` with the CLI's fields.
pub async fn replay(State(state): State<AdminState>, Json(range): Json<ReplayRange>) -> Response {
    match state.pipeline.replay(&range).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `?count=` for listings.
#[derive(Deserialize)]
pub struct Listing {
    count: Option<usize>,
}

/// The newest dead letters.
pub async fn dlq(State(state): State<AdminState>, Query(listing): Query<Listing>) -> Response {
    match state.store.dead_letters(listing.count.unwrap_or(100).min(10_000)).await {
        Ok(letters) => Json(letters).into_response(),
        Err(e) => unavailable(e),
    }
}

/// What to redrive: ids, or everything.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
}

/// Re-processes dead letters; those that now succeed leave the DLQ.
pub async fn redrive(State(state): State<AdminState>, Json(redrive): Json<Redrive>) -> Response {
    let letters = match select(&state, &redrive.ids, redrive.all).await {
        Ok(letters) => letters,
        Err(e) => return unavailable(e),
    };
    match state.pipeline.redrive(&letters).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => unavailable(e),
    }
}

/// The letters named by `ids`, or every letter.
pub async fn select(state: &AdminState, ids: &[String], all: bool) -> Result<Vec<StoredDeadLetter>, StoreError> {
    if all {
        return state.store.dead_letters(usize::MAX >> 1).await;
    }
    let mut letters = Vec::new();
    for id in ids {
        letters.extend(state.store.dead_letter(id).await?);
    }
    Ok(letters)
}

/// Backlog, lag, oldest pending age, DLQ size, and throughput over the
/// last second (so the answer takes a second).
pub async fn stats(State(state): State<AdminState>) -> Response {
    let partitions = state.pipeline.partitions();
    let reading =
        async { Ok::<_, StoreError>((state.store.stats().await?, state.store.rates(partitions, RATE_WINDOW).await?)) };
    match reading.await {
        Ok((stats, rates)) => Json(json!({ "backlog": stats, "rates": rates })).into_response(),
        Err(e) => unavailable(e),
    }
}

/// How long throughput is measured for at a glance.
pub const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

fn unavailable(e: StoreError) -> Response {
    tracing::warn!(error = %e, "Admin request failed: Redis unavailable.");
    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
}
