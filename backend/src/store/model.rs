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

/// Why storing a secret failed. Each engine converts its own driver errors
/// into `Other` (the `From` impls sit beside the engine's queries).
#[derive(Debug)]
pub enum StoreError {
    /// A live secret already has this name.
    Duplicate,
    Other(anyhow::Error),
}
