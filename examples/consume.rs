//! A fulfillment service reading payhook's output stream.
//!
//! payhook dedupes each successful payment and publishes it as a CloudEvent
//! on the Redis stream `{prefix}:events:payment.succeeded.v1:{N}` of
//! partition N. The braces are literal characters: they form a Redis Cluster
//! hash tag. Each stream entry has four fields: `id` (the event id), `type`,
//! `idempotencykey` and `event` (the whole CloudEvent as JSON). This example
//! reads the entries through a consumer group, "fulfils" each payment (here
//! it just prints a line), and then acknowledges the entry.
//!
//! To run it next to payhook, use three terminals:
//!
//! ```text
//! payhook serve                             # 1: the gateway
//! cargo run --example consume               # 2: this consumer
//! payhook send --source stripe --sample     # 3: a signed test payment
//! ```
//!
//! All settings come from the environment:
//!
//! | variable             | default                  | meaning                                 |
//! |----------------------|--------------------------|-----------------------------------------|
//! | `REDIS_URL`          | `redis://127.0.0.1:6379` | the Redis payhook publishes to          |
//! | `PAYHOOK_KEY_PREFIX` | `payhook`                | payhook's `redis.key_prefix`            |
//! | `PARTITION`          | `0`                      | which partition's stream to read        |
//! | `GROUP`              | `fulfillment`            | consumer group: one per service         |
//! | `CONSUMER`           | `fulfillment-1`          | this instance; unique within the group  |
//! | `MAX_EVENTS`         | unset                    | stop after this many events (scripts)   |
//!
//! Without `MAX_EVENTS` it runs until Ctrl-C. With `redis.partitions = P` in
//! payhook's config, run consumers for each partition `0..P`. Several
//! consumers (with different `CONSUMER` names) in one group share the work of
//! one partition.

use std::{collections::HashSet, env, time::Duration};

use anyhow::{Context, Result};
use redis::{
    aio::MultiplexedConnection,
    streams::{StreamId, StreamReadReply},
    AsyncConnectionConfig,
};
use serde::Deserialize;

/// The maximum number of entries one `XREADGROUP` returns.
const BATCH: u64 = 10;

/// How long, in milliseconds, `XREADGROUP ... BLOCK` waits for new entries
/// before it replies with nil. The read loop then simply asks again.
const BLOCK_MS: u64 = 5_000;

/// How long the connection waits for any reply before it gives up. This must
/// be longer than `BLOCK_MS`: a blocked `XREADGROUP` stays silent for up to
/// `BLOCK_MS` by design. The redis crate's default is 500 ms, which would make
/// every quiet read fail with a timeout error.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<()> {
    let settings = Settings::from_env()?;

    let client = redis::Client::open(settings.url.as_str()).with_context(|| format!("REDIS_URL {:?}", settings.url))?;
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connecting to {}", settings.url))?;

    create_group(&mut conn, &settings).await?;
    eprintln!("consuming {} as {}/{}", settings.stream, settings.group, settings.consumer);

    // Stopping at any point is safe, even between a side effect and its
    // XACK: an entry that was not acknowledged stays pending for this
    // consumer. The next start-up reads it again, and the idempotent
    // side effect turns that second delivery into a no-op.
    tokio::select! {
        result = Consumer::new(&mut conn, &settings).run() => result,
        signal = tokio::signal::ctrl_c() => {
            signal.context("waiting for Ctrl-C")?;
            eprintln!("interrupted, stopping");
            Ok(())
        }
    }
}

/// What to read, and as whom.
struct Settings {
    url: String,
    stream: String,
    group: String,
    consumer: String,
    max_events: Option<u64>,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let var = |name: &str, default: &str| env::var(name).unwrap_or_else(|_| default.to_owned());
        let prefix = var("PAYHOOK_KEY_PREFIX", "payhook");
        let partition: u32 =
            var("PARTITION", "0").parse().context("PARTITION must be a partition number (0, 1, ...)")?;
        let max_events = match env::var("MAX_EVENTS") {
            Ok(n) => Some(n.parse().context("MAX_EVENTS must be a number of events")?),
            Err(_) => None,
        };
        Ok(Self {
            url: var("REDIS_URL", "redis://127.0.0.1:6379"),
            // `{{` and `}}` are escaped braces: the name holds a literal `{0}`.
            stream: format!("{prefix}:events:payment.succeeded.v1:{{{partition}}}"),
            group: var("GROUP", "fulfillment"),
            consumer: var("CONSUMER", "fulfillment-1"),
            max_events,
        })
    }
}

/// Creates the consumer group, unless it exists already.
///
/// `0` makes a new group start at the beginning of the stream, so a service
/// that subscribes late still sees every event the stream retains. `MKSTREAM`
/// creates the stream if payhook has not published anything yet.
async fn create_group(conn: &mut MultiplexedConnection, settings: &Settings) -> Result<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&settings.stream)
        .arg(&settings.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(()),
        // The group exists: a normal restart, or another instance created it.
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating group {} on {}", settings.group, settings.stream)),
    }
}

/// The CloudEvent in an entry's `event` field, reduced to the parts this
/// service uses. serde skips the other fields, so fields added to the event
/// later do not break the consumer.
#[derive(Deserialize)]
struct Event {
    id: String,
    data: Payment,
}

/// The event's `data`: see payhook's `schemas/payment-succeeded.v1.json`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payment {
    payment_id: String,
    /// In minor units of `currency`: 2000 EUR means EUR 20.00.
    amount: u64,
    currency: String,
    /// Not every provider carries the merchant's order reference.
    merchant_reference: Option<String>,
}

/// Reads the stream, fulfils each payment, and acknowledges each entry.
struct Consumer<'a> {
    conn: &'a mut MultiplexedConnection,
    settings: &'a Settings,
    fulfilled: Fulfillments,
    /// The number of events handled so far, counted against `MAX_EVENTS`.
    handled: u64,
}

impl<'a> Consumer<'a> {
    fn new(conn: &'a mut MultiplexedConnection, settings: &'a Settings) -> Self {
        Self { conn, settings, fulfilled: Fulfillments::default(), handled: 0 }
    }

    async fn run(mut self) -> Result<()> {
        // 1. Entries that were delivered to this consumer before, but never
        //    acknowledged, for example because the process crashed. Reading
        //    with an id instead of `>` returns this consumer's pending entries
        //    after that id. It starts at `0` and moves past each batch, so an
        //    entry this run leaves pending is not read again in a loop.
        let mut after = "0".to_owned();
        while let Some(batch) = self.read(&after).await? {
            let Some(last) = batch.last() else { break };
            after = last.id.clone();
            self.handle_batch(&batch).await?;
        }
        // 2. New entries: `>` means "never delivered to any consumer in
        //    this group". Each one is delivered to just one consumer.
        while !self.finished() {
            if let Some(batch) = self.read(">").await? {
                self.handle_batch(&batch).await?;
            }
        }
        Ok(())
    }

    /// `XREADGROUP GROUP <group> <consumer> COUNT <n> [BLOCK <ms>] STREAMS
    /// <stream> <id>`. Returns `None` when nothing is left to read: a blocked
    /// read that timed out, or, for the pending entries, the end of the
    /// list. Also returns `None` when `MAX_EVENTS` has been reached.
    async fn read(&mut self, id: &str) -> Result<Option<Vec<StreamId>>> {
        // Never take more entries than we will handle. An entry read but not
        // handled would stay pending until the next start-up.
        let count = match self.settings.max_events {
            Some(max) => BATCH.min(max.saturating_sub(self.handled)),
            None => BATCH,
        };
        if count == 0 {
            return Ok(None);
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.settings.group).arg(&self.settings.consumer).arg("COUNT").arg(count);
        // Only new entries need a wait. Pending entries are there already.
        if id == ">" {
            cmd.arg("BLOCK").arg(BLOCK_MS);
        }
        cmd.arg("STREAMS").arg(&self.settings.stream).arg(id);
        // A blocked read that times out replies with nil, hence the `Option`.
        let reply: Option<StreamReadReply> =
            cmd.query_async(self.conn).await.with_context(|| format!("XREADGROUP on {}", self.settings.stream))?;
        // We read one stream, so the reply has at most one key.
        let entries: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
        Ok((!entries.is_empty()).then_some(entries))
    }

    async fn handle_batch(&mut self, entries: &[StreamId]) -> Result<()> {
        for entry in entries {
            self.handle(entry).await?;
        }
        Ok(())
    }

    /// Handles one stream entry.
    ///
    /// Returns an error only if the side effect or the XACK fails. The caller
    /// then stops the process, and the entry stays pending until the next
    /// start-up. A malformed entry is reported and left pending, so an
    /// operator can inspect it with `XPENDING`/`XRANGE`. A real service would
    /// also move it to a dead-letter store, so it doesn't return at every
    /// start-up.
    async fn handle(&mut self, entry: &StreamId) -> Result<()> {
        // A pending entry that was deleted from the stream (by trimming, for
        // example) comes back without fields. There is nothing left to
        // process, so just remove it from the pending list.
        if entry.map.is_empty() {
            eprintln!("entry {} no longer exists in the stream; acknowledging it", entry.id);
            return self.ack(&entry.id).await;
        }
        let Some(json) = entry.get::<String>("event") else {
            eprintln!("entry {}: no `event` field; leaving it pending", entry.id);
            return Ok(());
        };
        let event: Event = match serde_json::from_str(&json) {
            Ok(event) => event,
            Err(e) => {
                eprintln!("entry {}: the event is not valid: {e}; leaving it pending", entry.id);
                return Ok(());
            }
        };

        // Do the side effect first, then XACK. If the process stops between
        // the two steps, the entry is delivered again (at-least-once). If we
        // acked first, a crash could lose the order (at-most-once).
        self.fulfilled.fulfill(&event).await?;
        self.ack(&entry.id).await?;
        self.handled += 1;
        Ok(())
    }

    /// `XACK <stream> <group> <entry id>`: removes the entry from this
    /// group's pending list. Other groups (other services) are not affected.
    async fn ack(&mut self, entry_id: &str) -> Result<()> {
        let _acked: u64 = redis::cmd("XACK")
            .arg(&self.settings.stream)
            .arg(&self.settings.group)
            .arg(entry_id)
            .query_async(self.conn)
            .await
            .with_context(|| format!("XACK {entry_id}"))?;
        Ok(())
    }

    fn finished(&self) -> bool {
        self.settings.max_events.is_some_and(|max| self.handled >= max)
    }
}

/// The service's side effect: shipping the order. This example only prints.
///
/// Make the side effect idempotent on the event id. payhook derives the
/// event `id` from the idempotency key (`{provider}:{paymentId}`), so the id
/// is the same for one payment however many times the provider sends its
/// webhook. payhook dedupes before it publishes (for as long as it keeps its
/// dedupe record), but this service's own processing is at-least-once: a
/// crash between the side effect and the XACK redelivers the entry. A real
/// service records the event id in the same database transaction as the side
/// effect, with a unique constraint, e.g. `INSERT INTO fulfillments
/// (event_id, ...) VALUES (...) ON CONFLICT (event_id) DO NOTHING`, and does
/// nothing if the row exists already.
///
/// The in-memory set below only shows the idea. It is empty after a restart,
/// and a restart is when most redeliveries happen.
#[derive(Default)]
struct Fulfillments {
    done: HashSet<String>,
}

impl Fulfillments {
    async fn fulfill(&mut self, event: &Event) -> Result<()> {
        let p = &event.data;
        if !self.done.insert(event.id.clone()) {
            println!("event={} payment={} already fulfilled, skipped", event.id, p.payment_id);
            return Ok(());
        }
        println!(
            "event={} payment={} amount={} currency={} merchantReference={}",
            event.id,
            p.payment_id,
            p.amount,
            p.currency,
            p.merchant_reference.as_deref().unwrap_or("-"),
        );
        Ok(())
    }
}
