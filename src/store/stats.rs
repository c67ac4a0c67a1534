//! The backlog at a glance: what operators look at first.

use chrono::Utc;
use redis::Value;
use serde::Serialize;

use super::{keys::PROCESSORS_GROUP, Store, StoreError};
use crate::domain::ArrivalId;

/// Backlog, lag and dead letters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Entries kept in the arrivals stream.
    pub arrivals: u64,
    /// Arrivals delivered to a processor and not yet acknowledged.
    pub pending: u64,
    /// Arrivals not yet delivered to any processor.
    pub lag: u64,
    /// Age in seconds of the oldest unacknowledged arrival (0 if none).
    pub oldest_pending_age_secs: u64,
    /// Dead letters.
    pub dlq: u64,
}

impl Store {
    /// Reads the backlog from `XINFO GROUPS`, `XPENDING` and `XLEN`.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.keys.arrivals())
            .query_async(&mut self.connection())
            .await
            .unwrap_or(Value::Nil);
        let arrivals = self.arrivals_len().await?;
        // No group yet: no processor has run, so every arrival is lag.
        let (pending, lag) = group_numbers(&groups).unwrap_or((0, arrivals));
        let summary: Value = redis::cmd("XPENDING")
            .arg(self.keys.arrivals())
            .arg(PROCESSORS_GROUP)
            .query_async(&mut self.connection())
            .await
            .unwrap_or(Value::Nil);
        Ok(Stats { arrivals, pending, lag, oldest_pending_age_secs: oldest_age(&summary), dlq: self.dlq_len().await? })
    }
}

/// `pending` and `lag` of the processors group, if it exists.
fn group_numbers(groups: &Value) -> Option<(u64, u64)> {
    let Value::Array(groups) = groups else { return None };
    for group in groups {
        let fields: Vec<(String, Value)> = match group {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| Some((redis::from_redis_value::<String>(kv[0].clone()).ok()?, kv.get(1)?.clone())))
                .collect(),
            Value::Map(map) => map
                .iter()
                .filter_map(|(k, v)| Some((redis::from_redis_value::<String>(k.clone()).ok()?, v.clone())))
                .collect(),
            _ => continue,
        };
        let get = |name: &str| {
            fields.iter().find(|(k, _)| k == name).and_then(|(_, v)| redis::from_redis_value::<u64>(v.clone()).ok())
        };
        if fields.iter().any(|(k, v)| {
            k == "name" && redis::from_redis_value::<String>(v.clone()).ok().as_deref() == Some(PROCESSORS_GROUP)
        }) {
            return Some((get("pending").unwrap_or(0), get("lag").unwrap_or(0)));
        }
    }
    None
}

/// Age of the smallest pending id in an `XPENDING` summary.
fn oldest_age(summary: &Value) -> u64 {
    let Value::Array(items) = summary else { return 0 };
    let Some(oldest) = items.get(1).and_then(|v| redis::from_redis_value::<String>(v.clone()).ok()) else { return 0 };
    let Some(ms) = ArrivalId::parse(&oldest).ok().and_then(|id| id.millis()) else { return 0 };
    let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    now.saturating_sub(ms) / 1000
}
