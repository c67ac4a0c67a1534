//! The processors' housekeeping task: trims the arrivals stream by age and
//! removes the consumers of stopped gateways.
//!
//! Every gateway that runs processors runs it; several at once are
//! harmless, because each pass is one atomic script ([`Store::maintain`])
//! that never trims an arrival the processors have not acknowledged and
//! never removes a consumer that holds one.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::{config::Config, store::Store};

/// How often a pass runs at most: trimming keeps up with any retention, and
/// one cheap script call every few seconds per gateway costs Redis nothing.
const EVERY: Duration = Duration::from_secs(5);

/// The housekeeping task of one gateway.
#[derive(Debug)]
pub struct Maintenance {
    store: Store,
    /// Time between passes: [`EVERY`], or half the retention if shorter.
    every: Duration,
    /// `idle_consumer_secs`.
    idle_consumer: Duration,
}

impl Maintenance {
    /// The task for `config`, on `store`'s shared connection (a pass is one
    /// short script call, never a blocking read).
    pub fn new(config: &Config, store: &Store) -> Self {
        let retention = Duration::from_secs(config.processing.arrival_retention_secs);
        Self {
            store: store.clone(),
            every: EVERY.min(retention / 2),
            idle_consumer: Duration::from_secs(config.processing.idle_consumer_secs),
        }
    }

    /// Runs a pass at start, then every 5 s (or half the retention if
    /// shorter), until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => self.pass().await,
            }
        }
    }

    async fn pass(&self) {
        match self.store.maintain(self.idle_consumer).await {
            Ok(done) => {
                for consumer in &done.removed_consumers {
                    tracing::info!(consumer = %consumer, "Idle consumer removed from the group.");
                }
                if done.trimmed > 0 {
                    tracing::debug!(trimmed = done.trimmed, "Acknowledged arrivals past retention trimmed.");
                }
            }
            // Warned: while passes fail, the arrivals stream is not trimmed.
            Err(error) => tracing::warn!(error = %error, "Maintenance pass failed; retrying."),
        }
    }
}
