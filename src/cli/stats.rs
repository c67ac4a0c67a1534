//! `payhook stats`: backlog, lag, oldest pending age and DLQ size.

use anyhow::Context;
use payhook::config::Config;

use super::{tools::Tools, Failure};

pub async fn run(config: &Config) -> Result<(), Failure> {
    let tools = Tools::open(config)?;
    let stats = tools.store.stats().await.context("reading stats").map_err(Failure::Runtime)?;
    println!(
        "arrivals {}  pending {}  lag {}  oldest pending {}s  dlq {}",
        stats.arrivals, stats.pending, stats.lag, stats.oldest_pending_age_secs, stats.dlq
    );
    Ok(())
}
