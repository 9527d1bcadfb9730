//! Encryption at rest: the keys (read from the key file, see `keyfile`) and
//! the AEAD that seals each secret's value.
//!
//! A sealed value is `nonce (24 bytes) || ciphertext+tag`, XChaCha20-Poly1305
//! with a fresh random nonce per write (24 bytes are enough to pick at
//! random without fear of a repeat) and the secret's name as associated
//! data, so a ciphertext copied onto another row does not open. Each row
//! records the id of the key that sealed it; the last key of the file seals
//! new writes, and every key in it can open rows, which is what lets
//! `backend seal` rotate online.
//!
//! Key bytes live only inside the ciphers, which wipe them when dropped
//! (the crate's `zeroize` feature), and nothing here prints them: `Debug`
//! shows the ids alone.

pub mod keyfile;

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};

/// Bytes of the random nonce at the start of every sealed value.
pub const NONCE_LEN: usize = 24;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// What the previous release's `value` column gets from this one while it
/// exists (schema version 5): never the value, which is only written sealed.
pub const SEALED_PLACEHOLDER: &str = "(sealed)";

/// One named key, ready to seal and open.
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// Every key of the key file, in file order; the last one is current.
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

/// A value sealed under the key `key_id`.
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// Why a sealed value did not open. The messages name the secret and the
/// key id, never a value or a key.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// No key of the key file has this id.
    UnknownKey,
    /// Too short to hold a nonce and a tag.
    Truncated,
    /// The tag did not verify: another key, another row's ciphertext, or damage.
    Forged,
    /// It opened, but the plaintext is not UTF-8 (the API only stores text).
    NotText,
}

impl Keyring {
    /// A keyring of `(id, key bytes)` pairs; the last is current. Callers
    /// have checked the ids (`keyfile` does); an empty list is refused.
    pub fn new(keys: Vec<(String, [u8; KEY_LEN])>) -> Option<Keyring> {
        if keys.is_empty() {
            return None;
        }
        let keys = keys
            .into_iter()
            .map(|(id, mut bytes)| {
                let cipher = XChaCha20Poly1305::new(&bytes.into());
                zeroize::Zeroize::zeroize(&mut bytes);
                Key { id, cipher }
            })
            .collect();
        Some(Keyring { keys })
    }

    /// The id of the key new writes are sealed with.
    pub fn current_id(&self) -> &str {
        self.current().id.as_str()
    }

    /// Every key id, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    fn current(&self) -> &Key {
        // `new` refuses an empty list, so there is always a last key.
        &self.keys[self.keys.len() - 1]
    }

    fn find(&self, key_id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == key_id)
    }

    /// Seals `value` for the secret `name` under the current key.
    pub fn seal(&self, name: &str, value: &str) -> anyhow::Result<Sealed> {
        let key = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| anyhow::anyhow!("the operating system gave no random nonce: {e}"))?;
        let payload = Payload {
            msg: value.as_bytes(),
            aad: name.as_bytes(),
        };
        let ciphertext = key
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| anyhow::anyhow!("sealing the value of `{name}` failed"))?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key.id.clone(),
            bytes,
        })
    }

    /// Opens the value of the secret `name` that `key_id` sealed.
    pub fn open(&self, name: &str, key_id: &str, sealed: &[u8]) -> Result<String, OpenError> {
        let key = self.find(key_id).ok_or(OpenError::UnknownKey)?;
        if sealed.len() < NONCE_LEN + 16 {
            return Err(OpenError::Truncated);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Truncated)?;
        let payload = Payload {
            msg: ciphertext,
            aad: name.as_bytes(),
        };
        let plain = key
            .cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| OpenError::Forged)?;
        String::from_utf8(plain).map_err(|_| OpenError::NotText)
    }
}

impl OpenError {
    /// What went wrong with the row `name` sealed under `key_id`, and what to do.
    pub fn describe(&self, name: &str, key_id: &str) -> String {
        let what = match self {
            OpenError::UnknownKey => "no key with this id is in the key file (SECRETS_KEY_FILE): \
                 add the key that sealed it back to the file"
                .to_owned(),
            OpenError::Truncated => "the sealed value is too short to be one: the row is damaged"
                .to_owned(),
            OpenError::Forged => "the sealed value does not authenticate under that key for this \
                 name: it was sealed for another row, under another key with the same id, or damaged"
                .to_owned(),
            OpenError::NotText => "the sealed value opened but is not UTF-8 text".to_owned(),
        };
        format!("secret `{name}` (key id `{key_id}`): {what}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause
mod tests {
    use super::*;

    fn ring(ids: &[(&str, u8)]) -> Keyring {
        Keyring::new(
            ids.iter()
                .map(|(id, b)| ((*id).to_owned(), [*b; KEY_LEN]))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn seals_and_opens_under_the_current_key() {
        let keys = ring(&[("old", 1), ("new", 2)]);
        let sealed = keys.seal("db-password", "hunter2").unwrap();
        assert_eq!(sealed.key_id, "new");
        assert!(!sealed.bytes.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            keys.open("db-password", "new", &sealed.bytes).unwrap(),
            "hunter2"
        );
    }

    #[test]
    fn every_key_opens_its_own_rows() {
        let old = ring(&[("old", 1)]);
        let sealed = old.seal("a", "value").unwrap();
        let both = ring(&[("old", 1), ("new", 2)]);
        assert_eq!(both.open("a", "old", &sealed.bytes).unwrap(), "value");
    }

    #[test]
    fn another_name_another_key_or_damage_does_not_open() {
        let keys = ring(&[("k", 1)]);
        let sealed = keys.seal("a", "value").unwrap();
        assert_eq!(keys.open("b", "k", &sealed.bytes), Err(OpenError::Forged));
        assert_eq!(
            keys.open("a", "x", &sealed.bytes),
            Err(OpenError::UnknownKey)
        );
        let other = ring(&[("k", 9)]);
        assert_eq!(other.open("a", "k", &sealed.bytes), Err(OpenError::Forged));
        let mut flipped = sealed.bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(keys.open("a", "k", &flipped), Err(OpenError::Forged));
        assert_eq!(
            keys.open("a", "k", &sealed.bytes[..30]),
            Err(OpenError::Truncated)
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let keys = ring(&[("k", 1)]);
        let one = keys.seal("a", "same").unwrap();
        let two = keys.seal("a", "same").unwrap();
        assert_ne!(one.bytes[..NONCE_LEN], two.bytes[..NONCE_LEN]);
    }

    #[test]
    fn debug_shows_ids_only() {
        let keys = ring(&[("k1", 0xAB)]);
        assert_eq!(format!("{keys:?}"), r#"Keyring { key_ids: ["k1"] }"#);
    }
}
