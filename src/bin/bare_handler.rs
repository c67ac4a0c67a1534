//! The HTTP ceiling for `load-tests/bench`: a bare axum handler that reads the
//! whole request body and answers 200, with nothing else on the path (no
//! signature check, no Redis, no logging, no middleware).
//!
//! The benchmark drives this and payhook with the same load in the same run
//! and quotes payhook's rate as a ratio of this one, so the ratio stays
//! meaningful on a shared, noisy machine. It uses the same multi-thread Tokio
//! runtime (one worker per core) and the same axum/hyper stack as
//! `payhook serve`, so the difference is payhook's own work.
//!
//! ```text
//! cargo run --release --features bench --bin bare_handler -- 18080   # listens on 127.0.0.1:18080
//! ```
//!
//! It listens on loopback only and runs until it is killed.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Context, Result};
use axum::{body::Bytes, http::StatusCode, routing::post, Router};

#[tokio::main]
async fn main() -> Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .context("usage: bare_handler PORT")?
        .parse()
        .context("PORT must be a number from 0 to 65535")?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let app = Router::new().route("/webhooks/{source}", post(accept));
    axum::serve(listener, app).await.context("serving failed")
}

/// Takes the body (the `Bytes` extractor reads it to the end) and answers 200.
async fn accept(_body: Bytes) -> StatusCode {
    StatusCode::OK
}
