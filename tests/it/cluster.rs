//! payhook on a real Redis Cluster (issue 11): three masters with a replica
//! each, started by the harness for each test, and the real `payhook` binary
//! run from config files written here.

mod failover;
mod flows;
mod gateway;
mod operations;
