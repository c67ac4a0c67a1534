//! Exactly-once output: dedupe by idempotency key and append to the partition
//! stream in one Lua script, loaded once and called by its SHA.
//!
//! Processing is at-least-once (a crash after publishing but before the
//! acknowledgement re-processes the arrival), so the output must be where
//! duplicates stop. Checking the dedupe record and publishing in two commands
//! would leave a window in which two processors both publish; the script
//! closes it.
//!
//! A dry run asks [`Publisher::check`] instead: it reads the dedupe record
//! and compares it as the script does, and publishes nothing. Publishing
//! also appends to the payment's story (`crate::store::payments`), in the
//! same step, so what an operator reads there is exactly what was published.
//!
//! With `redis.wait_replicas`, `WAIT` follows the script in the same
//! pipeline (on a cluster: on the partition's master), and too few replicas
//! fail the publish: the arrival is retried rather than acknowledged, so a
//! master lost right after a publish cannot take with it an event whose
//! arrival is already settled. The retry then finds the record (and waits
//! again), or, on the replica that took over without it, publishes anew:
//! once, either way.
//!
//! Touches: `{p}:idem:{N}:<key>`, `{p}:events:payment.succeeded.v1:{N}`,
//! `{p}:story:{N}:<key>`, `{p}:pevent:{N}:<provider event id>`.

use std::{num::NonZeroU32, sync::Arc};

use chrono::{SecondsFormat, Utc};
use redis::{Script, Value};

use crate::{
    domain::{CloudEvent, Fingerprint, IdempotencyKey, Partition, PaymentSucceededV1},
    store::{payments::STORY_CAP, Announcement, Store, StoreError},
};

/// What publishing an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// Appended; the stream entry id.
    New {
        /// Entry id in the partition stream.
        entry_id: String,
    },
    /// The same payment with the same facts was published before.
    Duplicate {
        /// The event id published then.
        event_id: String,
    },
    /// The same idempotency key was published with different facts (amount,
    /// currency, livemode): not published; the arrival goes to the DLQ.
    Conflict {
        /// The event id published then.
        event_id: String,
    },
}

/// Publishing failed; the arrival may be tried again.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Redis is unreachable, or refused the script (a dedupe record it
    /// cannot decode, say).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The script answered a status this version does not know: a script of
    /// another payhook version, never taken for a conflict or a success.
    #[error("the publish script answered an unknown status {0:?}")]
    UnknownStatus(String),
    /// The dedupe record of `key` is not what the script writes.
    #[error("the dedupe record of {key} cannot be read")]
    UnreadableRecord {
        /// The idempotency key.
        key: String,
    },
}

/// The fields of a dedupe record that decide between duplicate and conflict.
#[derive(serde::Deserialize)]
struct Record {
    fingerprint: String,
    event_id: String,
}

/// Publishes events through the dedupe script.
#[derive(Clone, Debug)]
pub struct Publisher {
    store: Store,
    script: Arc<Script>,
    partitions: NonZeroU32,
    ttl_secs: u64,
}

impl Publisher {
    /// A publisher over `store`.
    pub fn new(store: Store, partitions: NonZeroU32, ttl_secs: u64) -> Self {
        let script = Arc::new(Script::new(include_str!("dedupe_publish.lua")));
        Self { store, script, partitions, ttl_secs }
    }

    /// Loads the script into Redis (`SCRIPT LOAD`). Calls use `EVALSHA` and
    /// reload by themselves after a Redis restart, so this only moves the
    /// first load off the first event.
    pub async fn load(&self) -> Result<(), StoreError> {
        self.script.prepare_invoke().load_async(&mut self.store.connection()).await?;
        Ok(())
    }

    /// The number of output partitions.
    pub fn partitions(&self) -> NonZeroU32 {
        self.partitions
    }

    /// Dedupes and publishes `event`, and records the outcome in the
    /// payment's story as announced by `announcement`.
    pub async fn publish(
        &self,
        event: &CloudEvent<PaymentSucceededV1>,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        announcement: &Announcement<'_>,
    ) -> Result<Published, PublishError> {
        let partition = Partition::of(key, self.partitions);
        let json = serde_json::to_string(event).expect("events always serialize");
        let now = Utc::now();
        let mut invocation = self.invocation(partition, key, announcement.provider_event_id);
        invocation
            .arg("publish")
            .arg(fingerprint.as_str())
            .arg(event.id())
            .arg(event.event_type())
            .arg(key.as_str())
            .arg(json)
            .arg(self.ttl_secs)
            .arg(now.to_rfc3339_opts(SecondsFormat::Millis, true))
            .arg(STORY_CAP)
            .arg(announcement.middle())
            .arg(now.timestamp_millis());
        let (status, value): (String, String) = match self.store.replication() {
            None => invocation.invoke_async(&mut self.store.connection()).await.map_err(StoreError::from)?,
            Some(replication) => self.publish_replicated(&invocation, replication).await?,
        };
        match status.as_str() {
            "published" => Ok(Published::New { entry_id: value }),
            "duplicate" => Ok(Published::Duplicate { event_id: value }),
            "conflict" => Ok(Published::Conflict { event_id: value }),
            _ => Err(PublishError::UnknownStatus(status)),
        }
    }

    /// The script, then `WAIT`, in one pipeline (loading the script first if
    /// this master does not know it: a pipeline does not load scripts).
    async fn publish_replicated(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        (wanted, timeout_ms): (u32, u64),
    ) -> Result<(String, String), StoreError> {
        let mut pipe = redis::pipe();
        pipe.invoke_script(invocation).cmd("WAIT").arg(wanted).arg(timeout_ms);
        let mut conn = self.store.connection();
        let replies: Vec<Value> = match pipe.query_async(&mut conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                invocation.load_async(&mut conn).await?;
                pipe.query_async(&mut conn).await?
            }
            other => other?,
        };
        let unexpected = || StoreError::from(redis::RedisError::from((redis::ErrorKind::Client, "no reply to WAIT")));
        let [outcome, acked] = <[Value; 2]>::try_from(replies).map_err(|_| unexpected())?;
        let acked: u32 = redis::from_redis_value(acked).map_err(|e| StoreError::Redis(e.into()))?;
        if acked < wanted {
            return Err(StoreError::NotReplicated { wanted, acked });
        }
        redis::from_redis_value(outcome).map_err(|e| StoreError::Redis(e.into()))
    }

    /// What [`Publisher::publish`] would answer for these facts now, without
    /// publishing: `None` when the key has no record (the event would be
    /// new), else the duplicate or conflict with the event id on record.
    pub async fn check(
        &self,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
    ) -> Result<Option<Published>, PublishError> {
        let record_key = self.store.keys().idempotency(Partition::of(key, self.partitions), key);
        let record: Option<String> = redis::cmd("GET")
            .arg(record_key)
            .query_async(&mut self.store.connection())
            .await
            .map_err(StoreError::from)?;
        let Some(record) = record else { return Ok(None) };
        let unreadable = || PublishError::UnreadableRecord { key: key.as_str().to_owned() };
        let Record { fingerprint: on_record, event_id } = serde_json::from_str(&record).map_err(|_| unreadable())?;
        Ok(Some(if on_record == fingerprint.as_str() {
            Published::Duplicate { event_id }
        } else {
            Published::Conflict { event_id }
        }))
    }

    /// Records in the payment's story that `announcement` of `key` was
    /// dead-lettered for `reason`.
    pub async fn record_dead_letter(
        &self,
        key: &IdempotencyKey,
        announcement: &Announcement<'_>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let partition = Partition::of(key, self.partitions);
        let _: (String, String) = self
            .invocation(partition, key, announcement.provider_event_id)
            .arg("dead_letter")
            .arg(key.as_str())
            .arg(announcement.dead_lettered(reason))
            .arg(self.ttl_secs)
            .arg(STORY_CAP)
            .invoke_async(&mut self.store.connection())
            .await?;
        Ok(())
    }

    /// The script with the keys of `key`'s partition: dedupe record, stream,
    /// story, and the provider event's index when it has an id.
    fn invocation(
        &self,
        partition: Partition,
        key: &IdempotencyKey,
        provider_event_id: Option<&str>,
    ) -> redis::ScriptInvocation<'_> {
        let keys = self.store.keys();
        let mut invocation = self.script.prepare_invoke();
        invocation.key(keys.idempotency(partition, key)).key(keys.events(partition)).key(keys.story(partition, key));
        if let Some(id) = provider_event_id {
            invocation.key(keys.provider_event(partition, id));
        }
        invocation
    }
}
