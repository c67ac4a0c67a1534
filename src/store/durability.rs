//! How durable the Redis behind payhook is, said plainly.
//!
//! A 2xx means Redis acknowledged the arrival. Whether that survives a Redis
//! crash depends on Redis's persistence, which payhook reads (`CONFIG GET`)
//! and reports at start-up and on `/readyz`, so an operator never has to
//! guess what "stored" means.

use serde::Serialize;

use super::{Store, StoreError};

/// Redis persistence as payhook sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Durability {
    /// `appendonly` (`yes`/`no`), or `unknown` where `CONFIG` is disabled.
    pub appendonly: String,
    /// `appendfsync` (`always`/`everysec`/`no`), or `unknown`.
    pub appendfsync: String,
    /// `redis.wait_replicas`.
    pub wait_replicas: u32,
    /// Whether a crash of this Redis can lose an arrival answered 2xx.
    pub can_lose_acknowledged: bool,
    /// One sentence for operators.
    pub summary: String,
}

impl Durability {
    /// The verdict for these settings.
    pub fn assess(appendonly: &str, appendfsync: &str, wait_replicas: u32) -> Self {
        let (safe, summary) = match (appendonly, appendfsync) {
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
        };
        Self {
            appendonly: appendonly.to_owned(),
            appendfsync: appendfsync.to_owned(),
            wait_replicas,
            can_lose_acknowledged: !safe,
            summary,
        }
    }
}

impl Store {
    /// Reads `appendonly` and `appendfsync`; a Redis that refuses `CONFIG`
    /// (managed services often do) is reported as unknown, not as an error.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        let mut conn = self.connection();
        let mut get = async |name: &str| -> Result<String, StoreError> {
            let reply: Result<Vec<String>, _> = redis::cmd("CONFIG").arg("GET").arg(name).query_async(&mut conn).await;
            match reply {
                Ok(pair) => Ok(pair.get(1).cloned().unwrap_or_else(|| "unknown".into())),
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Err(e.into()),
                Err(_) => Ok("unknown".into()),
            }
        };
        let appendonly = get("appendonly").await?;
        let appendfsync = get("appendfsync").await?;
        let wait = self.replication.map_or(0, |(n, _)| n);
        Ok(Durability::assess(&appendonly, &appendfsync, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::Durability;

    #[test]
    fn only_fsync_always_or_replicas_count_as_safe() {
        assert!(!Durability::assess("yes", "always", 0).can_lose_acknowledged);
        assert!(!Durability::assess("no", "no", 1).can_lose_acknowledged);
        for (aof, fsync) in [("yes", "everysec"), ("yes", "no"), ("no", "everysec"), ("unknown", "unknown")] {
            let verdict = Durability::assess(aof, fsync, 0);
            assert!(verdict.can_lose_acknowledged, "{aof}/{fsync}");
            assert!(!verdict.summary.is_empty());
        }
    }
}
