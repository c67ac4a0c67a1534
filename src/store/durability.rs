//! How durable the Redis behind payhook is, said plainly.
//!
//! A 2xx means Redis acknowledged the arrival. Whether that survives a Redis
//! crash depends on Redis's persistence; whether it survives a full Redis
//! depends on its eviction policy, which can delete arrivals (`allkeys-*`)
//! or exactly the dedupe records, which carry a TTL (`volatile-*`). payhook
//! reads both (`CONFIG GET`) and reports them at start-up and on `/readyz`,
//! so an operator never has to guess what "stored" means.

use serde::Serialize;

use super::{Store, StoreError};

/// What a `CONFIG GET` refused by the server (managed services) reads as.
const UNKNOWN: &str = "unknown";

/// The Redis settings the verdict depends on, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    /// `appendonly`: `yes`/`no`.
    pub appendonly: String,
    /// `appendfsync`: `always`/`everysec`/`no`.
    pub appendfsync: String,
    /// `maxmemory-policy`: `noeviction`, `allkeys-lru`, `volatile-ttl`, …
    pub maxmemory_policy: String,
    /// `maxmemory` in bytes (`0`: no limit).
    pub maxmemory: String,
}

/// Redis persistence and eviction as payhook sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Durability {
    /// `appendonly` (`yes`/`no`), or `unknown` where `CONFIG` is disabled.
    pub appendonly: String,
    /// `appendfsync` (`always`/`everysec`/`no`), or `unknown`.
    pub appendfsync: String,
    /// `maxmemory-policy`, or `unknown`.
    pub maxmemory_policy: String,
    /// `maxmemory` in bytes (`0`: no limit), or `unknown`.
    pub maxmemory: String,
    /// `redis.wait_replicas`.
    pub wait_replicas: u32,
    /// Whether a crash of this Redis, or its eviction policy, can lose an
    /// arrival answered 2xx.
    pub can_lose_acknowledged: bool,
    /// Whether Redis may evict dedupe records (any policy but `noeviction`):
    /// a payment announced again after its record was evicted is published
    /// again.
    pub dedupe_records_evictable: bool,
    /// One sentence for operators.
    pub summary: String,
}

impl Durability {
    /// The verdict for these settings.
    pub fn assess(settings: RedisSettings, wait_replicas: u32) -> Self {
        let (persisted, persistence) = persistence(&settings.appendonly, &settings.appendfsync, wait_replicas);
        let policy = settings.maxmemory_policy.as_str();
        let evicts_arrivals = policy.starts_with("allkeys-") || policy == UNKNOWN;
        let evicts_dedupe = policy != "noeviction";
        let summary = match eviction(policy, &settings.maxmemory) {
            Some(eviction) => format!("{persistence}; {eviction}"),
            None => persistence,
        };
        Self {
            appendonly: settings.appendonly,
            appendfsync: settings.appendfsync,
            maxmemory_policy: settings.maxmemory_policy,
            maxmemory: settings.maxmemory,
            wait_replicas,
            can_lose_acknowledged: !persisted || evicts_arrivals,
            dedupe_records_evictable: evicts_dedupe,
            summary,
        }
    }
}

/// Whether an acknowledged arrival survives a Redis crash, and why.
fn persistence(appendonly: &str, appendfsync: &str, wait_replicas: u32) -> (bool, String) {
    match (appendonly, appendfsync) {
        (_, _) if wait_replicas > 0 => {
            (true, format!("every arrival is on {wait_replicas} replica(s) before it is answered 2xx"))
        }
        ("yes", "always") => {
            (true, "AOF with fsync on every write: a Redis crash loses no acknowledged arrival".into())
        }
        ("yes", "everysec") => (
            false,
            "AOF fsync every second: a Redis crash can lose about the last second of acknowledged arrivals".into(),
        ),
        ("yes", _) => {
            (false, "AOF without fsync: a Redis crash can lose acknowledged arrivals the OS had not written".into())
        }
        ("no", _) => (false, "no AOF: a Redis crash loses acknowledged arrivals since the last snapshot".into()),
        _ => (
            false,
            "persistence unknown (CONFIG GET refused): assume a Redis crash can lose acknowledged arrivals".into(),
        ),
    }
}

/// What the eviction policy can delete, or `None` when it deletes nothing.
fn eviction(policy: &str, maxmemory: &str) -> Option<String> {
    let limit = if maxmemory == "0" { " once a maxmemory limit is set" } else { " when memory is full" };
    match policy {
        "noeviction" => None,
        UNKNOWN => Some(
            "eviction policy unknown: assume Redis may evict arrivals and dedupe records, so set maxmemory-policy \
             noeviction"
                .into(),
        ),
        p if p.starts_with("allkeys-") => Some(format!(
            "maxmemory-policy {p} lets Redis delete any key{limit}, acknowledged arrivals and dedupe records \
             included: set noeviction"
        )),
        p => Some(format!(
            "maxmemory-policy {p} lets Redis delete keys with a TTL{limit}, which are exactly the dedupe records, \
             so a payment announced again could be published twice: set noeviction"
        )),
    }
}

impl Store {
    /// Reads the persistence and eviction settings; a Redis that refuses
    /// `CONFIG` (managed services often do) is reported as unknown, not as an
    /// error.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        let mut conn = self.connection();
        let mut get = async |name: &str| -> Result<String, StoreError> {
            let reply: Result<Vec<String>, _> = redis::cmd("CONFIG").arg("GET").arg(name).query_async(&mut conn).await;
            match reply {
                Ok(pair) => Ok(pair.get(1).cloned().unwrap_or_else(|| UNKNOWN.into())),
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Err(e.into()),
                Err(_) => Ok(UNKNOWN.into()),
            }
        };
        let settings = RedisSettings {
            appendonly: get("appendonly").await?,
            appendfsync: get("appendfsync").await?,
            maxmemory_policy: get("maxmemory-policy").await?,
            maxmemory: get("maxmemory").await?,
        };
        let wait = self.replication.map_or(0, |(n, _)| n);
        Ok(Durability::assess(settings, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::{Durability, RedisSettings};

    fn assess(aof: &str, fsync: &str, policy: &str, wait: u32) -> Durability {
        let settings = RedisSettings {
            appendonly: aof.into(),
            appendfsync: fsync.into(),
            maxmemory_policy: policy.into(),
            maxmemory: "0".into(),
        };
        Durability::assess(settings, wait)
    }

    #[test]
    fn only_fsync_always_or_replicas_count_as_safe() {
        assert!(!assess("yes", "always", "noeviction", 0).can_lose_acknowledged);
        assert!(!assess("no", "no", "noeviction", 1).can_lose_acknowledged);
        for (aof, fsync) in [("yes", "everysec"), ("yes", "no"), ("no", "everysec"), ("unknown", "unknown")] {
            let verdict = assess(aof, fsync, "noeviction", 0);
            assert!(verdict.can_lose_acknowledged, "{aof}/{fsync}");
            assert!(!verdict.summary.is_empty());
        }
    }

    #[test]
    fn evicting_any_key_can_lose_arrivals_and_any_policy_but_noeviction_dedupe_records() {
        let safe = assess("yes", "always", "noeviction", 0);
        assert!(!safe.dedupe_records_evictable && !safe.summary.contains("maxmemory-policy"));
        let allkeys = assess("yes", "always", "allkeys-lru", 0);
        assert!(allkeys.can_lose_acknowledged && allkeys.dedupe_records_evictable);
        assert!(allkeys.summary.contains("allkeys-lru"), "{}", allkeys.summary);
        let volatile = assess("yes", "always", "volatile-ttl", 0);
        assert!(!volatile.can_lose_acknowledged && volatile.dedupe_records_evictable);
        assert!(volatile.summary.contains("dedupe records"), "{}", volatile.summary);
        let unknown = assess("unknown", "unknown", "unknown", 0);
        assert!(unknown.can_lose_acknowledged && unknown.dedupe_records_evictable);
    }
}
