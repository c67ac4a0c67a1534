//! The durable log in Redis, and the only code that knows its field names.
//!
//! [`Store`] is a cheap, cloneable handle over one multiplexed
//! [`Connection`] to one node or a Redis Cluster: concurrent requests share
//! it and their commands are pipelined, and it reconnects by itself after an
//! outage (on a cluster: after a failover too). Processors each get a
//! [dedicated](Store::dedicated) connection, because a blocking `XREADGROUP`
//! would stall every command queued behind it on a shared one.
//!
//! Arrivals are spread over `redis.arrival_shards` streams (see [`keys`]);
//! every operation on arrivals or dead letters names its shard, and the
//! operator's views (stats, dead letters, replay) cover every shard.
//!
//! Touches: `{p}:arrivals` (append, read, claim, ack, trim), `{p}:dlq`,
//! `{p}:rejected`, `{p}:layout`, and their per-shard forms; reads
//! `{p}:story:{N}:*` and `{p}:pevent:{N}:*` (see [`payments`]). Publishing
//! lives in `crate::publish`.

mod appender;
mod arrivals;
mod connection;
mod consume;
mod dead_letter_search;
mod dlq;
mod durability;
mod history;
pub mod keys;
mod layout;
mod maintenance;
pub mod payments;
mod retry;
pub mod sealing;
mod stats;

use std::{sync::Arc, time::Duration};

pub use arrivals::{Appended, Rejected};
pub use connection::Connection;
pub use consume::{ArrivalEntry, Claimed};
pub use dead_letter_search::{DeadLetterFilter, DeadLetterPage};
pub use dlq::{DeadLetter, DlqReason, StoredDeadLetter, UnknownReason};
pub use durability::Durability;
pub use keys::Keys;
pub use layout::{Layout, LayoutMismatch, KEY_VERSION};
pub use maintenance::Maintained;
pub use payments::{Announcement, PaymentRecord, Progress, StoryEntry, StoryOutcome, Via};
pub use retry::RETRY_CONSUMER;
pub use stats::{Rates, ShardStats, Stats, Totals};

use self::sealing::Sealer;
use crate::config::{Config, RedisTarget};

/// A Redis failure, or an entry that is not what payhook writes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis is unreachable, too slow, or refused the command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer before the caller's deadline.
    #[error("redis did not answer in time")]
    Timeout,
    /// The configured key layout is not the one this Redis was written with.
    #[error(transparent)]
    Layout(#[from] LayoutMismatch),
    /// The appender task is gone (the runtime is shutting down).
    #[error("the appender has stopped")]
    Stopped,
    /// The pipeline carrying this append failed as a whole.
    #[error("redis: {0}")]
    Batch(String),
    /// `redis.url` names a node of a Redis Cluster.
    #[error(
        "redis.url names a node of a Redis Cluster (cluster_enabled:1): set redis.cluster_nodes to the \
         cluster's nodes instead, so that payhook follows the cluster's slots"
    )]
    ClusterNode,
    /// Fewer replicas than `wait_replicas` acknowledged the write in time.
    #[error("only {acked} of {wanted} replicas acknowledged the arrival")]
    NotReplicated {
        /// `redis.wait_replicas`.
        wanted: u32,
        /// Replicas that did.
        acked: u32,
    },
}

impl StoreError {
    /// Whether the configuration is at fault (a layout other than the one
    /// recorded, a cluster node given as `url`), not the runtime.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Layout(_) | Self::ClusterNode)
    }
}

/// Handle on payhook's Redis keys.
#[derive(Clone)]
pub struct Store {
    /// Makes the dedicated connections (shared: the store is cloned per request).
    backend: Arc<connection::Backend>,
    conn: Connection,
    keys: Arc<Keys>,
    /// How long acknowledged arrivals are kept (trimming).
    retention: Duration,
    /// `WAIT` after each append: (replicas, timeout ms), if configured.
    replication: Option<(u32, u64)>,
    /// Encryption of bodies at rest, if configured.
    sealer: Option<Arc<Sealer>>,
    /// The key layout the config asks for.
    layout: Layout,
    /// The group-commit task of each arrival shard's appends, started on its
    /// first one.
    appenders: Arc<Vec<std::sync::OnceLock<appender::Appender>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl Store {
    /// A store for `config`, sealing bodies with `sealer` when there is one.
    /// Connects lazily, so the gateway starts (and answers 503) while Redis
    /// is down, and recovers when it returns. `response_timeout` bounds
    /// every command.
    pub fn open(config: &Config, sealer: Option<Arc<Sealer>>, response_timeout: Duration) -> Result<Self, StoreError> {
        let redis = &config.redis;
        let target = redis.target();
        let backend = Arc::new(connection::Backend::open(target)?);
        let conn = backend.connect(response_timeout)?;
        let replication = (redis.wait_replicas > 0).then_some((redis.wait_replicas, redis.wait_timeout_ms));
        // A cluster needs every shard under its own hash tag even with one
        // shard: settling touches the stream and its dead letters in one MULTI.
        let tagged = matches!(target, RedisTarget::Cluster(_)) || redis.arrival_shards.get() > 1;
        let keys = Arc::new(Keys::new(&redis.key_prefix, redis.arrival_shards, tagged));
        let retention = Duration::from_secs(config.processing.arrival_retention_secs);
        let layout = Layout { partitions: redis.partitions, arrival_shards: redis.arrival_shards, keys: KEY_VERSION };
        let appenders = (0..redis.arrival_shards.get()).map(|_| std::sync::OnceLock::new()).collect();
        Ok(Self { backend, conn, keys, retention, replication, sealer, layout, appenders: Arc::new(appenders) })
    }

    /// A store with its own connection, for a processor's blocking reads.
    pub fn dedicated(&self, response_timeout: Duration) -> Result<Self, StoreError> {
        Ok(Self { conn: self.backend.connect(response_timeout)?, ..self.clone() })
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The multiplexed connection (cloning it is cheap and shares it).
    pub fn connection(&self) -> Connection {
        self.conn.clone()
    }

    /// `redis.wait_replicas` and `redis.wait_timeout_ms`, when replicas are
    /// waited for.
    pub fn replication(&self) -> Option<(u32, u64)> {
        self.replication
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Connection::Cluster(_))
    }

    /// `PING`, for readiness (on a cluster, every master must answer).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.connection()).await?;
        Ok(())
    }
}
