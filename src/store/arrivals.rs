//! `{p}:arrivals` (one stream per shard): append at ingress, and record
//! rejections. Reading, reclaiming and acknowledging are the processors'
//! (`consume`); trimming is `maintenance`'s.
//!
//! The ingress puts an arrival in the shard given by a stable hash of its
//! replay guard (the signed identity of the delivery), so every copy of a
//! delivery meets its guard in one shard; an arrival without a guard goes by
//! a hash of its body. Order is kept within a shard, not across shards.
//!
//! Entry fields: `source`, `provider`, `received_at` (RFC 3339, ms), `headers`
//! (JSON object of kept headers), `body` (the exact raw bytes), `request_id`.
//! The entry id is the arrival id.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::{Script, Value};

use super::{appender::Appender, Store, StoreError};
use crate::{
    domain::{ArrivalId, Shard},
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
pub(super) fn entry_id(id: &str, shard: Shard) -> ArrivalId {
    ArrivalId::in_shard(id, shard).expect("Redis names stream entries <ms>-<seq>")
}

/// How many rejected requests `{p}:rejected` keeps (approximately).
const REJECTED_CAP: usize = 10_000;

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

    /// `XLEN` of `key`.
    pub(super) async fn stream_len(&self, key: &str) -> Result<u64, StoreError> {
        Ok(redis::cmd("XLEN").arg(key).query_async(&mut self.connection()).await?)
    }
}

/// What a sealed body is bound to: it opens only in its own entry.
pub(super) fn associated(source: &str, provider: &str, received_at: &str) -> Vec<u8> {
    format!("{source}\n{provider}\n{received_at}").into_bytes()
}
