//! payhook's integration tests: one binary, a real `redis-server` per test,
//! the real app on loopback.

mod cli;
mod cluster;
mod config;
mod console;
mod faults;
mod guard;
mod harness;
mod health;
mod ingress;
mod layers;
mod limits;
mod maintenance;
mod operations;
mod pipeline;
mod privacy;
mod provider_hardening;
mod providers;
mod registry;
mod safety;
mod settlement;
mod telemetry;
mod vectors;
