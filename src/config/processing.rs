//! `[processing]`: the workers, their retries, and how long things are kept.

use std::num::{NonZeroU32, NonZeroUsize};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[processing]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Concurrent processor tasks in this process.
    pub workers: NonZeroUsize,
    /// Deliveries of one arrival before it goes to the DLQ.
    pub max_attempts: NonZeroU32,
    /// How long a published idempotency key suppresses duplicates.
    pub idempotency_ttl_secs: u64,
    /// How long raw arrivals stay in `payhook:arrivals`.
    pub arrival_retention_secs: u64,
    /// Prepended to the CloudEvent type (`com.acme.` → `com.acme.payment.succeeded.v1`).
    pub event_type_prefix: String,
    /// Arrivals read (and acknowledged) per round trip.
    pub batch_size: NonZeroUsize,
    /// How long an arrival may stay unacknowledged with one processor before
    /// another reclaims it. Must exceed the time a batch takes.
    pub visibility_timeout_secs: u64,
    /// Delay before the first retry of a failed arrival; doubles per attempt.
    pub retry_base_ms: u64,
    /// Longest delay between retries.
    pub retry_max_ms: u64,
    /// How long a consumer with nothing pending may stay idle before the
    /// maintenance task removes it from the group (consumers of stopped
    /// gateways would otherwise pile up in `XINFO CONSUMERS`).
    pub idle_consumer_secs: u64,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            workers: NonZeroUsize::new(2).expect("2 is not zero"),
            max_attempts: NonZeroU32::new(5).expect("5 is not zero"),
            idempotency_ttl_secs: 30 * 24 * 3600,
            arrival_retention_secs: 7 * 24 * 3600,
            event_type_prefix: String::new(),
            batch_size: NonZeroUsize::new(100).expect("100 is not zero"),
            visibility_timeout_secs: 30,
            retry_base_ms: 1_000,
            retry_max_ms: 300_000,
            idle_consumer_secs: 3600,
        }
    }
}

impl ProcessingConfig {
    /// The longest time from an arrival's first attempt to its last: every
    /// backoff delay at its full (unjittered) length, `retry_base_ms`
    /// doubling up to `retry_max_ms`, between `max_attempts` attempts.
    pub fn retry_schedule_ms(&self) -> u128 {
        let (attempts, max) = (u128::from(self.max_attempts.get()), u128::from(self.retry_max_ms));
        let mut total = 0;
        for n in 1..attempts {
            let delay = (u128::from(self.retry_base_ms) << (n - 1).min(64)).min(max);
            if delay == max {
                // Every later delay is capped too.
                return total + max * (attempts - n);
            }
            total += delay;
        }
        total
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let type_prefix_ok = self.event_type_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !type_prefix_ok {
            return Err(ConfigError::invalid(
                "processing.event_type_prefix",
                "may hold only letters, digits, '.', '-' and '_'",
            ));
        }
        let positive = [
            ("processing.idempotency_ttl_secs", self.idempotency_ttl_secs),
            ("processing.arrival_retention_secs", self.arrival_retention_secs),
            ("processing.visibility_timeout_secs", self.visibility_timeout_secs),
            ("processing.retry_base_ms", self.retry_base_ms),
            ("processing.retry_max_ms", self.retry_max_ms),
            ("processing.idle_consumer_secs", self.idle_consumer_secs),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::invalid(*key, "must be at least 1"));
        }
        self.consistent_lifetimes()
    }

    /// Lifetimes that must nest, or a payment is published twice or lost:
    /// a dedupe record must outlive every arrival that could be replayed, and an
    /// arrival must outlive its own retries.
    fn consistent_lifetimes(&self) -> Result<(), ConfigError> {
        let (ttl, retention) = (self.idempotency_ttl_secs, self.arrival_retention_secs);
        if ttl < retention {
            return Err(ConfigError::invalid(
                "processing.idempotency_ttl_secs",
                format!(
                    "{ttl} s is shorter than processing.arrival_retention_secs ({retention} s): a replay of an \
                     arrival older than the dedupe record would publish its payment again"
                ),
            ));
        }
        let schedule_ms = self.retry_schedule_ms();
        if u128::from(retention) * 1000 < schedule_ms {
            return Err(ConfigError::invalid(
                "processing.arrival_retention_secs",
                format!(
                    "{retention} s is shorter than the retry schedule ({} s over processing.max_attempts with \
                     processing.retry_base_ms and processing.retry_max_ms): a retried arrival could be gone",
                    schedule_ms.div_ceil(1000)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_schedule_stops_doubling_at_its_cap() {
        let processing = ProcessingConfig {
            max_attempts: NonZeroU32::new(u32::MAX).unwrap(),
            retry_base_ms: 1_000,
            retry_max_ms: 4_000,
            ..ProcessingConfig::default()
        };
        // 1 + 2 + 4 s, then 4 s for each of the remaining delays.
        assert_eq!(processing.retry_schedule_ms(), 7_000 + 4_000 * (u128::from(u32::MAX) - 4));
    }
}
