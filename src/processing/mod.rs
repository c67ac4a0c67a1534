//! The worker side: arrivals in, events (or dead letters) out.
//!
//! What becomes of an arrival is decided in one place, [`Pipeline`], for
//! live processing, retries, replay and redrive alike.
//!
//! Each worker is a consumer of the `processors` group on `{p}:arrivals`
//! (on every shard's stream, read in turn).
//! It loops around [`Processor::process_batch`]: the loop only decides
//! whether to wait. Processing is at-least-once: an arrival is acknowledged
//! only after its event is published (or it is ignored or dead-lettered), so
//! a crash re-processes it, and the dedupe in `crate::publish` stops the
//! second event.
//!
//! A failed arrival is parked and retried after an exponential backoff with
//! jitter (`retry_base_ms`, doubling up to `retry_max_ms`) until it has been
//! delivered `max_attempts` times; then it goes to the DLQ. An arrival that
//! can never succeed (not JSON, a conflict) goes to the DLQ at once. A
//! processor that dies leaves its arrivals pending; after
//! `visibility_timeout_secs` any worker reclaims them (parked retries are not
//! reclaimed this way: they wait for their backoff). That timeout must
//! exceed the time a batch takes, or a slow worker's batch is processed
//! twice (harmless thanks to the dedupe, but wasted).
//!
//! Alongside the workers, [`Maintenance`] trims old acknowledged arrivals
//! and removes the consumers of stopped gateways.

mod maintenance;
mod pipeline;
mod replay;
mod retry;
mod step;
mod story;

use std::{sync::Arc, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use maintenance::Maintenance;
pub use pipeline::Pipeline;
pub use replay::{ReplayRange, ReplayReport};
pub use retry::Backoff;
pub use step::{BatchOutcome, Processor};
pub use story::{
    ArrivalDetails, ArrivalStory, InvalidQuery, MatchedBy, Moment, Notification, PaymentStory, Story, StoryQuery,
};

use crate::{
    config::Config,
    providers::SourceTable,
    store::{Store, StoreError},
    telemetry::Metrics,
};

/// How long one read waits for new arrivals.
const BLOCK: Duration = Duration::from_secs(2);
/// Pauses after a failed round (Redis unreachable): doubling, with jitter.
const ROUND_BACKOFF: Backoff = Backoff { base: Duration::from_millis(250), max: Duration::from_secs(5) };

impl Processor {
    /// Worker `index` of this process, on its own Redis connection.
    pub fn new(
        config: &Config,
        sources: &SourceTable,
        store: &Store,
        metrics: Arc<Metrics>,
        index: usize,
    ) -> Result<Self, StoreError> {
        // The response timeout must outlast a blocking read.
        let store = store.dedicated(BLOCK + config.server.request_timeout())?;
        let processing = &config.processing;
        Ok(Self {
            pipeline: Pipeline::new(config, sources, &store, metrics),
            store,
            consumer: consumer_name(index),
            batch_size: processing.batch_size.get(),
            visibility_timeout: Duration::from_secs(processing.visibility_timeout_secs),
            max_attempts: processing.max_attempts.get(),
            backoff: Backoff {
                base: Duration::from_millis(processing.retry_base_ms),
                max: Duration::from_millis(processing.retry_max_ms),
            },
            // Workers start at different shards, so they spread at once.
            next_shard: Arc::new(index.into()),
        })
    }

    /// Checks the key layout, creates the consumer group and loads the
    /// publish script. A layout other than the recorded one fails here, so
    /// nothing is processed, and the round is retried (and logged) until the
    /// gateway is restarted with the right config.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.store.claim_layout().await?;
        self.store.ensure_group().await?;
        self.pipeline.load().await
    }

    /// Runs until `shutdown`. The read in progress and its batch are finished
    /// and acknowledged before it returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let (mut prepared, mut failures) = (false, 0u32);
        while !shutdown.is_cancelled() {
            let needs_prepare = !prepared;
            let round = async {
                if needs_prepare {
                    self.prepare().await?;
                    // A batch cut off by the failure is still ours: take it up now.
                    let own = self.own_pending().await?;
                    if !own.is_empty() {
                        return Ok(own);
                    }
                }
                self.next_batch(BLOCK).await
            };
            // Not raced against shutdown: a read cut off after Redis handed
            // out its entries would leave them pending with a consumer that
            // is gone, until the visibility timeout. A read blocks at most
            // BLOCK, so shutdown waits at most that long.
            let batch = round.await;
            let result = match batch {
                Ok(entries) => {
                    prepared = true;
                    self.process(entries).await.map(drop)
                }
                Err(error) => Err(error),
            };
            let Err(error) = result else {
                failures = 0;
                continue;
            };
            // NOGROUP after a Redis restart without persistence, or an
            // outage: prepare again once Redis answers.
            (prepared, failures) = (false, failures.saturating_add(1));
            tracing::warn!(consumer = %self.consumer, error = %error, "Processor round failed; retrying.");
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(ROUND_BACKOFF.delay(&self.consumer, failures)) => {}
            }
        }
    }
}

/// Starts `workers` processors on `tracker`.
pub fn spawn(processors: Vec<Processor>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    for processor in processors {
        tracker.spawn(processor.run(shutdown.clone()));
    }
}

/// `{host}-{pid}-{index}-{random}`: tells an operator reading `XINFO
/// CONSUMERS` which machine and process hold a pending arrival. The random
/// part keeps names unique where host and pid are not: two containers both
/// running as pid 1 with the same host name, or two apps in one process.
/// A new name per start is why maintenance removes idle consumers.
fn consumer_name(index: usize) -> String {
    let host = [std::env::var("HOSTNAME").ok(), std::fs::read_to_string("/proc/sys/kernel/hostname").ok()]
        .into_iter()
        .flatten()
        .map(|name| name.trim().replace(char::is_whitespace, "_"))
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "payhook".into());
    let random: u32 = rand::random::<u32>() & 0xff_ffff;
    format!("{host}-{}-{index}-{random:06x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_carry_the_process_and_differ_between_workers_of_the_same_index() {
        let (a, b) = (consumer_name(0), consumer_name(0));
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-0-", std::process::id())), "{a}");
        let random = a.rsplit('-').next().unwrap();
        assert!(random.len() == 6 && random.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
}
