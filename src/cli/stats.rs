//! `payhook stats`: backlog, lag, oldest pending age and DLQ size (in total,
//! then shard by shard when arrivals are sharded).

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
    if stats.shards.len() > 1 {
        for shard in &stats.shards {
            println!(
                "  shard {} ({}): arrivals {}  pending {}  lag {}  oldest pending {}s  dlq {}",
                shard.shard,
                shard.stream,
                shard.arrivals,
                shard.pending,
                shard.lag,
                shard.oldest_pending_age_secs,
                shard.dlq
            );
        }
    }
    let window = payhook::admin::api::RATE_WINDOW;
    let rates = tools
        .store
        .rates(tools.pipeline.partitions(), window)
        .await
        .context("reading rates")
        .map_err(Failure::Runtime)?;
    println!(
        "per second: arrivals {:.1}  events {:.1}  dead letters {:.1}",
        rates.arrivals_per_sec, rates.events_per_sec, rates.dead_letters_per_sec
    );
    Ok(())
}
