//! One round of processing: read a batch, decide what becomes of each
//! arrival (the shared [`Pipeline::decide`]), then settle the batch at once.
//!
//! With several arrival shards, a processor takes its batches from the
//! shards in turn: after a batch it moves on to the next shard, so a busy
//! shard cannot starve a quiet one. It reads without blocking while any
//! shard has work; only when a whole round finds every shard empty does it
//! block, briefly, on one of them (the next round starts at the one after).

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures::future::join_all;
use tracing::Instrument;

use super::{
    pipeline::{Attempt, Decision, Mode, Pipeline, Settled},
    retry::Backoff,
};
use crate::{
    domain::Shard,
    store::{ArrivalEntry, Claimed, Store, StoreError},
    telemetry::{
        events::{ArrivalLost, DeadLettered},
        spans,
    },
};

/// What one batch did. Tests drive [`Processor::process_batch`] and read this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Arrivals read or reclaimed.
    pub read: usize,
    /// New events published.
    pub published: usize,
    /// Payments already published with the same facts.
    pub duplicates: usize,
    /// Notifications that are not a payment success.
    pub ignored: usize,
    /// Dead letters written: one per failed arrival, or per failed
    /// notification of an arrival that carries several.
    pub dead_lettered: usize,
    /// Arrivals parked after a failure, to be retried after their backoff.
    pub retried: usize,
}

impl BatchOutcome {
    /// Counts what `decision` did (dead letters are counted when written).
    fn count(&mut self, decision: &Decision) {
        let items = match decision {
            Decision::Settled(items) => items,
            Decision::Rejected(_) => return,
            Decision::Retry => {
                self.retried += 1;
                return;
            }
        };
        for item in items {
            match item {
                Settled::Published => self.published += 1,
                Settled::Duplicate => self.duplicates += 1,
                Settled::Ignored => self.ignored += 1,
                Settled::Failed(_) => {}
            }
        }
    }
}

/// A processor: one consumer in the `processors` group.
#[derive(Clone, Debug)]
pub struct Processor {
    /// A dedicated connection: this processor's blocking reads must not stall others.
    pub(super) store: Store,
    /// What becomes of each arrival, on the same connection.
    pub(super) pipeline: Pipeline,
    /// Consumer name in the group, unique per process and worker.
    pub(super) consumer: String,
    pub(super) batch_size: usize,
    pub(super) visibility_timeout: Duration,
    /// Deliveries after which a failing arrival goes to the DLQ.
    pub(super) max_attempts: u32,
    /// Delays between attempts of a failing arrival.
    pub(super) backoff: Backoff,
    /// The shard this processor looks at first in its next round. Shared by
    /// the clones of one processor, which are one consumer.
    pub(super) next_shard: Arc<AtomicUsize>,
}

/// How long a processor blocks on one shard when every shard was empty:
/// short, because an arrival in another shard waits for it meanwhile.
const SHARD_BLOCK: Duration = Duration::from_millis(100);

impl Processor {
    /// Reads a batch (first arrivals abandoned by a crashed or failed
    /// processor, else new ones, waiting up to `block`) and processes it.
    pub async fn process_batch(&self, block: Duration) -> Result<BatchOutcome, StoreError> {
        let entries = self.next_batch(block).await?;
        self.process(entries).await
    }

    /// The next batch to work on, from the shards in turn (one shard: from
    /// it, waiting up to `block`).
    pub(super) async fn next_batch(&self, block: Duration) -> Result<Vec<ArrivalEntry>, StoreError> {
        let shards: Vec<Shard> = self.store.keys().shards().collect();
        if let [only] = shards[..] {
            return self.batch_of(only, Some(block)).await;
        }
        let start = self.next_shard.load(Ordering::Relaxed);
        for step in 0..shards.len() {
            let at = (start + step) % shards.len();
            let batch = self.batch_of(shards[at], None).await?;
            if !batch.is_empty() {
                self.next_shard.store((at + 1) % shards.len(), Ordering::Relaxed);
                return Ok(batch);
            }
        }
        self.next_shard.store((start + 1) % shards.len(), Ordering::Relaxed);
        self.store
            .read_new(shards[start % shards.len()], &self.consumer, self.batch_size, Some(block.min(SHARD_BLOCK)))
            .await
    }

    /// The next batch of `shard`: failed arrivals whose retry is due, then
    /// arrivals abandoned by a dead processor, then new ones (waiting up to
    /// `block` for them, if given). Claimed arrivals found deleted from the
    /// stream are reported as lost.
    async fn batch_of(&self, shard: Shard, block: Option<Duration>) -> Result<Vec<ArrivalEntry>, StoreError> {
        let backoff = self.backoff;
        let is_due = |id: &str, deliveries, idle| backoff.is_due(id, deliveries, idle);
        let due = self.store.claim_due(shard, &self.consumer, self.batch_size, backoff.base / 2, is_due).await?;
        let due = self.report_lost(due);
        if !due.is_empty() {
            return Ok(due);
        }
        let stale = self.store.claim_stale(shard, &self.consumer, self.visibility_timeout, self.batch_size).await?;
        let stale = self.report_lost(stale);
        if !stale.is_empty() {
            return Ok(stale);
        }
        self.store.read_new(shard, &self.consumer, self.batch_size, block).await
    }

    /// Arrivals this consumer was given but has not settled, in every shard
    /// (settling groups them by shard again).
    pub(super) async fn own_pending(&self) -> Result<Vec<ArrivalEntry>, StoreError> {
        let mut own = Vec::new();
        for shard in self.store.keys().shards() {
            own.extend(self.store.read_own_pending(shard, &self.consumer, self.batch_size).await?);
        }
        Ok(own)
    }

    /// Logs and counts the claimed arrivals found deleted; returns the others.
    fn report_lost(&self, claimed: Claimed) -> Vec<ArrivalEntry> {
        for arrival_id in &claimed.lost {
            ArrivalLost { arrival_id }.emit(&self.pipeline.metrics);
        }
        claimed.entries
    }

    /// Processes `entries` concurrently (their Redis calls pipeline on one
    /// connection), then acknowledges the finished ones, dead-letters the
    /// failures and parks the retries in one atomic step.
    pub(super) async fn process(&self, entries: Vec<ArrivalEntry>) -> Result<BatchOutcome, StoreError> {
        let decisions = join_all(entries.iter().map(|entry| self.process_one(entry))).await;
        let mut outcome = BatchOutcome { read: entries.len(), ..BatchOutcome::default() };
        let (mut done, mut dead, mut retry) = (Vec::new(), Vec::new(), Vec::new());
        for (entry, decision) in entries.iter().zip(&decisions) {
            outcome.count(decision);
            if *decision == Decision::Retry {
                retry.push(entry.id.clone());
                continue;
            }
            let source = entry.arrival.as_ref().ok().map(|arrival| &arrival.source);
            let letters = decision.dead_letters(&entry.id, source, entry.deliveries);
            // Settling a dead letter acknowledges its arrival too.
            if letters.is_empty() {
                done.push(entry.id.clone());
            }
            dead.extend(letters);
        }
        self.store.settle(&done, &dead, &retry).await?;
        outcome.dead_lettered = dead.len();
        for letter in &dead {
            DeadLettered { letter }.emit(&self.pipeline.metrics);
        }
        Ok(outcome)
    }

    /// Decides one delivered arrival in a `process` span continuing its stored trace.
    async fn process_one(&self, entry: &ArrivalEntry) -> Decision {
        let span = spans::process(entry);
        let attempt = Attempt::Delivery { number: entry.deliveries, last: entry.deliveries >= self.max_attempts };
        let decision = self.pipeline.decide(entry, Mode::Publish, attempt).instrument(span.clone()).await;
        spans::finish(&span, decision.outcome().as_str(), None);
        decision
    }
}
