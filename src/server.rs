//! Serving a router with the connection limits that `axum::serve` does not
//! expose: a deadline for the request head (a slowloris client that trickles
//! headers is cut off), and caps on header count and size. Bodies are
//! bounded by the ingress itself (size while streaming, and a deadline).

use std::{convert::Infallible, time::Duration};

use axum::{body::Body, extract::ConnectInfo, Router};
use hyper::{body::Incoming, server::conn::http1, Request};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::ServerConfig;

/// Per-connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time allowed to send a request's head (line and headers).
    pub header_read_timeout: Duration,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Most bytes buffered for a request head (hyper's minimum is 8192).
    pub max_head_bytes: usize,
}

impl From<&ServerConfig> for ConnectionLimits {
    fn from(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: server.header_read_timeout(),
            max_headers: server.max_headers,
            max_head_bytes: server.max_header_bytes,
        }
    }
}

/// How long in-flight requests get to finish after shutdown begins.
const GRACE: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown`, then lets in-flight requests finish
/// (within [`GRACE`]).
pub async fn serve(listener: TcpListener, router: Router, limits: ConnectionLimits, shutdown: CancellationToken) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_head_bytes);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(error = %error, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            let response = router.clone().oneshot(request);
            async move { Ok::<_, Infallible>(response.await.unwrap_or_else(|never| match never {})) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("In-flight requests did not finish in time.");
    }
}
