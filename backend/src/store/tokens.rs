//! The token operations of [`Db`], dispatched to each engine's
//! `*_tokens` module: what `backend token` and the API's authentication use.
//! Only hashes go in and out; a token itself never reaches the store.

use super::{
    Db,
    model::{Revocation, StoreError, StoredToken, TokenInfo},
    postgres_tokens, sqlite_tokens,
};

impl Db {
    /// Records a new token by its SHA-256; `Duplicate` when a token (even a
    /// revoked one) ever had this name.
    pub fn create_token(&mut self, name: &str, hash: &[u8; 32]) -> Result<TokenInfo, StoreError> {
        match self {
            Db::Sqlite(conn) => sqlite_tokens::create(conn, name, hash),
            Db::Postgres(client) => postgres_tokens::create(client, name, hash),
        }
    }

    /// Every token's name and dates, oldest first; never a hash.
    pub fn list_tokens(&mut self) -> anyhow::Result<Vec<TokenInfo>> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite_tokens::list(conn)?),
            Db::Postgres(client) => postgres_tokens::list(client),
        }
    }

    /// Revokes the token named `name`; the next request with it is refused.
    pub fn revoke_token(&mut self, name: &str) -> anyhow::Result<Revocation> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite_tokens::revoke(conn, name)?),
            Db::Postgres(client) => postgres_tokens::revoke(client, name),
        }
    }

    /// The token stored under `hash`, revoked or not.
    pub fn token_by_hash(&mut self, hash: &[u8; 32]) -> anyhow::Result<Option<StoredToken>> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite_tokens::find_by_hash(conn, hash)?),
            Db::Postgres(client) => postgres_tokens::find_by_hash(client, hash),
        }
    }

    /// Whether any token is active (a fresh install has none).
    pub fn any_active_token(&mut self) -> anyhow::Result<bool> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite_tokens::any_active(conn)?),
            Db::Postgres(client) => postgres_tokens::any_active(client),
        }
    }
}
