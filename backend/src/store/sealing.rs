//! What the store needs to read and write values sealed: the keys, and
//! whether the previous release's plaintext `value` column still exists
//! (schema version 5) or a contract migration has dropped it. Engine-neutral:
//! the engines hand rows in and out as [`StoredValue`]s and never touch a key.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;

use crate::seal::{Keyring, Sealed};

/// The keys and the shape of `secrets`, shared by every request.
#[derive(Debug)]
pub struct Vault {
    keys: Keyring,
    /// Whether `secrets.value` exists. Read when the database is opened (at
    /// start and whenever maintenance mode ends, which is when a contract
    /// migration can have dropped it), not per request.
    value_column: AtomicBool,
}

impl Vault {
    /// Until told otherwise the column is assumed present: a write then
    /// names it, and fails loudly rather than silently if it is gone.
    pub fn new(keys: Keyring) -> Vault {
        Vault {
            keys,
            value_column: AtomicBool::new(true),
        }
    }

    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    pub fn has_value_column(&self) -> bool {
        self.value_column.load(Ordering::Relaxed)
    }

    pub fn set_value_column(&self, exists: bool) {
        self.value_column.store(exists, Ordering::Relaxed);
    }
}

/// A row's value as stored: sealed (`sealed` and `key_id`), or plaintext as
/// the previous release wrote it (`sealed` NULL).
#[derive(Debug)]
pub struct StoredValue {
    pub id: i64,
    pub name: String,
    /// `value`, or None when the column is gone.
    pub plaintext: Option<String>,
    pub sealed: Option<Vec<u8>>,
    pub key_id: Option<String>,
}

impl StoredValue {
    /// The value, opened with `keys` or read from the plaintext column. The
    /// error names the secret and the key id, never a value.
    pub fn reveal(&self, keys: &Keyring) -> anyhow::Result<String> {
        match (&self.sealed, &self.key_id, &self.plaintext) {
            (Some(bytes), Some(key_id), _) => keys
                .open(&self.name, key_id, bytes)
                .map_err(|e| anyhow::anyhow!(e.describe(&self.name, key_id))),
            (Some(_), None, _) => bail!(
                "secret `{}` has a sealed value but no key id: the row is damaged",
                self.name
            ),
            (None, _, Some(plain)) => Ok(plain.clone()),
            (None, _, None) => bail!(
                "secret `{}` is not sealed and the plaintext column is gone: \
                 restore the backup taken before the contract migration",
                self.name
            ),
        }
    }

    /// The row sealed under the current key, or None when it already is.
    pub fn resealed(&self, keys: &Keyring) -> anyhow::Result<Option<Sealed>> {
        if self.key_id.as_deref() == Some(keys.current_id()) && self.sealed.is_some() {
            return Ok(None);
        }
        let value = zeroize::Zeroizing::new(self.reveal(keys)?);
        keys.seal(&self.name, &value).map(Some)
    }
}

/// One batch of `backend seal`: how many rows it read, how many it sealed,
/// the highest id it read (where the next batch starts) and the rows that
/// could not be opened, with why.
#[derive(Debug, Default)]
pub struct Batch {
    pub read: u64,
    pub sealed: u64,
    pub last_id: Option<i64>,
    pub failures: Vec<(i64, String)>,
}
