//! `[redis]`: where arrivals and events live, and how durably.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Env};

/// `[redis]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` URL of a single node; unset: the default
    /// node, unless `cluster_nodes` is set (see [`RedisConfig::target`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster (`redis://` or `rediss://`, a password
    /// in the URL where the nodes need one), instead of `url`.
    pub cluster_nodes: Vec<String>,
    /// Arrival streams the ingress spreads arrivals over, each with its own
    /// hash tag (section "Running on Redis Cluster" of the README).
    pub arrival_shards: NonZeroU32,
    /// First segment of every key, so several deployments can share a Redis.
    pub key_prefix: String,
    /// Number of output partitions (`{N}` in the event stream names).
    pub partitions: NonZeroU32,
    /// Replicas that must hold an arrival before it is answered 2xx (`WAIT`); 0: none.
    pub wait_replicas: u32,
    /// How long to wait for them; fewer acknowledgements in time: 503.
    pub wait_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            cluster_nodes: Vec::new(),
            arrival_shards: NonZeroU32::MIN,
            key_prefix: "payhook".into(),
            partitions: NonZeroU32::MIN,
            wait_replicas: 0,
            wait_timeout_ms: 1_000,
        }
    }
}

impl RedisConfig {
    /// `PAYHOOK_REDIS_URL` or `PAYHOOK_REDIS_CLUSTER_NODES`, when set.
    pub(super) fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        super::redis_target::apply_env(self, env)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        super::redis_target::validate(self)?;
        // Braces would start a Redis Cluster hash tag and split a payment's dedupe
        // record from its stream; whitespace and ':' would make keys ambiguous.
        let prefix_ok = !self.key_prefix.is_empty()
            && !self.key_prefix.contains(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ':');
        if !prefix_ok {
            return Err(ConfigError::invalid("redis.key_prefix", "must be non-empty, without spaces, ':', '{' or '}'"));
        }
        Ok(())
    }
}
