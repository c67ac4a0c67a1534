//! Every Redis key payhook uses, declared in one place.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{p}:arrivals` | stream, group `processors` | one entry per stored delivery |
//! | `{p}:idem:{N}:{key}` | string (JSON), TTL | what was published for an idempotency key |
//! | `{p}:events:payment.succeeded.v1:{N}` | stream | the published events of partition N |
//! | `{p}:dlq` | stream | dead letters |
//! | `{p}:rejected` | capped stream | verification failures, for forensics |
//! | `{p}:layout` | hash | the partitions, arrival shards and key version the data was written with |
//! | `{p}:seen:{{p}:arrivals}:<sha256>` | string, TTL | body hash and first arrival id of a signed delivery, to drop exact replays |
//! | `{p}:story:{N}:{key}` | capped list of JSON, TTL of the dedupe record | a payment's story: each announcement's outcome |
//! | `{p}:pevent:{N}:<provider event id>` | string, same TTL | the idempotency key a provider event announced |
//!
//! `{p}` is `redis.key_prefix`. `{N}` is written with its braces: they are a
//! Redis Cluster hash tag, so a payment's dedupe record and its output stream
//! share a slot and the dedupe-and-publish script can touch both atomically.

use crate::domain::{IdempotencyKey, Partition, EVENT_TYPE};

/// The consumer group of the processors on the arrivals stream.
pub const PROCESSORS_GROUP: &str = "processors";

/// Key names for one `key_prefix`. The fixed names are built once, since the
/// ingress uses them on every request.
#[derive(Debug)]
pub struct Keys {
    prefix: String,
    arrivals: String,
    dlq: String,
    rejected: String,
    layout: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            arrivals: format!("{prefix}:arrivals"),
            dlq: format!("{prefix}:dlq"),
            rejected: format!("{prefix}:rejected"),
            layout: format!("{prefix}:layout"),
        }
    }

    /// The arrivals stream.
    pub fn arrivals(&self) -> &str {
        &self.arrivals
    }

    /// The dead-letter stream.
    pub fn dlq(&self) -> &str {
        &self.dlq
    }

    /// The capped stream of rejected requests.
    pub fn rejected(&self) -> &str {
        &self.rejected
    }

    /// The record of the key layout.
    pub fn layout(&self) -> &str {
        &self.layout
    }

    /// The replay guard of a signed delivery (hex SHA-256 of its source and
    /// signed identity, see `providers::Delivery`). Its hash tag is the
    /// arrivals stream's name, so on Redis Cluster it shares the stream's
    /// slot and the check-and-append script can touch both.
    pub fn seen(&self, delivery: &str) -> String {
        format!("{}:seen:{{{}}}:{delivery}", self.prefix, self.arrivals)
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

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::domain::PaymentId;

    #[test]
    fn names_follow_the_contract() {
        let keys = Keys::new("payhook");
        let key = IdempotencyKey::new("stripe", &PaymentId::parse("pi_1").unwrap());
        let p = Partition::of(&key, NonZeroU32::MIN);
        assert_eq!(keys.arrivals(), "payhook:arrivals");
        assert_eq!(keys.idempotency(p, &key), "payhook:idem:{0}:stripe:pi_1");
        assert_eq!(keys.events(p), "payhook:events:payment.succeeded.v1:{0}");
        assert_eq!(keys.story(p, &key), "payhook:story:{0}:stripe:pi_1");
        assert_eq!(keys.provider_event(p, "evt_1"), "payhook:pevent:{0}:evt_1");
        // Hash tag = the arrivals key's whole name: the same Cluster slot.
        assert_eq!(keys.seen("ab12"), "payhook:seen:{payhook:arrivals}:ab12");
    }
}
