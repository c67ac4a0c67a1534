//! When a failed arrival is tried again: exponential backoff with jitter.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    time::Duration,
};

/// Delays between attempts: `base · 2^(n-1)`, capped at `max`, then
/// "equal jitter" (a delay between half and all of that), so arrivals that
/// failed together (a Redis blip) do not all retry in the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay after the `deliveries`-th failed delivery of entry `id`. The
    /// jitter is derived from the id and count rather than drawn at random,
    /// so every processor polling the parked arrivals agrees on when each one
    /// is due.
    pub fn delay(&self, id: &str, deliveries: u32) -> Duration {
        let doublings = deliveries.saturating_sub(1).min(31);
        let full = self.base.saturating_mul(1 << doublings).min(self.max);
        let mut hasher = DefaultHasher::new();
        (id, deliveries).hash(&mut hasher);
        let fraction = (hasher.finish() % 1000) as u32;
        full / 2 + (full / 2) * fraction / 1000
    }

    /// Whether an arrival parked for `idle` after `deliveries` deliveries is due.
    pub fn is_due(&self, id: &str, deliveries: u32, idle: Duration) -> bool {
        idle >= self.delay(id, deliveries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(60) };

    #[test]
    fn delays_double_within_their_jitter_band() {
        for n in 1..=6u32 {
            let full = Duration::from_secs(1 << (n - 1));
            let delay = BACKOFF.delay("1-0", n);
            assert!(delay >= full / 2 && delay <= full, "attempt {n}: {delay:?}");
        }
    }

    #[test]
    fn delays_are_capped() {
        assert!(BACKOFF.delay("1-0", 40) <= Duration::from_secs(60));
        assert!(BACKOFF.delay("1-0", u32::MAX) >= Duration::from_secs(30));
    }

    #[test]
    fn jitter_spreads_arrivals_but_is_stable_per_arrival() {
        let delays: std::collections::HashSet<Duration> =
            (0..50).map(|i| BACKOFF.delay(&format!("{i}-0"), 3)).collect();
        assert!(delays.len() > 10, "jitter spreads: {}", delays.len());
        assert_eq!(BACKOFF.delay("7-0", 3), BACKOFF.delay("7-0", 3));
    }

    #[test]
    fn an_arrival_is_due_once_its_delay_has_passed() {
        let delay = BACKOFF.delay("9-0", 2);
        assert!(!BACKOFF.is_due("9-0", 2, delay - Duration::from_millis(1)));
        assert!(BACKOFF.is_due("9-0", 2, delay));
    }
}
