//! `[server]`: the two listeners and the limits of the provider-facing one.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{ConfigError, Env};

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Provider-facing listener: `/webhooks/*`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// Operator listener: `/metrics`, `/healthz`, `/readyz`, `/admin/*`.
    pub admin_listen: SocketAddr,
    /// Larger bodies are refused with 413 while being read.
    pub max_body_bytes: usize,
    /// Deadline for reading a request and storing it; past it, 503.
    pub request_timeout_ms: u64,
    /// Environment variable holding the admin bearer token.
    pub admin_token_env: String,
    /// Time a client has to send a request's head; a slowloris client is cut off.
    pub header_read_timeout_ms: u64,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Most bytes of one request's head (at least 8192).
    pub max_header_bytes: usize,
    /// Webhook requests handled at once; beyond, 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 9090).into(),
            max_body_bytes: 1 << 20,
            request_timeout_ms: 10_000,
            admin_token_env: "PAYHOOK_ADMIN_TOKEN".into(),
            header_read_timeout_ms: 5_000,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            max_concurrent_requests: 1_024,
        }
    }
}

impl ServerConfig {
    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// `header_read_timeout_ms` as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// `PAYHOOK_LISTEN` and `PAYHOOK_ADMIN_LISTEN`, when set.
    pub(super) fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        let addr = |var: &str, value: &str| {
            value.parse::<SocketAddr>().map_err(|e| ConfigError::invalid(var, format!("not a socket address: {e}")))
        };
        if let Some(listen) = env.get("PAYHOOK_LISTEN") {
            self.listen = addr("PAYHOOK_LISTEN", listen)?;
        }
        if let Some(listen) = env.get("PAYHOOK_ADMIN_LISTEN") {
            self.admin_listen = addr("PAYHOOK_ADMIN_LISTEN", listen)?;
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let minimums = [
            ("server.max_body_bytes", self.max_body_bytes as u64, 1),
            ("server.request_timeout_ms", self.request_timeout_ms, 1),
            ("server.header_read_timeout_ms", self.header_read_timeout_ms, 1),
            ("server.max_headers", self.max_headers as u64, 1),
            ("server.max_header_bytes", self.max_header_bytes as u64, 8192),
            ("server.max_concurrent_requests", self.max_concurrent_requests as u64, 1),
        ];
        match minimums.iter().find(|(_, value, min)| value < min) {
            Some((key, _, min)) => Err(ConfigError::invalid(*key, format!("must be at least {min}"))),
            None => Ok(()),
        }
    }
}
