//! The worker side: arrivals in, events (or dead letters) out.
//!
//! Each worker is a consumer of the `processors` group on `{p}:arrivals`.
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
//! `visibility_timeout_secs` any worker reclaims them (`XAUTOCLAIM`). That
//! timeout must exceed the time a batch takes, or a slow worker's batch is
//! processed twice (harmless thanks to the dedupe, but wasted).

mod replay;
mod retry;
mod step;
mod story;

use std::{sync::Arc, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use replay::{ReplayRange, ReplayReport};
pub use retry::Backoff;
pub use step::{BatchOutcome, Processor};
pub use story::{
    ArrivalDetails, ArrivalStory, InvalidQuery, MatchedBy, Moment, Notification, PaymentStory, Story, StoryQuery,
};

use crate::{
    config::Config,
    domain::EVENT_TYPE,
    publish::Publisher,
    store::{Store, StoreError},
    telemetry::Metrics,
};

/// How long one read waits for new arrivals.
const BLOCK: Duration = Duration::from_secs(2);
/// Pauses after a failed round (Redis unreachable): doubling, with jitter.
const ROUND_BACKOFF: Backoff = Backoff { base: Duration::from_millis(250), max: Duration::from_secs(5) };

impl Processor {
    /// Worker `index` of this process, on its own Redis connection.
    pub fn new(config: &Config, store: &Store, metrics: Arc<Metrics>, index: usize) -> Result<Self, StoreError> {
        // The response timeout must outlast a blocking read.
        let store = store.dedicated(BLOCK + config.server.request_timeout())?;
        let processing = &config.processing;
        Ok(Self {
            publisher: Publisher::new(store.clone(), config.redis.partitions, processing.idempotency_ttl_secs),
            store,
            sources: config.sources.clone(),
            metrics,
            consumer: consumer_name(index),
            batch_size: processing.batch_size.get(),
            event_type: format!("{}{EVENT_TYPE}", processing.event_type_prefix),
            visibility_timeout: Duration::from_secs(processing.visibility_timeout_secs),
            max_attempts: processing.max_attempts.get(),
            backoff: Backoff {
                base: Duration::from_millis(processing.retry_base_ms),
                max: Duration::from_millis(processing.retry_max_ms),
            },
        })
    }

    /// Checks the key layout, creates the consumer group and loads the
    /// publish script. A layout other than the recorded one fails here, so
    /// nothing is processed, and the round is retried (and logged) until the
    /// gateway is restarted with the right config.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.store.claim_layout().await?;
        self.store.ensure_group().await?;
        self.publisher.load().await
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
                    let own = self.store.read_own_pending(&self.consumer, self.batch_size).await?;
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

/// `{host}-{pid}-{index}`: unique per worker, and tells an operator reading
/// `XINFO CONSUMERS` which machine holds a pending arrival.
fn consumer_name(index: usize) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "payhook".into());
    format!("{host}-{}-{index}", std::process::id())
}
