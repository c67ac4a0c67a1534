//! Every way a webhook request can fail, mapped to the HTTP contract once.

use axum::{
    http::{header::RETRY_AFTER, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::{
    providers::{KeyFetchError, Rejection, VerifyError},
    store::StoreError,
    telemetry::metrics::Outcome,
};

/// Seconds a provider is asked to wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "5";

/// Why a webhook request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// No source of that name: 404.
    #[error("unknown source")]
    UnknownSource,
    /// Body over `max_body_bytes`: 413.
    #[error("body too large")]
    BodyTooLarge,
    /// Signature missing, wrong or stale: 401.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The body did not arrive within `request_timeout_ms`: 408.
    #[error("body not received in time")]
    RequestTimeout,
    /// The connection failed while the body was read: 400.
    #[error("body could not be read: {0}")]
    BadBody(#[source] axum::BoxError),
    /// Redis could not store the arrival in time: 503 with `Retry-After`, so
    /// the provider retries and nothing is lost.
    #[error("arrival could not be stored: {0}")]
    Unavailable(#[source] StoreError),
    /// The source's `rate_limit_per_sec` is exhausted: 429 with
    /// `Retry-After`, so the provider slows down and retries.
    #[error("rate limited")]
    RateLimited,
    /// More webhook requests at once than `max_concurrent_requests`: 503 at
    /// once, so the provider retries later instead of waiting on a queue.
    #[error("overloaded")]
    Overloaded,
    /// The provider's verification key could not be fetched: 503, so the
    /// provider retries once its key host answers again.
    #[error(transparent)]
    KeyUnavailable(#[from] KeyFetchError),
}

impl From<VerifyError> for IngressError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Rejected(rejection) => Self::Rejected(rejection),
            VerifyError::KeyUnavailable(error) => Self::KeyUnavailable(error),
        }
    }
}

impl IngressError {
    /// The metrics outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::UnknownSource => Outcome::UnknownSource,
            Self::BodyTooLarge => Outcome::BodyTooLarge,
            Self::Rejected(Rejection::MissingSignature) => Outcome::MissingSignature,
            Self::Rejected(Rejection::InvalidSignature) => Outcome::InvalidSignature,
            Self::Rejected(Rejection::TimestampOutOfTolerance) => Outcome::TimestampOutOfTolerance,
            Self::RequestTimeout => Outcome::RequestTimeout,
            Self::BadBody(_) => Outcome::BadRequest,
            Self::Unavailable(_) | Self::KeyUnavailable(_) => Outcome::Unavailable,
            Self::Overloaded => Outcome::Overloaded,
            Self::RateLimited => Outcome::RateLimited,
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::UnknownSource => (StatusCode::NOT_FOUND, "unknown_source"),
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::Rejected(rejection) => (StatusCode::UNAUTHORIZED, rejection.code()),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::BadBody(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unavailable(_) | Self::KeyUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        }
    }
}

impl IntoResponse for IngressError {
    /// `{"error": code}` with the contract's status. Internal causes are
    /// logged by the handler, never returned.
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut response = (status, Json(json!({ "error": code }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(RETRY_AFTER, RETRY_AFTER_SECS.parse().expect("a number is a header value"));
        }
        response
    }
}
