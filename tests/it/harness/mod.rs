//! Test harness: a real `redis-server` per test, the real app on port 0
//! built from a typed config, and helpers that speak to both over loopback.

mod app;
pub mod cluster;
mod config;
mod gateway;
mod load;
mod redis_server;
mod schemas;
mod sign;

pub use app::{metric, Running, TestApp};
pub use config::{
    config, offline_config, source, sources, toml, with_admin_token, EXAMPLE_SECRET_VARS, STRIPE_SECRET, SW_SECRET,
};
pub use gateway::Gateway;
pub use load::{Load, Sent};
pub use redis_server::RedisServer;
pub use schemas::assert_valid_event;
pub use sign::{standard_webhooks_headers, stripe_header, stripe_payment_intent};
