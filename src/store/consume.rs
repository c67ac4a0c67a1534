//! The processors' side of `{p}:arrivals`: the consumer group, reading new
//! and own pending arrivals, claiming stale ones, settling a batch, and
//! parsing an entry back into an [`Arrival`] (its body opened if sealed).
//! Appending is `arrivals`'s; trimming is `maintenance`'s.

use std::{collections::HashMap, sync::LazyLock, time::Duration};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use redis::{
    streams::{StreamClaimReply, StreamId, StreamPendingCountReply},
    Script, Value,
};

use super::{
    arrivals::{associated, entry_id},
    keys::PROCESSORS_GROUP,
    sealing::Sealer,
    DeadLetter, Store, StoreError, RETRY_CONSUMER,
};
use crate::domain::{Arrival, ArrivalId, Headers, RequestId, Shard, SourceName, WebhookRequest};

/// Claims pending arrivals and reports those deleted while pending.
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("claim.lua")));

/// `XREADGROUP`'s reply (nil when nothing came): per stream, its entries,
/// each an id with its fields. Read by value, since redis-rs's
/// `StreamReadReply` first copies the whole reply, every body included.
type ReadReply = Option<Vec<HashMap<String, Vec<HashMap<String, HashMap<String, Value>>>>>>;

/// Arrivals taken over by a processor.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The arrivals, now pending with the claiming processor.
    pub entries: Vec<ArrivalEntry>,
    /// Arrivals that were pending but had been deleted from the stream (by
    /// `XDEL`, or trimmed by an older payhook): answered 2xx and never to be
    /// processed. They are acknowledged, so they are reported only once.
    pub lost: Vec<ArrivalId>,
}

/// One entry read from the arrivals stream: the arrival, or why it cannot be
/// one (an entry payhook did not write, or one from an incompatible version).
#[derive(Debug)]
pub struct ArrivalEntry {
    /// The entry id.
    pub id: ArrivalId,
    /// The parsed arrival, or the name of the field at fault.
    pub arrival: Result<Arrival, String>,
    /// How many times the group has delivered it, this delivery included.
    pub deliveries: u32,
}

impl Store {
    /// Creates the processors' group (and the stream) of every shard where
    /// missing. The group starts at the beginning, so arrivals stored by an
    /// ingress-only gateway before any processor ran are processed too.
    pub async fn ensure_group(&self) -> Result<(), StoreError> {
        for shard in self.keys.shards() {
            let created: Result<String, _> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(self.keys.arrivals(shard))
                .arg(PROCESSORS_GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.connection())
                .await;
            match created {
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                other => other.map(drop)?,
            }
        }
        Ok(())
    }

    /// Up to `count` arrivals of `shard` never delivered to any processor,
    /// waiting up to `block` for the first (`None`: not at all). Use on a
    /// [dedicated](Store::dedicated) store.
    pub async fn read_new(
        &self,
        shard: Shard,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<ArrivalEntry>, StoreError> {
        let entries = self.read_group(shard, consumer, count, block, ">").await?;
        Ok(entries.into_iter().map(|entry| self.parse_entry(entry, shard, 1)).collect())
    }

    /// Up to `count` arrivals this consumer was given but has not settled:
    /// after a failed round (Redis went away mid-batch), a processor takes
    /// its own batch up again at once instead of waiting for the visibility
    /// timeout.
    pub async fn read_own_pending(
        &self,
        shard: Shard,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<ArrivalEntry>, StoreError> {
        let entries = self.read_group(shard, consumer, count, None, "0").await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let deliveries = self.deliveries(shard, consumer, &entries).await?;
        let with_count = |entry: StreamId| {
            let count = deliveries.get(&entry.id).copied().unwrap_or(1);
            self.parse_entry(entry, shard, count)
        };
        Ok(entries.into_iter().map(with_count).collect())
    }

    /// `XREADGROUP` on `shard`'s arrivals: `>` for new entries, `0` for this
    /// consumer's own pending ones.
    async fn read_group(
        &self,
        shard: Shard,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
        from: &str,
    ) -> Result<Vec<StreamId>, StoreError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(PROCESSORS_GROUP).arg(consumer).arg("COUNT").arg(count);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX));
        }
        cmd.arg("STREAMS").arg(self.keys.arrivals(shard)).arg(from);
        let reply: ReadReply = cmd.query_async(&mut self.connection()).await?;
        let entries = reply.into_iter().flatten().flat_map(HashMap::into_values).flatten().flatten();
        Ok(entries.map(|(id, map)| StreamId { id, map, ..StreamId::default() }).collect())
    }

    /// Takes over up to `count` arrivals that another processor received but
    /// has not acknowledged for `min_idle`: it crashed, or lost Redis.
    /// Arrivals parked for a retry are left alone: they wait for their
    /// backoff, however long, not for the visibility timeout
    /// ([`Store::claim_due`]).
    pub async fn claim_stale(
        &self,
        shard: Shard,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Claimed, StoreError> {
        self.claim(shard, consumer, min_idle, count, &[]).await
    }

    /// Claims `ids` for `consumer` (or, with none, searches the pending
    /// arrivals of every consumer but the retry pseudo-consumer), each only
    /// if still pending and idle for `min_idle`. One Lua step, so an arrival
    /// acknowledged by another processor in the meantime is neither claimed
    /// nor mistaken for a lost one.
    pub(super) async fn claim(
        &self,
        shard: Shard,
        consumer: &str,
        min_idle: Duration,
        count: usize,
        ids: &[&str],
    ) -> Result<Claimed, StoreError> {
        let (claimed, before, lost): (StreamClaimReply, Vec<(String, u32)>, Vec<String>) = CLAIM
            .key(self.keys.arrivals(shard))
            .arg(PROCESSORS_GROUP)
            .arg(consumer)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(count)
            .arg(RETRY_CONSUMER)
            .arg(ids)
            .invoke_async(&mut self.connection())
            .await?;
        let before: HashMap<String, u32> = before.into_iter().collect();
        let entries = claimed.ids.into_iter().map(|entry| {
            // This claim is a delivery too.
            let deliveries = before.get(&entry.id).map_or(1, |n| n.saturating_add(1));
            self.parse_entry(entry, shard, deliveries)
        });
        let lost = lost.iter().map(|id| entry_id(id, shard)).collect();
        Ok(Claimed { entries: entries.collect(), lost })
    }

    /// Delivery counts of entries `consumer` holds (from `XPENDING`), which
    /// is what `max_attempts` is measured against.
    async fn deliveries(
        &self,
        shard: Shard,
        consumer: &str,
        entries: &[StreamId],
    ) -> Result<HashMap<String, u32>, StoreError> {
        let (first, last) = (&entries[0].id, &entries[entries.len() - 1].id);
        let reply: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(self.keys.arrivals(shard))
            .arg(PROCESSORS_GROUP)
            .arg(first)
            .arg(last)
            .arg(entries.len())
            .arg(consumer)
            .query_async(&mut self.connection())
            .await?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(reply.ids.into_iter().map(|p| (p.id, count(p.times_delivered))).collect())
    }

    /// Acknowledges `done`, moves `dead` to the DLQ (acknowledging them too)
    /// and parks `retry` until their backoff passes: for each shard, in one
    /// MULTI/EXEC on that shard's stream and dead letters (one slot), so a
    /// dead letter is never both in the DLQ and still pending.
    pub async fn settle(&self, done: &[ArrivalId], dead: &[DeadLetter], retry: &[ArrivalId]) -> Result<(), StoreError> {
        let shards = done.iter().chain(retry).chain(dead.iter().map(|d| &d.arrival_id)).map(ArrivalId::shard);
        let shards: std::collections::BTreeSet<Shard> = shards.collect();
        for shard in shards {
            let mine = |ids: &[ArrivalId]| ids.iter().filter(|id| id.shard() == shard).cloned().collect::<Vec<_>>();
            let dead: Vec<&DeadLetter> = dead.iter().filter(|d| d.arrival_id.shard() == shard).collect();
            self.settle_shard(shard, &mine(done), &dead, &mine(retry)).await?;
        }
        Ok(())
    }

    async fn settle_shard(
        &self,
        shard: Shard,
        done: &[ArrivalId],
        dead: &[&DeadLetter],
        retry: &[ArrivalId],
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.park(&mut pipe, shard, retry);
        for letter in dead {
            letter.add_to(&mut pipe, self.keys.dlq(shard));
        }
        let ids: Vec<&str> = done.iter().chain(dead.iter().map(|d| &d.arrival_id)).map(ArrivalId::entry).collect();
        if !ids.is_empty() {
            pipe.cmd("XACK").arg(self.keys.arrivals(shard)).arg(PROCESSORS_GROUP).arg(ids).ignore();
        }
        pipe.query_async::<()>(&mut self.connection()).await?;
        Ok(())
    }

    /// Number of entries in the arrivals streams of every shard.
    pub async fn arrivals_len(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        for shard in self.keys.shards() {
            total += self.stream_len(self.keys.arrivals(shard)).await?;
        }
        Ok(total)
    }
}

impl Store {
    /// An entry as read from the stream, its body opened if it was sealed.
    pub(super) fn parse_entry(&self, entry: StreamId, shard: Shard, deliveries: u32) -> ArrivalEntry {
        let id = entry_id(&entry.id, shard);
        let arrival = parse_arrival(id.clone(), entry.map, self.sealer.as_deref());
        ArrivalEntry { id, arrival, deliveries }
    }
}

fn parse_arrival(id: ArrivalId, mut map: HashMap<String, Value>, sealer: Option<&Sealer>) -> Result<Arrival, String> {
    let mut take = |field: &str| match map.remove(field) {
        Some(Value::BulkString(bytes)) => Ok(bytes),
        _ => Err(field.to_owned()),
    };
    let text = |bytes: Vec<u8>, field: &str| String::from_utf8(bytes).map_err(|_| field.to_owned());
    let source = SourceName::parse(&text(take("source")?, "source")?).map_err(|_| "source".to_owned())?;
    let provider = text(take("provider")?, "provider")?;
    let received_text = text(take("received_at")?, "received_at")?;
    let received_at =
        DateTime::parse_from_rfc3339(&received_text).map_err(|_| "received_at".to_owned())?.with_timezone(&Utc);
    let headers: Headers = serde_json::from_slice(&take("headers")?).map_err(|_| "headers".to_owned())?;
    let mut body = take("body")?;
    if let Ok(key_id) = take("key_id") {
        let unsealed = || "body (cannot be decrypted with the configured keys)".to_owned();
        let key_id = String::from_utf8(key_id).map_err(|_| unsealed())?;
        let aad = associated(source.as_str(), &provider, &received_text);
        body = sealer.and_then(|s| s.open(&key_id, &aad, &body)).ok_or_else(unsealed)?;
    }
    let body = Bytes::from(body);
    let request_id =
        RequestId::parse(&text(take("request_id")?, "request_id")?).map_err(|_| "request_id".to_owned())?;
    Ok(Arrival { id, source, provider, request: WebhookRequest { headers, body, received_at }, request_id })
}
