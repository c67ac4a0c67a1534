//! `{p}:arrivals` (one stream per shard): append at ingress; read, reclaim
//! and acknowledge in processors. Trimming is the processors' side's job
//! (`maintenance`).
//!
//! The ingress puts an arrival in the shard given by a stable hash of its
//! replay guard (the signed identity of the delivery), so every copy of a
//! delivery meets its guard in one shard; an arrival without a guard goes by
//! a hash of its body. Order is kept within a shard, not across shards.
//!
//! Entry fields: `source`, `provider`, `received_at` (RFC 3339, ms), `headers`
//! (JSON object of kept headers), `body` (the exact raw bytes), `request_id`.
//! The entry id is the arrival id.

use std::{collections::HashMap, sync::LazyLock, time::Duration};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use redis::{
    streams::{StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply},
    Script, Value,
};

use super::{
    appender::Appender, keys::PROCESSORS_GROUP, sealing::Sealer, DeadLetter, Store, StoreError, RETRY_CONSUMER,
};
use crate::{
    domain::{Arrival, ArrivalId, Headers, RequestId, Shard, SourceName, WebhookRequest},
    providers::VerifiedArrival,
};

/// The check-and-append script for arrivals with a replay guard.
static STORE_ONCE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("store_once.lua")));

/// How many bytes of the delivery's and the body's SHA-256 a guard keeps:
/// 128 bits, so that neither a chance collision among the guards alive at
/// once nor a second body matching a PayPal delivery's is within reach,
/// for 32 bytes less per guard.
const GUARD_BYTES: usize = 16;

/// The guards that expire in one second are spread over this many hashes by
/// the delivery's hash, so that up to about 60,000 deliveries a second per
/// shard each hash stays within Redis's compact encoding (listpack, up to
/// `hash-max-listpack-entries`, 128 by default): about 40 bytes a guard
/// instead of 110 in a hash table.
const GUARD_SLICES: u16 = 512;

/// What [`Store::append`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored as a new arrival.
    Stored(ArrivalId),
    /// An exact replay of a delivery stored earlier, answered by that
    /// arrival: nothing was stored.
    Replayed(ArrivalId),
    /// Another body under a delivery stored earlier: nothing was stored.
    /// Only where a checksum rather than the signature covers the body
    /// (PayPal's CRC-32) can this pass verification, and there it is a
    /// forgery.
    Conflict,
}

/// One reply of a pipeline, typed.
fn parse<T: redis::FromRedisValue>(reply: Value) -> Result<T, StoreError> {
    redis::from_redis_value(reply).map_err(|e| StoreError::Redis(e.into()))
}

/// The script's `{outcome, entry id}` in `shard`. A replay's id is read from
/// the guard key, so it is checked rather than trusted.
fn guarded((outcome, id): (String, String), shard: Shard) -> Result<Appended, StoreError> {
    let unexpected = |what| StoreError::Redis((redis::ErrorKind::UnexpectedReturnType, what).into());
    match outcome.as_str() {
        "stored" => Ok(Appended::Stored(entry_id(&id, shard))),
        "replayed" => {
            ArrivalId::in_shard(&id, shard).map(Appended::Replayed).map_err(|_| unexpected("replay guard value"))
        }
        "conflict" => Ok(Appended::Conflict),
        _ => Err(unexpected("store_once.lua outcome")),
    }
}

/// The arrival id of entry `id` of `shard`'s stream.
///
/// # Panics
/// Never: Redis names stream entries `<ms>-<seq>`.
fn entry_id(id: &str, shard: Shard) -> ArrivalId {
    ArrivalId::in_shard(id, shard).expect("Redis names stream entries <ms>-<seq>")
}

/// Claims pending arrivals and reports those deleted while pending.
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("claim.lua")));

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

/// How many rejected requests `{p}:rejected` keeps (approximately).
const REJECTED_CAP: usize = 10_000;

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

/// A verification failure, kept for forensics without body or signature.
#[derive(Debug)]
pub struct Rejected<'a> {
    /// The source named in the URL (only configured names reach here).
    pub source: &'a str,
    /// The contract code, e.g. `invalid_signature`.
    pub reason: &'static str,
    /// Arrival time.
    pub received_at: DateTime<Utc>,
    /// Peer address.
    pub remote_addr: String,
    /// Body length in bytes.
    pub body_len: usize,
}

impl Store {
    /// Appends a verified arrival; its entry id is the arrival id. It does
    /// not trim: only the processors' side knows which arrivals are still
    /// unacknowledged (see [`Store::maintain`]).
    ///
    /// An arrival with a [guard](VerifiedArrival::guard) is stored only if
    /// its signed delivery was not stored before (`store_once.lua`): check
    /// and append are one Lua step, so they cost one round trip and no two
    /// copies can both pass.
    ///
    /// With `wait_replicas`, `WAIT` follows in the same pipeline, so it runs
    /// on the connection that sent the append, right after it: it counts the
    /// replicas that hold every write that connection made, the append
    /// included (for a replay, the script's rewrite of the guard, which a
    /// replica can only hold after the first copy). `WAIT` blocks the shared
    /// connection while it waits: this trades ingest rate for surviving the
    /// loss of the primary.
    pub async fn append(&self, arrival: &VerifiedArrival) -> Result<Appended, StoreError> {
        let shard = self.shard_of(arrival);
        let committed = self.appender(shard).commit(self.append_command(arrival, shard)).await?;
        let appended = match arrival.guard() {
            Some(_) => guarded(parse(committed.append)?, shard)?,
            None => Appended::Stored(entry_id(&parse::<String>(committed.append)?, shard)),
        };
        if let (Some((wanted, _)), Some(acked)) = (self.replication, committed.replicas) {
            // A refused body was not stored: there is nothing to wait for.
            if acked < wanted && appended != Appended::Conflict {
                return Err(StoreError::NotReplicated { wanted, acked });
            }
        }
        Ok(appended)
    }

    /// The shard of `arrival`: by its replay guard (already a SHA-256, so
    /// its first bytes are an even hash), else by a CRC-32 of its body. With
    /// one shard, no hashing at all.
    fn shard_of(&self, arrival: &VerifiedArrival) -> Shard {
        if self.keys.shard_count() == 1 {
            return Shard::new(0);
        }
        let hash = match arrival.guard() {
            Some(guard) => u32::from_be_bytes([guard.key[0], guard.key[1], guard.key[2], guard.key[3]]),
            None => crc32fast::hash(&arrival.request().body),
        };
        self.keys.shard_for(hash)
    }

    /// The group-commit task of `shard` (see `appender`), started on first
    /// use. One per shard: a batch, and the `WAIT` after it, stay in the
    /// shard's slot, so on a cluster they go to the master that takes them.
    fn appender(&self, shard: Shard) -> &Appender {
        self.appenders[shard.index() as usize]
            .get_or_init(|| Appender::start(self.connection(), self.replication, &STORE_ONCE))
    }

    /// The append to `shard`: plain, or through the guard's script.
    fn append_command(&self, arrival: &VerifiedArrival, shard: Shard) -> redis::Cmd {
        let mut cmd = match arrival.guard() {
            Some(guard) => {
                // EVALSHA written out rather than through a `ScriptInvocation`,
                // which would copy every argument, the body included, once more.
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(STORE_ONCE.get_hash()).arg(2).arg(self.keys.arrivals(shard));
                let ttl_ms = i64::try_from(guard.ttl.as_millis()).unwrap_or(i64::MAX).max(1);
                if guard.timed {
                    // Every copy stops verifying at this instant: its bucket
                    // is that second (and a slice of the deliveries by hash),
                    // and lives to the second's end (a TTL from this arrival).
                    let received_ms = arrival.request().received_at.timestamp_millis();
                    let second = received_ms.saturating_add(ttl_ms).div_euclid(1000);
                    let slice = u16::from_be_bytes([guard.key[4], guard.key[5]]) % GUARD_SLICES;
                    cmd.arg(self.keys.seen_bucket(shard, second, slice))
                        .arg(&guard.key[..GUARD_BYTES])
                        .arg(((second + 1) * 1000).saturating_sub(received_ms).max(1));
                } else {
                    cmd.arg(self.keys.seen(shard, &hex::encode(guard.key))).arg("").arg(ttl_ms);
                }
                cmd.arg(guard.body_hash.as_ref().map_or(&[][..], |hash| &hash[..GUARD_BYTES]));
                cmd
            }
            None => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(self.keys.arrivals(shard)).arg("*");
                cmd
            }
        };
        self.add_fields(&mut cmd, arrival);
        cmd
    }

    /// Adds the entry's field/value pairs to the command `pipe`,
    /// the body sealed if encryption is on. Values are written straight into
    /// the command: the body is copied once, into the request to Redis.
    fn add_fields(&self, pipe: &mut redis::Cmd, arrival: &VerifiedArrival) {
        let request = arrival.request();
        let headers = serde_json::to_vec(&request.headers).expect("a string map always serializes");
        let received_at = request.received_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        pipe.arg("source")
            .arg(arrival.source().as_str())
            .arg("provider")
            .arg(arrival.provider())
            .arg("received_at")
            .arg(&received_at)
            .arg("headers")
            .arg(headers)
            .arg("request_id")
            .arg(arrival.request_id().as_str());
        match &self.sealer {
            None => {
                pipe.arg("body").arg(&request.body[..]);
            }
            Some(sealer) => {
                let aad = associated(arrival.source().as_str(), arrival.provider(), &received_at);
                let (key_id, sealed) = sealer.seal(&aad, &request.body);
                pipe.arg("body").arg(sealed).arg("key_id").arg(key_id);
            }
        }
    }

    /// Records a rejected request in the capped `{p}:rejected` stream.
    pub async fn record_rejection(&self, rejected: &Rejected<'_>) -> Result<(), StoreError> {
        let _: String = redis::cmd("XADD")
            .arg(self.keys.rejected())
            .arg("MAXLEN")
            .arg("~")
            .arg(REJECTED_CAP)
            .arg("*")
            .arg("source")
            .arg(rejected.source)
            .arg("reason")
            .arg(rejected.reason)
            .arg("received_at")
            .arg(rejected.received_at.to_rfc3339_opts(SecondsFormat::Millis, true))
            .arg("remote_addr")
            .arg(&rejected.remote_addr)
            .arg("body_length")
            .arg(rejected.body_len)
            .query_async(&mut self.connection())
            .await?;
        Ok(())
    }

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
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.connection()).await?;
        Ok(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect())
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

    /// `XLEN` of `key`.
    pub(super) async fn stream_len(&self, key: &str) -> Result<u64, StoreError> {
        Ok(redis::cmd("XLEN").arg(key).query_async(&mut self.connection()).await?)
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

/// What a sealed body is bound to: it opens only in its own entry.
fn associated(source: &str, provider: &str, received_at: &str) -> Vec<u8> {
    format!("{source}\n{provider}\n{received_at}").into_bytes()
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
