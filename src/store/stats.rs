//! The backlog at a glance: what operators look at first.

use redis::Value;
use serde::Serialize;

use super::{keys::PROCESSORS_GROUP, Store, StoreError};
use crate::domain::Shard;

/// Throughput over a short window, per second.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Arrivals stored.
    pub arrivals_per_sec: f64,
    /// Events published (all partitions).
    pub events_per_sec: f64,
    /// Arrivals dead-lettered.
    pub dead_letters_per_sec: f64,
}

/// Entries ever added to each kind of stream (Redis's `entries-added`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Arrivals stored.
    pub arrivals: u64,
    /// Events published, all partitions.
    pub events: u64,
    /// Dead letters written.
    pub dead_letters: u64,
}

/// Backlog, lag and dead letters, over every arrival shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Entries kept in the arrivals streams.
    pub arrivals: u64,
    /// Arrivals delivered to a processor and not yet acknowledged.
    pub pending: u64,
    /// Arrivals not yet delivered to any processor.
    pub lag: u64,
    /// Age in seconds of the oldest unacknowledged arrival, pending or not
    /// yet delivered (0 if none), so it grows while every processor is down.
    pub oldest_pending_age_secs: u64,
    /// Dead letters.
    pub dlq: u64,
    /// The same, shard by shard (one entry with one shard).
    pub shards: Vec<ShardStats>,
}

/// The backlog of one arrival shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShardStats {
    /// The shard's index.
    pub shard: u32,
    /// Its arrivals stream.
    pub stream: String,
    /// Entries kept in it.
    pub arrivals: u64,
    /// Delivered, not yet acknowledged.
    pub pending: u64,
    /// Not yet delivered.
    pub lag: u64,
    /// Age in seconds of its oldest unacknowledged arrival.
    pub oldest_pending_age_secs: u64,
    /// Its dead letters.
    pub dlq: u64,
}

impl Stats {
    /// The totals of `shards`; the oldest age is the oldest of any shard.
    fn of(shards: Vec<ShardStats>) -> Self {
        let sum = |field: fn(&ShardStats) -> u64| shards.iter().map(field).sum();
        Self {
            arrivals: sum(|s| s.arrivals),
            pending: sum(|s| s.pending),
            lag: sum(|s| s.lag),
            oldest_pending_age_secs: shards.iter().map(|s| s.oldest_pending_age_secs).max().unwrap_or(0),
            dlq: sum(|s| s.dlq),
            shards,
        }
    }
}

impl Store {
    /// Reads the backlog of every shard from `XINFO GROUPS`, `XLEN` and the
    /// maintenance script (in its read-only form) for the oldest
    /// unacknowledged arrival.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let mut shards = Vec::with_capacity(self.keys.shard_count());
        for shard in self.keys.shards() {
            shards.push(self.shard_stats(shard).await?);
        }
        Ok(Stats::of(shards))
    }

    async fn shard_stats(&self, shard: Shard) -> Result<ShardStats, StoreError> {
        let stream = self.keys.arrivals(shard);
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(&mut self.connection())
            .await
            .unwrap_or(Value::Nil);
        let arrivals = self.stream_len(stream).await?;
        // No group yet: no processor has run, so every arrival is lag.
        let (pending, lag) = group_numbers(&groups).unwrap_or((0, arrivals));
        Ok(ShardStats {
            shard: shard.index(),
            stream: stream.to_owned(),
            arrivals,
            pending,
            lag,
            oldest_pending_age_secs: self.oldest_unacknowledged_age(shard).await?.as_secs(),
            dlq: self.dlq_len(shard).await?,
        })
    }
}

impl Store {
    /// Throughput measured over `window`: the streams' `entries-added`
    /// counters read twice. (Redis keeps no per-time count, and reading the
    /// entries themselves would move their bodies.)
    pub async fn rates(
        &self,
        partitions: std::num::NonZeroU32,
        window: std::time::Duration,
    ) -> Result<Rates, StoreError> {
        let shards = self.keys.shard_count();
        let keys: Vec<String> = (self.keys.shards().map(|s| self.keys.arrivals(s).to_owned()))
            .chain(self.keys.shards().map(|s| self.keys.dlq(s).to_owned()))
            .chain((0..partitions.get()).map(|n| self.keys.events(crate::domain::Partition::from_index(n))))
            .collect();
        let before = self.entries_added(&keys).await?;
        tokio::time::sleep(window).await;
        let after = self.entries_added(&keys).await?;
        let per_sec = |range: std::ops::Range<usize>| {
            let delta: u64 = range.map(|i| after[i].saturating_sub(before[i])).sum();
            delta as f64 / window.as_secs_f64()
        };
        Ok(Rates {
            arrivals_per_sec: per_sec(0..shards),
            dead_letters_per_sec: per_sec(shards..2 * shards),
            events_per_sec: per_sec(2 * shards..keys.len()),
        })
    }

    /// How many entries were ever added to the arrivals, events (all
    /// partitions) and DLQ streams: a caller that reads it twice gets rates
    /// without waiting here (the console polls it).
    pub async fn totals(&self, partitions: std::num::NonZeroU32) -> Result<Totals, StoreError> {
        let events: Vec<String> =
            (0..partitions.get()).map(|n| self.keys.events(crate::domain::Partition::from_index(n))).collect();
        let arrivals: Vec<String> = self.keys.shards().map(|s| self.keys.arrivals(s).to_owned()).collect();
        let dlqs: Vec<String> = self.keys.shards().map(|s| self.keys.dlq(s).to_owned()).collect();
        Ok(Totals {
            arrivals: self.entries_added(&arrivals).await?.iter().sum(),
            dead_letters: self.entries_added(&dlqs).await?.iter().sum(),
            events: self.entries_added(&events).await?.iter().sum(),
        })
    }

    /// `entries-added` of each stream (0 for one that does not exist yet).
    async fn entries_added(&self, keys: &[String]) -> Result<Vec<u64>, StoreError> {
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            let info: Result<Value, _> =
                redis::cmd("XINFO").arg("STREAM").arg(key).query_async(&mut self.connection()).await;
            let info = match info {
                Ok(info) => info,
                Err(e) if e.code() == Some("ERR") => Value::Nil,
                Err(e) => return Err(e.into()),
            };
            counts.push(field(&info, "entries-added").unwrap_or(0));
        }
        Ok(counts)
    }
}

/// A numeric field of an `XINFO` reply (RESP2 flat pairs or RESP3 map).
fn field(reply: &Value, name: &str) -> Option<u64> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Array(items) => {
            items.chunks(2).filter(|kv| kv.len() == 2).map(|kv| (kv[0].clone(), kv[1].clone())).collect()
        }
        Value::Map(map) => map.clone(),
        _ => return None,
    };
    pairs.into_iter().find_map(|(k, v)| {
        (redis::from_redis_value::<String>(k).ok()? == name).then(|| redis::from_redis_value::<u64>(v).ok()).flatten()
    })
}

/// `pending` and `lag` of the processors group, if it exists.
fn group_numbers(groups: &Value) -> Option<(u64, u64)> {
    let Value::Array(groups) = groups else { return None };
    for group in groups {
        let fields: Vec<(String, Value)> = match group {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| Some((redis::from_redis_value::<String>(kv[0].clone()).ok()?, kv.get(1)?.clone())))
                .collect(),
            Value::Map(map) => map
                .iter()
                .filter_map(|(k, v)| Some((redis::from_redis_value::<String>(k.clone()).ok()?, v.clone())))
                .collect(),
            _ => continue,
        };
        let get = |name: &str| {
            fields.iter().find(|(k, _)| k == name).and_then(|(_, v)| redis::from_redis_value::<u64>(v.clone()).ok())
        };
        if fields.iter().any(|(k, v)| {
            k == "name" && redis::from_redis_value::<String>(v.clone()).ok().as_deref() == Some(PROCESSORS_GROUP)
        }) {
            return Some((get("pending").unwrap_or(0), get("lag").unwrap_or(0)));
        }
    }
    None
}
