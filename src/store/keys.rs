//! Every Redis key payhook uses, declared in one place.
//!
//! One node with `arrival_shards = 1` (the default) keeps the contract's
//! names:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{p}:arrivals` | stream, group `processors` | one entry per stored delivery |
//! | `{p}:idem:{N}:{key}` | string (JSON), TTL | what was published for an idempotency key |
//! | `{p}:events:payment.succeeded.v1:{N}` | stream | the published events of partition N |
//! | `{p}:dlq` | stream | dead letters |
//! | `{p}:rejected` | capped stream | verification failures, for forensics |
//! | `{p}:layout` | hash | the partitions, arrival shards and key version the data was written with |
//! | `{p}:seen:{{p}:arrivals}:t<unix s>:<slice>` | hash, expires at the second's end | replay guards of the signed deliveries that stop verifying in that second, one of 512 slices by hash: first 16 bytes of the delivery's SHA-256 → the first arrival id (after 16 bytes of the body's SHA-256 where only a checksum binds the body), to drop exact replays |
//! | `{p}:seen:{{p}:arrivals}:<sha256>` | string, TTL | the guard of a delivery that signs an id but no time (generic `hmac`) |
//! | `{p}:story:{N}:{key}` | capped list of JSON, TTL of the dedupe record | a payment's story: each announcement's outcome |
//! | `{p}:pevent:{N}:<provider event id>` | string, same TTL | the idempotency key a provider event announced |
//!
//! On a Redis Cluster, or with more arrival shards, each shard `K` has its
//! own arrivals stream, dead-letter stream and replay guards, all under the
//! shard's hash tag `{T}`, so that the check-and-append script and the
//! settling MULTI/EXEC (acknowledge + dead letter) stay in one slot:
//!
//! | key | holds |
//! | --- | --- |
//! | `{p}:arrivals:{T}` | shard K's arrivals, group `processors` |
//! | `{p}:dlq:{T}` | dead letters of shard K's arrivals |
//! | `{p}:seen:{T}:t<unix s>`, `{p}:seen:{T}:<sha256>` | replay guards of deliveries stored in shard K |
//!
//! `T` is `aK` (`a0`, `a1`, …), unless that tag's slot lies outside the K-th
//! of `arrival_shards` equal bands of the 16384 slots; then it is the first of
//! `aK.1`, `aK.2`, … that does. So the shards spread evenly over the slot
//! space, and with the even split `redis-cli --cluster create` makes,
//! `arrival_shards` equal to the number of masters puts one shard on each.
//!
//! `{p}` is `redis.key_prefix`. `{N}` is written with its braces: they are a
//! Redis Cluster hash tag, so a payment's dedupe record and its output stream
//! share a slot and the dedupe-and-publish script can touch both atomically.

use std::num::NonZeroU32;

use crate::domain::{IdempotencyKey, Partition, Shard, EVENT_TYPE};

/// The consumer group of the processors on the arrivals streams.
pub const PROCESSORS_GROUP: &str = "processors";

/// Redis Cluster's number of hash slots.
const SLOTS: u32 = 16_384;

/// Key names for one `key_prefix` and shard layout. The names are built
/// once, since the ingress uses them on every request.
#[derive(Debug)]
pub struct Keys {
    prefix: String,
    rejected: String,
    layout: String,
    shards: Vec<ShardKeys>,
}

/// The keys of one arrival shard.
#[derive(Debug)]
struct ShardKeys {
    arrivals: String,
    dlq: String,
    /// `{p}:seen:{tag}:`, to which the delivery's hash is appended.
    seen: String,
}

impl Keys {
    /// Keys under `prefix` for `shards` arrival shards. `tagged` (a cluster,
    /// or more than one shard) gives every shard its own hash tag; untagged
    /// (one node, one shard) keeps the contract's single-node names.
    pub fn new(prefix: &str, shards: NonZeroU32, tagged: bool) -> Self {
        let shard_keys = if tagged {
            (0..shards.get()).map(|k| ShardKeys::tagged(prefix, &shard_tag(k, shards.get()))).collect()
        } else {
            vec![ShardKeys::untagged(prefix)]
        };
        Self {
            prefix: prefix.to_owned(),
            rejected: format!("{prefix}:rejected"),
            layout: format!("{prefix}:layout"),
            shards: shard_keys,
        }
    }

    /// Every arrival shard.
    pub fn shards(&self) -> impl ExactSizeIterator<Item = Shard> + Clone + '_ {
        (0..self.shards.len()).map(|k| Shard::new(k as u32))
    }

    /// The number of arrival shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard with index `n mod shard_count`: stable for a stable `n`.
    pub fn shard_for(&self, n: u32) -> Shard {
        Shard::new(n % self.shards.len() as u32)
    }

    /// Whether `shard` exists in this layout.
    pub fn has(&self, shard: Shard) -> bool {
        (shard.index() as usize) < self.shards.len()
    }

    fn shard(&self, shard: Shard) -> &ShardKeys {
        // Shards come from `shards()`, `shard_for` or an id checked by `has`.
        &self.shards[shard.index() as usize]
    }

    /// The arrivals stream of `shard`.
    pub fn arrivals(&self, shard: Shard) -> &str {
        &self.shard(shard).arrivals
    }

    /// The dead-letter stream of `shard`'s arrivals.
    pub fn dlq(&self, shard: Shard) -> &str {
        &self.shard(shard).dlq
    }

    /// The capped stream of rejected requests.
    pub fn rejected(&self) -> &str {
        &self.rejected
    }

    /// The record of the key layout.
    pub fn layout(&self) -> &str {
        &self.layout
    }

    /// The replay guard of a signed delivery stored in `shard` (hex SHA-256
    /// of its source and signed identity, see `providers::Delivery`). Its
    /// hash tag is the shard's, so on Redis Cluster it shares the stream's
    /// slot and the check-and-append script can touch both.
    pub fn seen(&self, shard: Shard, delivery: &str) -> String {
        format!("{}{delivery}", self.shard(shard).seen)
    }

    /// The replay guards of the deliveries stored in `shard` that stop
    /// verifying in the unix second `second`, slice `slice` of them by
    /// delivery hash (a hash by delivery; see `store_once.lua`). Same hash
    /// tag as [`Keys::seen`].
    pub fn seen_bucket(&self, shard: Shard, second: i64, slice: u16) -> String {
        format!("{}t{second}:{slice}", self.shard(shard).seen)
    }

    /// The dedupe record of `key`, in `partition`'s hash slot.
    pub fn idempotency(&self, partition: Partition, key: &IdempotencyKey) -> String {
        format!("{}:idem:{{{}}}:{key}", self.prefix, partition.index())
    }

    /// The story of `key` (see `store::payments`), in its dedupe record's slot.
    pub fn story(&self, partition: Partition, key: &IdempotencyKey) -> String {
        format!("{}:story:{{{}}}:{key}", self.prefix, partition.index())
    }

    /// The idempotency key announced by the provider event `event_id`, in
    /// `partition` (that of the key it holds, so the publish script can
    /// write it in the same slot).
    pub fn provider_event(&self, partition: Partition, event_id: &str) -> String {
        format!("{}:pevent:{{{}}}:{event_id}", self.prefix, partition.index())
    }

    /// The output stream of `partition`.
    pub fn events(&self, partition: Partition) -> String {
        format!("{}:events:{EVENT_TYPE}:{{{}}}", self.prefix, partition.index())
    }
}

impl ShardKeys {
    fn untagged(prefix: &str) -> Self {
        let arrivals = format!("{prefix}:arrivals");
        // The hash tag is the whole stream name: the stream's own slot.
        let seen = format!("{prefix}:seen:{{{arrivals}}}:");
        Self { arrivals, dlq: format!("{prefix}:dlq"), seen }
    }

    fn tagged(prefix: &str, tag: &str) -> Self {
        Self {
            arrivals: format!("{prefix}:arrivals:{{{tag}}}"),
            dlq: format!("{prefix}:dlq:{{{tag}}}"),
            seen: format!("{prefix}:seen:{{{tag}}}:"),
        }
    }
}

/// The hash tag of shard `k` of `shards`: `ak`, or the first `ak.n` whose
/// slot lies in the k-th of `shards` equal bands of the slot space.
fn shard_tag(k: u32, shards: u32) -> String {
    let band = |slot: u32| slot * shards / SLOTS;
    let base = format!("a{k}");
    if band(slot(&base)) == k {
        return base;
    }
    // Slots of successive suffixes are spread evenly, so a band of
    // 16384/shards slots is hit within a few times `shards` tries.
    (1..).map(|n| format!("{base}.{n}")).find(|tag| band(slot(tag)) == k).expect("every band is eventually hit")
}

/// The Redis Cluster slot of a key or hash tag: CRC-16/XMODEM mod 16384.
fn slot(tag: &str) -> u32 {
    let mut crc: u16 = 0;
    for &byte in tag.as_bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    u32::from(crc) % SLOTS
}

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;
    use crate::domain::PaymentId;

    fn shards(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn names_follow_the_contract_on_one_node_with_one_shard() {
        let keys = Keys::new("payhook", NonZeroU32::MIN, false);
        let key = IdempotencyKey::new("stripe", &PaymentId::parse("pi_1").unwrap());
        let p = Partition::of(&key, NonZeroU32::MIN);
        let only = Shard::new(0);
        assert_eq!(keys.arrivals(only), "payhook:arrivals");
        assert_eq!(keys.dlq(only), "payhook:dlq");
        assert_eq!(keys.idempotency(p, &key), "payhook:idem:{0}:stripe:pi_1");
        assert_eq!(keys.events(p), "payhook:events:payment.succeeded.v1:{0}");
        assert_eq!(keys.story(p, &key), "payhook:story:{0}:stripe:pi_1");
        assert_eq!(keys.provider_event(p, "evt_1"), "payhook:pevent:{0}:evt_1");
        // Hash tag = the arrivals key's whole name: the same Cluster slot.
        assert_eq!(keys.seen(only, "ab12"), "payhook:seen:{payhook:arrivals}:ab12");
    }

    #[test]
    fn each_shard_keeps_its_stream_dead_letters_and_guards_under_one_tag() {
        let keys = Keys::new("payhook", shards(3), true);
        assert_eq!(keys.shard_count(), 3);
        for shard in keys.shards() {
            let tag = format!("a{}", shard.index());
            assert_eq!(keys.arrivals(shard), format!("payhook:arrivals:{{{tag}}}"));
            assert_eq!(keys.dlq(shard), format!("payhook:dlq:{{{tag}}}"));
            assert_eq!(keys.seen(shard, "ab"), format!("payhook:seen:{{{tag}}}:ab"));
            let slot = Slot::for_key(keys.arrivals(shard));
            assert_eq!(Slot::for_key(keys.dlq(shard)), slot);
            assert_eq!(Slot::for_key(keys.seen(shard, "ab")), slot);
            assert_eq!(keys.seen_bucket(shard, 1_796_380_215, 7), format!("payhook:seen:{{{tag}}}:t1796380215:7"));
            assert_eq!(Slot::for_key(keys.seen_bucket(shard, 1_796_380_215, 7)), slot);
        }
        // A cluster with one shard is tagged too: settle's MULTI needs it.
        assert_eq!(Keys::new("payhook", NonZeroU32::MIN, true).arrivals(Shard::new(0)), "payhook:arrivals:{a0}");
    }

    #[test]
    fn the_slot_is_redis_clusters() {
        for key in ["a0", "a1.7", "payhook:arrivals", "123456789"] {
            assert_eq!(Slot::new(slot(key) as u16), Some(Slot::for_key(key)), "{key}");
        }
        // CRC-16/XMODEM's check value.
        assert_eq!(slot("123456789"), 0x31c3 % SLOTS);
    }

    #[test]
    fn shards_spread_evenly_over_the_slot_space() {
        for n in [1, 2, 3, 4, 6, 16, 100] {
            for k in 0..n {
                let tag = shard_tag(k, n);
                assert_eq!(slot(&tag) * n / SLOTS, k, "shard {k} of {n}: {tag}");
            }
        }
        // Three shards on three masters: one on each of redis-cli's even split.
        let tags: Vec<String> = (0..3).map(|k| shard_tag(k, 3)).collect();
        assert_eq!(tags, ["a0", "a1", "a2"]);
    }
}
