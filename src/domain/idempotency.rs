//! What makes two notifications "the same payment", and where its event lives.

use std::{fmt, num::NonZeroU32};

use sha2::{Digest, Sha256};

use super::IdError;

/// The provider's id of a payment (`pi_…`, a PSP reference, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentId(String);

impl PaymentId {
    const MAX: usize = 255;

    /// Any non-empty printable text up to 255 bytes, without spaces: providers'
    /// ids differ widely, but none holds a space or a control character, and
    /// they become part of Redis keys.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if !s.is_empty() && s.len() <= Self::MAX && s.chars().all(|c| !c.is_whitespace() && !c.is_control()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Shape { max: Self::MAX, allowed: "printable characters without spaces" })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `{provider}:{paymentId}`: one payment, however many provider events
/// announce it, is published once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of `payment` at `provider`.
    pub fn new(provider: &str, payment: &PaymentId) -> Self {
        Self(format!("{provider}:{}", payment.as_str()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An output partition, `0 … partitions-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition(u32);

impl Partition {
    /// The partition of `key`: the first 8 bytes of SHA-256(key), big-endian,
    /// modulo `partitions`. Documented so consumers in any language can compute
    /// it, and stable across releases (changing it would split a payment's
    /// dedupe record from its stream).
    pub fn of(key: &IdempotencyKey, partitions: NonZeroU32) -> Self {
        let digest = Sha256::digest(key.as_str().as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        let index = u64::from_be_bytes(head) % u64::from(partitions.get());
        Self(u32::try_from(index).expect("a value modulo a u32 fits in a u32"))
    }

    /// Partition `index` itself (for code that walks every partition).
    pub fn from_index(index: u32) -> Self {
        Self(index)
    }

    /// The partition number.
    pub fn index(self) -> u32 {
        self.0
    }
}

/// A digest of the payment facts that must agree between two announcements of
/// one payment (provider, payment id, amount, currency, livemode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Hex SHA-256 over the facts, `\n`-separated (no fact holds a newline).
    pub fn of(provider: &str, payment: &PaymentId, amount: u64, currency: &str, livemode: bool) -> Self {
        let text = format!("{provider}\n{}\n{amount}\n{currency}\n{livemode}", payment.as_str());
        Self(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// The digest as lower-case hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> IdempotencyKey {
        IdempotencyKey::new("stripe", &PaymentId::parse(s).unwrap())
    }

    #[test]
    fn one_partition_puts_everything_in_partition_zero() {
        let one = NonZeroU32::new(1).unwrap();
        assert_eq!(Partition::of(&key("pi_a"), one).index(), 0);
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        let eight = NonZeroU32::new(8).unwrap();
        // Pinned: consumers in other languages compute the same value.
        let digest = Sha256::digest(b"stripe:pi_a");
        let expected = u64::from_be_bytes(digest[..8].try_into().unwrap()) % 8;
        assert_eq!(u64::from(Partition::of(&key("pi_a"), eight).index()), expected);
        let used: std::collections::HashSet<u32> =
            (0..200).map(|i| Partition::of(&key(&format!("pi_{i}")), eight).index()).collect();
        assert_eq!(used.len(), 8);
    }

    #[test]
    fn payment_ids_refuse_empty_and_spaces() {
        assert!(PaymentId::parse("").is_err());
        assert!(PaymentId::parse("pi 1").is_err());
        assert!(PaymentId::parse(&"p".repeat(256)).is_err());
        assert!(PaymentId::parse("7914073381342284").is_ok());
    }

    #[test]
    fn fingerprints_differ_when_any_fact_differs() {
        let p = PaymentId::parse("pi_1").unwrap();
        let base = Fingerprint::of("stripe", &p, 2000, "EUR", false);
        assert_eq!(base, Fingerprint::of("stripe", &p, 2000, "EUR", false));
        assert_ne!(base, Fingerprint::of("stripe", &p, 2001, "EUR", false));
        assert_ne!(base, Fingerprint::of("stripe", &p, 2000, "USD", false));
        assert_ne!(base, Fingerprint::of("stripe", &p, 2000, "EUR", true));
    }
}
