//! What names one signed delivery, for the exact-replay guard.
//!
//! A provider that signs a time or a delivery id tells, with each verified
//! request, which delivery it is: a [`Delivery`] built only from the values
//! its signature covers. Unsigned text (an extra `v0=` in `Stripe-Signature`,
//! a padded Standard Webhooks signature list, an unsigned id header) takes no
//! part in it, so a captured request cannot be made to look new.
//!
//! The guard is named by the SHA-256 of the source and that identity; it holds
//! the first arrival id, and it lives as long as a copy of the delivery could
//! still verify. Where the signature carries its time, that is one instant for
//! every copy ([`Guard::timed`]), so the store can keep such guards in buckets
//! that expire together. When a MAC covers the body (every HMAC scheme), the
//! MAC is part of the identity and stands for the body: it is the one payhook
//! computes with the source's first secret, whichever secret matched, so
//! dropping one of several signatures of a rotation makes no new delivery.
//! PayPal signs only a CRC-32 of the body, which anyone can match, so there
//! the transmission id alone names the delivery, the guard keeps the body's
//! SHA-256 too, and a second body under it is refused as a forgery.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{
    signature::{within_tolerance, MacBytes},
    Rejection, SignatureMatch, Verified,
};

/// The signed identity of one delivery. Only providers build one, from the
/// parts their verification checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The signed values naming the delivery, each length-prefixed so that
    /// no two lists of values encode alike.
    signed: Vec<u8>,
    /// How the body belongs to the delivery.
    binding: Binding,
    /// How much longer, from its arrival, a copy of the delivery would verify.
    valid_for: Duration,
    /// Whether the signature carries its time (see [`Guard::timed`]).
    timed: bool,
}

/// How a signature binds the body to the signed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Binding {
    /// A MAC covers the body: the MAC is part of the identity.
    Signed,
    /// Only a forgeable checksum covers it (PayPal's CRC-32): the signed
    /// values alone name the delivery, and one body is allowed under them.
    Checksum,
}

impl Delivery {
    /// A delivery whose `mac` (as verified: computed by payhook with the
    /// matching key, never the header's text) covers `parts` (its time, its
    /// id, whatever else the scheme signs besides the body) and the body;
    /// `parts` include the signed time, after which the delivery verifies
    /// for `valid_for` more. The MAC stands for the body: another body has
    /// another MAC, so the body need not be hashed again.
    pub fn signed(parts: &[&[u8]], mac: &[u8], valid_for: Duration) -> Self {
        let signed = length_prefixed(parts, Some(mac));
        Self { signed, binding: Binding::Signed, valid_for, timed: true }
    }

    /// A delivery whose `mac` covers `parts` (an id, no time) and the body:
    /// a copy verifies forever, so the guard remembers it for `remember_for`
    /// after each copy's arrival.
    pub fn untimed(parts: &[&[u8]], mac: &[u8], remember_for: Duration) -> Self {
        Self { timed: false, ..Self::signed(parts, mac, remember_for) }
    }

    /// A delivery named by `parts` (its signed time among them) whose body is
    /// covered only by a checksum an attacker can match: one body per name.
    pub fn checksummed(parts: &[&[u8]], valid_for: Duration) -> Self {
        let signed = length_prefixed(parts, None);
        Self { signed, binding: Binding::Checksum, valid_for, timed: true }
    }

    /// The guard of this delivery of `body` to `source`. Only a checksummed
    /// delivery hashes its body.
    pub fn guard(&self, source: &str, body: &[u8]) -> Guard {
        let mut key = Sha256::new();
        // The source, length-prefixed like the parts, straight into the hash.
        key.update((source.len() as u64).to_be_bytes());
        key.update(source.as_bytes());
        key.update(&self.signed);
        let body_hash = (self.binding == Binding::Checksum).then(|| Sha256::digest(body).into());
        Guard { key: key.finalize().into(), body_hash, ttl: self.valid_for, timed: self.timed }
    }
}

/// `parts`, then `mac` if any, each after its length, so that no two lists
/// of values encode alike; allocated once, at its exact size.
fn length_prefixed(parts: &[&[u8]], mac: Option<&[u8]>) -> Vec<u8> {
    let all = || parts.iter().copied().chain(mac);
    let mut out = Vec::with_capacity(all().map(|p| p.len() + 8).sum());
    for part in all() {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// What the store needs to hold a delivery's replay guard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    /// SHA-256 naming the delivery (source and signed identity).
    pub key: [u8; 32],
    /// SHA-256 of the body where only a checksum binds it to the delivery:
    /// the same delivery with another body is refused. None where the MAC
    /// covers the body, since the body is then part of `key`.
    pub body_hash: Option<[u8; 32]>,
    /// How long, from this copy's arrival, the guard must live: until no copy
    /// would verify any more.
    pub ttl: Duration,
    /// The signature carries its time, so every copy of the delivery stops
    /// verifying at one instant (arrival plus `ttl`, the same for each copy).
    pub timed: bool,
}

/// How much longer than `received_at` a request signed at `signed_at` passes
/// a `tolerance_secs` check (one more second: the check compares whole
/// seconds). At least a millisecond, so a guard always expires by itself.
pub fn valid_for(signed_at: i64, tolerance_secs: u64, received_at: DateTime<Utc>) -> Duration {
    let last_ms = (i128::from(signed_at) + i128::from(tolerance_secs) + 1) * 1000;
    let left_ms = last_ms - i128::from(received_at.timestamp_millis());
    Duration::from_millis(u64::try_from(left_ms.max(1)).unwrap_or(u64::MAX))
}

impl Verified {
    /// A signature that matched, then its signed time: refused outside
    /// `tolerance_secs` of the arrival (checked after the signature, as the
    /// SDKs do, so a forger learns nothing about the tolerance), else the
    /// delivery named by the `signed` values and the verified MAC, for as
    /// long as a copy would verify.
    pub(super) fn timed(
        (matched, mac): (SignatureMatch, MacBytes),
        signed_at: i64,
        tolerance_secs: u64,
        received_at: DateTime<Utc>,
        signed: &[&[u8]],
    ) -> Result<Self, Rejection> {
        if !within_tolerance(signed_at, received_at, tolerance_secs) {
            return Err(Rejection::TimestampOutOfTolerance);
        }
        let valid_for = valid_for(signed_at, tolerance_secs, received_at);
        Ok(Self { matched, delivery: Some(Delivery::signed(signed, mac.as_ref(), valid_for)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_mac_bound_delivery_is_named_by_its_signed_values_and_mac() {
        let delivery = Delivery::signed(&[b"1700000000"], b"mac of body", MINUTE);
        let guard = delivery.guard("stripe", b"body");
        assert_eq!(guard, Delivery::signed(&[b"1700000000"], b"mac of body", MINUTE).guard("stripe", b"body"));
        // Another body has another MAC: that is what tells them apart.
        let other_body = Delivery::signed(&[b"1700000000"], b"mac of other", MINUTE);
        assert_ne!(guard.key, other_body.guard("stripe", b"other").key);
        assert_ne!(guard.key, delivery.guard("stripe-2", b"body").key);
        assert_ne!(guard.key, Delivery::signed(&[b"1700000001"], b"mac of body", MINUTE).guard("stripe", b"body").key);
        assert_eq!(guard.ttl, MINUTE);
        assert_eq!(guard.body_hash, None, "the MAC stands for the body");
    }

    #[test]
    fn a_checksummed_delivery_is_named_without_its_body() {
        let delivery = Delivery::checksummed(&[b"transmission-1"], MINUTE);
        let (first, second) = (delivery.guard("paypal", b"genuine"), delivery.guard("paypal", b"forged"));
        assert_eq!(first.key, second.key);
        assert!(first.body_hash.is_some() && first.body_hash != second.body_hash);
    }

    #[test]
    fn parts_cannot_be_shifted_into_each_other() {
        let (a, b) = (Delivery::signed(&[b"ab", b"c"], b"m", MINUTE), Delivery::signed(&[b"a", b"bc"], b"m", MINUTE));
        assert_ne!(a.guard("s", b"").key, b.guard("s", b"").key);
        let (c, d) = (Delivery::signed(&[b"ab"], b"cm", MINUTE), Delivery::signed(&[b"abc"], b"m", MINUTE));
        assert_ne!(c.guard("s", b"").key, d.guard("s", b"").key, "nor into the MAC");
    }

    #[test]
    fn a_delivery_is_valid_until_its_signed_time_plus_the_tolerance() {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap();
        assert_eq!(valid_for(1_000, 300, at(1_000_000)), Duration::from_millis(301_000));
        assert_eq!(valid_for(1_000, 300, at(1_250_500)), Duration::from_millis(50_500));
        // Signed in the future (within tolerance): valid for longer.
        assert_eq!(valid_for(1_100, 300, at(1_000_000)), Duration::from_millis(401_000));
        assert_eq!(valid_for(1_000, 300, at(9_000_000)), Duration::from_millis(1));
        assert_eq!(valid_for(i64::MAX, u64::MAX, at(0)), Duration::from_millis(u64::MAX));
    }
}
