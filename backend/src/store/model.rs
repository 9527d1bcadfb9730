//! The values the store hands out, whatever the engine. They live apart from
//! the engines so that `sqlite` and `postgres` share them without importing
//! each other or the dispatch in `store`: both engines build these from their
//! own rows, and the API above sees one shape. Timestamps are RFC 3339 UTC
//! strings to the second on both engines.

use serde::Serialize;

/// A secret's name and dates; never its value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A secret with its value, as `reveal` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Secret {
    #[serde(flatten)]
    pub meta: SecretMeta,
    pub value: String,
}

/// Why storing a secret or a token failed. Each engine converts its own driver errors
/// into `Other` (the `From` impls sit beside the engine's queries).
#[derive(Debug)]
pub enum StoreError {
    /// A live secret, or a token (revoked or not), already has this name.
    Duplicate,
    Other(anyhow::Error),
}

/// An API token as `backend token list` shows it: never its hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The row a token's hash found: the web layer compares the hash again in
/// constant time and refuses a revoked token.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub name: String,
    pub token_hash: Vec<u8>,
    pub revoked: bool,
}

/// What `revoke` found. Rows are never deleted, so a name is never reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Revoked(TokenInfo),
    /// Revoked before; nothing changed.
    AlreadyRevoked(TokenInfo),
    Unknown,
}

/// A sealed row standing for every row its key id sealed.
pub struct KeySample {
    pub key_id: String,
    pub rows: i64,
    pub name: String,
    pub sealed: Vec<u8>,
}

/// A statement named a column the table no longer has (Postgres SQLSTATE
/// 42703), kept under the redacted message so the store can tell a
/// contract migration ran.
#[derive(Debug)]
pub struct ColumnGone;

impl std::fmt::Display for ColumnGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a column the statement names does not exist")
    }
}

impl std::error::Error for ColumnGone {}
