//! `{p}:layout`: the key layout payhook's Redis data was written with.
//!
//! Where a payment's dedupe record lives depends on `redis.partitions` (its
//! `{N}` hash tag). A gateway started with another count would look for the
//! record in the wrong partition and publish the payment a second time. In
//! the same way, `redis.arrival_shards` decides which streams hold arrivals
//! and their replay guards: with another count, processors would not read
//! arrivals stored in the others' shards, and a replayed delivery would miss
//! its guard. So the first gateway records the layout, and every gateway,
//! replay or redrive checks it before publishing anything, refusing a
//! different one.
//!
//! A gateway configured with one node's `redis.url` also refuses a node that
//! is part of a Redis Cluster: it would not follow the cluster's
//! redirections, and it would use the single-node key names.

use std::{collections::HashMap, num::NonZeroU32, sync::LazyLock};

use redis::Script;

use super::{Store, StoreError};

/// The version of the key names themselves (how an idempotency key, a
/// partition or a stream name is spelt). Raised when they change, so that old
/// data is never read with new names.
pub const KEY_VERSION: u32 = 1;

static RECORD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("layout.lua")));

/// What decides where keys live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `redis.partitions`.
    pub partitions: NonZeroU32,
    /// `redis.arrival_shards`.
    pub arrival_shards: NonZeroU32,
    /// [`KEY_VERSION`].
    pub keys: u32,
}

/// The configured layout differs from the recorded one.
#[derive(Debug, thiserror::Error)]
#[error(
    "redis.{key} = {configured}, but the data in this Redis was written with {key} = {recorded} \
     (key {stored}): with another {key}, payments already published would be looked up in the wrong \
     place and published again. Keep {key} = {recorded}, or migrate as the README's \"Changing the \
     key layout\" describes"
)]
pub struct LayoutMismatch {
    /// The config key (`partitions`, `arrival_shards`) or `key_version`.
    pub key: &'static str,
    /// What this gateway is configured with.
    pub configured: String,
    /// What Redis holds.
    pub recorded: String,
    /// The Redis key holding the record.
    pub stored: String,
}

impl Layout {
    /// The field/value pairs stored.
    fn fields(&self) -> [(&'static str, String); 3] {
        [
            ("partitions", self.partitions.to_string()),
            ("arrival_shards", self.arrival_shards.to_string()),
            ("keys", self.keys.to_string()),
        ]
    }

    /// The first field where `recorded` differs (a field missing from an
    /// older record counts as that field's single-node default).
    fn mismatch(&self, recorded: &HashMap<String, String>, stored: &str) -> Option<LayoutMismatch> {
        self.fields().into_iter().find_map(|(field, configured)| {
            let recorded = recorded.get(field).cloned().unwrap_or_else(|| "1".into());
            (recorded != configured).then(|| LayoutMismatch {
                key: if field == "keys" { "key_version" } else { field },
                configured,
                recorded,
                stored: stored.to_owned(),
            })
        })
    }
}

impl Store {
    /// Records the configured layout if this Redis has none, else checks it
    /// is the one recorded. Anything that publishes calls this first.
    pub async fn claim_layout(&self) -> Result<(), StoreError> {
        if !self.is_cluster() {
            self.refuse_cluster_node().await?;
        }
        let (key, layout) = (self.keys().layout(), &self.layout);
        let mut invocation = RECORD.key(key);
        for (field, value) in layout.fields() {
            invocation.arg(field).arg(value);
        }
        let recorded: HashMap<String, String> = invocation.invoke_async(&mut self.connection()).await?;
        match layout.mismatch(&recorded, key) {
            Some(mismatch) => Err(StoreError::Layout(mismatch)),
            None => Ok(()),
        }
    }
}

impl Store {
    /// Fails when the one node of `redis.url` has cluster mode on.
    async fn refuse_cluster_node(&self) -> Result<(), StoreError> {
        let info: String = redis::cmd("INFO").arg("cluster").query_async(&mut self.connection()).await?;
        if info.lines().any(|line| line.trim() == "cluster_enabled:1") {
            return Err(StoreError::ClusterNode);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(partitions: u32) -> Layout {
        let partitions = NonZeroU32::new(partitions).unwrap();
        Layout { partitions, arrival_shards: NonZeroU32::MIN, keys: KEY_VERSION }
    }

    fn recorded(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_same_layout_passes_and_another_partition_count_is_named() {
        let stored = recorded(&[("partitions", "1"), ("arrival_shards", "1"), ("keys", "1")]);
        assert!(layout(1).mismatch(&stored, "payhook:layout").is_none());
        let mismatch = layout(4).mismatch(&stored, "payhook:layout").unwrap();
        assert_eq!((mismatch.key, mismatch.configured.as_str(), mismatch.recorded.as_str()), ("partitions", "4", "1"));
        let message = mismatch.to_string();
        assert!(message.starts_with("redis.partitions = 4"), "{message}");
        assert!(message.contains("Changing the key layout"), "{message}");
    }

    #[test]
    fn another_arrival_shard_count_is_named() {
        let stored = recorded(&[("partitions", "1"), ("arrival_shards", "3"), ("keys", "1")]);
        let mismatch = layout(1).mismatch(&stored, "payhook:layout").unwrap();
        assert_eq!(
            (mismatch.key, mismatch.configured.as_str(), mismatch.recorded.as_str()),
            ("arrival_shards", "1", "3")
        );
        assert!(mismatch.to_string().starts_with("redis.arrival_shards = 1"), "{mismatch}");
    }

    #[test]
    fn fields_an_older_record_lacks_count_as_single_node_defaults() {
        let stored = recorded(&[("partitions", "2")]);
        assert!(layout(2).mismatch(&stored, "k").is_none());
        let newer = Layout { keys: 2, ..layout(2) };
        assert_eq!(newer.mismatch(&stored, "k").unwrap().key, "key_version");
    }
}
