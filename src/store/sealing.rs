//! Raw bodies encrypted at rest (optional): with keys configured, Redis never
//! holds a readable payment payload.
//!
//! AES-256-GCM (aws-lc-rs) with a random 96-bit nonce per body. The stored
//! `body` is `nonce ‖ ciphertext ‖ tag`, and the entry's `key_id` names the
//! key, so keys can rotate: the first configured key seals, every configured
//! key opens. The arrival's source, provider and arrival time are bound in
//! as associated data, so a sealed body cannot be moved to another entry.

use std::collections::HashMap;

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use base64::{engine::general_purpose::STANDARD, Engine};

/// The keys that seal and open bodies. `Debug` shows key ids only.
pub struct Sealer {
    current: String,
    keys: HashMap<String, RandomizedNonceKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("current", &self.current).field("key_ids", &self.keys.keys()).finish()
    }
}

/// Why a configured key is unusable (never containing the key).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not `<key id>:<base64 of 32 bytes>`.
    #[error("must be <key id>:<base64 of 32 random bytes>")]
    Format,
    /// The same key id twice.
    #[error("key id {0} is configured twice")]
    Duplicate(String),
}

impl Sealer {
    /// Keys from `id:base64` texts, the first one sealing.
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Option<Self>, KeyError> {
        let mut current = None;
        let mut keys = HashMap::new();
        for text in texts {
            let (id, b64) = text.split_once(':').ok_or(KeyError::Format)?;
            let id_ok = !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let bytes = STANDARD.decode(b64.trim()).map_err(|_| KeyError::Format)?;
            if !id_ok || bytes.len() != 32 {
                return Err(KeyError::Format);
            }
            let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyError::Format)?;
            if keys.insert(id.to_owned(), key).is_some() {
                return Err(KeyError::Duplicate(id.to_owned()));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        Ok(current.map(|current| Self { current, keys }))
    }

    /// Seals `body`: the key id and `nonce ‖ ciphertext ‖ tag`.
    ///
    /// # Panics
    /// Never in practice: AES-GCM sealing fails only for inputs over 64 GiB.
    pub fn seal(&self, associated: &[u8], body: &[u8]) -> (&str, Vec<u8>) {
        let key = &self.keys[&self.current];
        let mut sealed = body.to_vec();
        let nonce = key.seal_in_place_append_tag(Aad::from(associated), &mut sealed).expect("AES-GCM seals any body");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&sealed);
        (&self.current, out)
    }

    /// Opens what [`Sealer::seal`] made; `None` if the key is unknown or the
    /// data or its associated data were altered.
    pub fn open(&self, key_id: &str, associated: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let key = self.keys.get(key_id)?;
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = key.open_in_place(nonce, Aad::from(associated), &mut buffer).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn a_sealed_body_opens_only_with_its_key_and_associated_data() {
        let sealer = Sealer::new([K1]).unwrap().unwrap();
        let (id, sealed) = sealer.seal(b"stripe", b"{\"amount\":1}");
        assert_eq!(id, "k1");
        assert!(!sealed.windows(6).any(|w| w == b"amount"), "no readable payload");
        assert_eq!(sealer.open("k1", b"stripe", &sealed).as_deref(), Some(&b"{\"amount\":1}"[..]));
        assert_eq!(sealer.open("k1", b"other", &sealed), None);
        assert_eq!(sealer.open("k9", b"stripe", &sealed), None);
        let mut tampered = sealed.clone();
        tampered[NONCE_LEN] ^= 1;
        assert_eq!(sealer.open("k1", b"stripe", &tampered), None);
        assert_eq!(sealer.open("k1", b"stripe", &sealed[..5]), None);
    }

    #[test]
    fn keys_rotate_new_seals_old_still_opens() {
        let old = Sealer::new([K1]).unwrap().unwrap();
        let (_, before) = old.seal(b"a", b"body");
        let rotated = Sealer::new([K2, K1]).unwrap().unwrap();
        assert_eq!(rotated.open("k1", b"a", &before).as_deref(), Some(&b"body"[..]));
        assert_eq!(rotated.seal(b"a", b"body").0, "k2");
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        assert_eq!(Sealer::new(["nocolon"]).unwrap_err(), KeyError::Format);
        assert_eq!(Sealer::new(["k:c2hvcnQ="]).unwrap_err(), KeyError::Format);
        assert_eq!(Sealer::new([K1, K1]).unwrap_err(), KeyError::Duplicate("k1".into()));
        assert!(Sealer::new([]).unwrap().is_none());
        assert!(!format!("{:?}", Sealer::new([K1]).unwrap().unwrap()).contains("AAECAw"));
    }
}
