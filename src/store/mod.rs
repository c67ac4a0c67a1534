//! The durable log in Redis, and the only code that knows its field names.
//!
//! [`Store`] is a cheap, cloneable handle over one multiplexed
//! [`ConnectionManager`]: concurrent requests share the connection and their
//! commands are pipelined, and it reconnects by itself after an outage.
//! Processors each get a [dedicated](Store::dedicated) connection, because a
//! blocking `XREADGROUP` would stall every command queued behind it on a
//! shared one.
//!
//! Touches: `{p}:arrivals` (append, read, claim, ack, trim), `{p}:dlq`,
//! `{p}:rejected`, `{p}:layout`; reads `{p}:story:{N}:*` and `{p}:pevent:{N}:*`
//! (see [`payments`]). Publishing lives in `crate::publish`.

mod appender;
mod arrivals;
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

use redis::{aio::ConnectionManager, aio::ConnectionManagerConfig, Client};

pub use arrivals::{Appended, ArrivalEntry, Claimed, Rejected};
pub use dead_letter_search::{DeadLetterFilter, DeadLetterPage};
pub use dlq::{DeadLetter, DlqReason, StoredDeadLetter, UnknownReason};
pub use durability::Durability;
pub use keys::Keys;
pub use layout::{Layout, LayoutMismatch, KEY_VERSION};
pub use maintenance::Maintained;
pub use payments::{Announcement, PaymentRecord, Progress, StoryEntry, StoryOutcome, Via};
pub use retry::RETRY_CONSUMER;
pub use stats::{Rates, Stats, Totals};

use self::sealing::Sealer;
use crate::config::Config;

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
    /// Fewer replicas than `wait_replicas` acknowledged the write in time.
    #[error("only {acked} of {wanted} replicas acknowledged the arrival")]
    NotReplicated {
        /// `redis.wait_replicas`.
        wanted: u32,
        /// Replicas that did.
        acked: u32,
    },
}

/// Handle on payhook's Redis keys.
#[derive(Clone)]
pub struct Store {
    client: Client,
    conn: ConnectionManager,
    keys: Arc<Keys>,
    /// How long acknowledged arrivals are kept (trimming).
    retention: Duration,
    /// `WAIT` after each append: (replicas, timeout ms), if configured.
    replication: Option<(u32, u64)>,
    /// Encryption of bodies at rest, if configured.
    sealer: Option<Arc<Sealer>>,
    /// The key layout the config asks for.
    layout: Layout,
    /// The group-commit task of appends, started on the first one.
    appender: Arc<std::sync::OnceLock<appender::Appender>>,
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
        let client = Client::open(redis.url.as_str())?;
        let conn = manager(&client, response_timeout)?;
        let replication = (redis.wait_replicas > 0).then_some((redis.wait_replicas, redis.wait_timeout_ms));
        let keys = Arc::new(Keys::new(&redis.key_prefix));
        let retention = Duration::from_secs(config.processing.arrival_retention_secs);
        let layout =
            Layout { partitions: redis.partitions, arrival_shards: std::num::NonZeroU32::MIN, keys: KEY_VERSION };
        Ok(Self { client, conn, keys, retention, replication, sealer, layout, appender: Arc::default() })
    }

    /// A store with its own connection, for a processor's blocking reads.
    pub fn dedicated(&self, response_timeout: Duration) -> Result<Self, StoreError> {
        Ok(Self { conn: manager(&self.client, response_timeout)?, ..self.clone() })
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The multiplexed connection (cloning it is cheap and shares it).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `PING`, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.connection()).await?;
        Ok(())
    }
}

fn manager(client: &Client, response_timeout: Duration) -> Result<ConnectionManager, StoreError> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(response_timeout.min(Duration::from_secs(2))))
        // Reconnect attempts are cheap and each request has its own deadline,
        // so keep retrying quickly rather than giving up.
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(1));
    Ok(ConnectionManager::new_lazy_with_config(client.clone(), config)?)
}
