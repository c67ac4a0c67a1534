//! Optional per-source rate limits: a token bucket per source, refilled at
//! `rate_limit_per_sec` with one second of burst.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use crate::{domain::SourceName, providers::SourceTable};

/// The buckets of every rate-limited source.
#[derive(Debug, Default)]
pub struct RateLimits(HashMap<SourceName, Bucket>);

/// One source's bucket. A std `Mutex`, not Tokio's: the critical section is
/// a few arithmetic operations and never awaits, so it never blocks a worker
/// thread for long.
#[derive(Debug)]
struct Bucket {
    per_sec: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimits {
    /// Buckets for the sources that set `rate_limit_per_sec`.
    pub fn new(sources: &SourceTable) -> Self {
        let buckets = sources.iter().filter_map(|source| {
            let per_sec = f64::from(source.rate_limit_per_sec?.get());
            Some((source.name.clone(), Bucket { per_sec, state: Mutex::new((per_sec, Instant::now())) }))
        });
        Self(buckets.collect())
    }

    /// Takes one token for `source`; false when its bucket is empty.
    pub fn admit(&self, source: &SourceName) -> bool {
        let Some(bucket) = self.0.get(source) else { return true };
        // A poisoned lock means a panic elsewhere mid-update; the bucket's
        // numbers are still valid, so keep limiting rather than fail open.
        let mut state = bucket.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = *state;
        let now = Instant::now();
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * bucket.per_sec).min(bucket.per_sec);
        if refilled >= 1.0 {
            *state = (refilled - 1.0, now);
            true
        } else {
            *state = (refilled, now);
            false
        }
    }
}
