//! How durable the Redis behind payhook is, said plainly.
//!
//! A 2xx means Redis acknowledged the arrival. Whether that survives a Redis
//! crash depends on Redis's persistence; whether it survives a full Redis
//! depends on its eviction policy, which can delete arrivals (`allkeys-*`)
//! or exactly the dedupe records, which carry a TTL (`volatile-*`). payhook
//! reads both (`CONFIG GET`) and reports them at start-up and on `/readyz`,
//! so an operator never has to guess what "stored" means.
//!
//! On a Redis Cluster each master has its own settings, and an arrival is
//! as safe as the master of its shard: every master is read, and the report
//! is the weakest one's, naming it when the masters differ.

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
    /// Masters read (1 on one node).
    pub masters: usize,
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
            masters: 1,
        }
    }

    /// The verdict for a cluster's masters (`(address, settings)`): the
    /// weakest master's, since each holds some shards' arrivals and some
    /// partitions' dedupe records.
    pub fn assess_masters(masters: Vec<(String, RedisSettings)>, wait_replicas: u32) -> Option<Self> {
        let count = masters.len();
        let differ = masters.windows(2).any(|pair| pair[0].1 != pair[1].1);
        let verdicts = masters.into_iter().map(|(node, settings)| (node, Self::assess(settings, wait_replicas)));
        let weakest = verdicts.max_by_key(|(_, d)| (d.can_lose_acknowledged, d.dedupe_records_evictable));
        weakest.map(|(node, mut verdict)| {
            verdict.masters = count;
            if differ {
                verdict.summary = format!("{} (master {node}, the weakest of {count})", verdict.summary);
            }
            verdict
        })
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
    /// Reads the persistence and eviction settings of every master; a Redis
    /// that refuses `CONFIG` (managed services often do) is reported as
    /// unknown, not as an error.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        let mut masters: Vec<(String, RedisSettings)> = Vec::new();
        for name in ["appendonly", "appendfsync", "maxmemory-policy", "maxmemory"] {
            let answers = self.connection().on_every_master(redis::cmd("CONFIG").arg("GET").arg(name)).await?;
            for (node, answer) in answers {
                let value = match answer {
                    Ok(value) => setting(value),
                    Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => return Err(e.into()),
                    Err(_) => UNKNOWN.into(),
                };
                let index = match masters.iter().position(|(n, _)| *n == node) {
                    Some(index) => index,
                    None => {
                        masters.push((node, RedisSettings::unknown()));
                        masters.len() - 1
                    }
                };
                masters[index].1.set(name, value);
            }
        }
        let wait = self.replication.map_or(0, |(n, _)| n);
        Durability::assess_masters(masters, wait)
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "no master answered")).into())
    }
}

/// The value of a `CONFIG GET` reply (`[name, value]`), or unknown.
fn setting(reply: redis::Value) -> String {
    let pair: Vec<String> = redis::from_redis_value(reply).unwrap_or_default();
    pair.get(1).cloned().unwrap_or_else(|| UNKNOWN.into())
}

impl RedisSettings {
    fn unknown() -> Self {
        let unknown = || UNKNOWN.to_owned();
        Self { appendonly: unknown(), appendfsync: unknown(), maxmemory_policy: unknown(), maxmemory: unknown() }
    }

    fn set(&mut self, name: &str, value: String) {
        match name {
            "appendonly" => self.appendonly = value,
            "appendfsync" => self.appendfsync = value,
            "maxmemory-policy" => self.maxmemory_policy = value,
            _ => self.maxmemory = value,
        }
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
    fn a_cluster_is_as_durable_as_its_weakest_master_which_is_named() {
        let settings = |fsync: &str| RedisSettings {
            appendonly: "yes".into(),
            appendfsync: fsync.into(),
            maxmemory_policy: "noeviction".into(),
            maxmemory: "0".into(),
        };
        let masters = vec![("a:1".into(), settings("always")), ("b:2".into(), settings("everysec"))];
        let verdict = Durability::assess_masters(masters, 0).unwrap();
        assert!(verdict.can_lose_acknowledged && verdict.masters == 2);
        assert!(verdict.summary.contains("master b:2, the weakest of 2"), "{}", verdict.summary);
        let alike = vec![("a:1".into(), settings("always")), ("b:2".into(), settings("always"))];
        let verdict = Durability::assess_masters(alike, 0).unwrap();
        assert!(!verdict.can_lose_acknowledged && !verdict.summary.contains("master"), "{}", verdict.summary);
        assert!(Durability::assess_masters(Vec::new(), 0).is_none());
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
