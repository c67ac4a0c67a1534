//! `GET /console`: the operator console, a web page that asks for the admin
//! token and drives `/admin/*` with it (overview, a payment's story, dead
//! letters, replay).
//!
//! Its assets are plain HTML, CSS and JavaScript embedded in the binary (the
//! machines are offline: nothing is fetched from elsewhere, and building
//! needs no Node). Served only when the admin token is configured, like
//! `/admin/*`. The page renders every value as text (`textContent`, never
//! `innerHTML`), keeps the token in `sessionStorage` only and sends it as a
//! bearer token, never in a URL or a cookie. The strict policy below is on
//! every answer of the admin listener: no inline script or style, nothing
//! from another origin, no framing, no caching.

use axum::{
    http::{
        header::{CACHE_CONTROL, CONTENT_TYPE},
        HeaderName, HeaderValue,
    },
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

/// The Content-Security-Policy of the admin listener.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Security headers on every admin answer, API and page alike.
const HEADERS: [(&str, &str); 7] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    // Answers hold payment ids and operator data: no cache, no back-forward copy.
    ("cache-control", "no-store"),
];

/// The console's routes (the page and its three assets).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|| asset("text/html; charset=utf-8", include_str!("console/index.html"))))
        .route("/console/console.css", get(|| asset("text/css; charset=utf-8", include_str!("console/console.css"))))
        .route(
            "/console/console.js",
            get(|| asset("text/javascript; charset=utf-8", include_str!("console/console.js"))),
        )
        .route("/console/favicon.svg", get(|| asset("image/svg+xml", include_str!("console/favicon.svg"))))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

/// Adds [`HEADERS`] to a response (replacing any `Cache-Control`).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.remove(CACHE_CONTROL);
    for (name, value) in HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}
