//! payhook's integration tests: one binary, a real `redis-server` per test,
//! the real app on loopback.

mod cli;
mod console;
mod faults;
mod harness;
mod health;
mod ingress;
mod limits;
mod operations;
mod pipeline;
mod privacy;
mod providers;
mod safety;
mod telemetry;
mod vectors;
