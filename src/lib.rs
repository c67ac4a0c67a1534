//! payhook: a payment webhook ingestion gateway.
//!
//! Payment providers POST webhooks to `/webhooks/{source}`. payhook:
//!
//! 1. verifies the provider's signature exactly as the provider specifies,
//! 2. stores the raw arrival in the Redis stream `{p}:arrivals` *before* it
//!    answers 2xx (if Redis cannot take it, 503 and the provider retries),
//! 3. then, separately, processors read the arrivals, normalize every
//!    "payment succeeded" notification into one CloudEvents
//!    `payment.succeeded.v1` event,
//! 4. dedupe it by idempotency key and publish it to the partition stream
//!    `{p}:events:payment.succeeded.v1:{N}` in one atomic Lua step,
//! 5. and dead-letter to `{p}:dlq` what can never become an event.
//!
//! # Layout
//!
//! - [`config`]: the TOML config as plain, validated data.
//! - [`domain`]: meaning-carrying types (`ArrivalId`, `MinorUnits`, the event).
//! - [`providers`]: signature schemes and normalizers, one file per provider.
//! - [`ingress`]: the provider-facing HTTP listener.
//! - [`store`]: the Redis streams, and the only code that knows their fields.
//! - [`processing`]: workers turning arrivals into events.
//! - [`publish`]: exactly-once output (dedupe + publish script).
//! - [`admin`]: metrics, health, the admin API and the operator console.
//! - [`telemetry`]: logs and metrics, one type per observable event.
//! - [`app`]: wiring, and building the config's runtime objects (the sources
//!   with their providers, the sealer, the admin token); [`server`]:
//!   connection limits; [`shutdown`]: signals.
//!
//! The modules are layers, lowest first: domain, config, providers, store,
//! publish, telemetry, processing, admin, ingress, server, shutdown, app.
//! Each uses only layers below it, so there are no import cycles
//! (`tests/it/layers.rs` checks every `crate::` path).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod config;
pub mod domain;
pub mod ingress;
pub mod processing;
pub mod providers;
pub mod publish;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
