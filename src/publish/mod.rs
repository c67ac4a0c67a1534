//! Exactly-once output: dedupe by idempotency key and append to the partition
//! stream in one Lua script, loaded once and called by its SHA.
//!
//! Processing is at-least-once (a crash after publishing but before the
//! acknowledgement re-processes the arrival), so the output must be where
//! duplicates stop. Checking the dedupe record and publishing in two commands
//! would leave a window in which two processors both publish; the script
//! closes it.
//!
//! The same step appends to the payment's story (`crate::store::payments`),
//! so what an operator reads there is exactly what was published.
//!
//! Touches: `{p}:idem:{N}:<key>`, `{p}:events:payment.succeeded.v1:{N}`,
//! `{p}:story:{N}:<key>`, `{p}:pevent:{N}:<provider event id>`.

use std::{num::NonZeroU32, sync::Arc};

use chrono::{SecondsFormat, Utc};
use redis::Script;

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
    ) -> Result<Published, StoreError> {
        let partition = Partition::of(key, self.partitions);
        let json = serde_json::to_string(event).expect("events always serialize");
        let now = Utc::now();
        let (status, value): (String, String) = self
            .invocation(partition, key, announcement.provider_event_id)
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
            .arg(now.timestamp_millis())
            .invoke_async(&mut self.store.connection())
            .await?;
        Ok(match status.as_str() {
            "published" => Published::New { entry_id: value },
            "duplicate" => Published::Duplicate { event_id: value },
            _ => Published::Conflict { event_id: value },
        })
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
