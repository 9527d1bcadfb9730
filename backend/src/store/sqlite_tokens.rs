//! API tokens on SQLite: rows of `api_tokens` (name, SHA-256 of the token,
//! dates). Revoking sets `revoked_at`; rows are never deleted, so a name is
//! never reused. Dates are SQLite's own clock, as for secrets.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::{
    model::{Revocation, StoreError, StoredToken, TokenInfo},
    sqlite::NOW,
};

/// The columns `info_from_row` reads.
const INFO_COLUMNS: &str = "name, created_at, revoked_at";

/// Records a new token by its hash; `Duplicate` when the name was ever used.
pub fn create(conn: &Connection, name: &str, hash: &[u8; 32]) -> Result<TokenInfo, StoreError> {
    let tx = writing(conn)?;
    let info = tx
        .query_row(
            &format!(
                "INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?1, ?2, {NOW}) \
                 RETURNING {INFO_COLUMNS}"
            ),
            params![name, &hash[..]],
            info_from_row,
        )
        .map_err(create_error)?;
    tx.commit()?;
    Ok(info)
}

/// An explicit write transaction. A RETURNING statement read with
/// `query_row` in autocommit mode commits when the statement is dropped,
/// where an error (a full disk) is lost: the command would say "created"
/// or "revoked" of a change SQLite rolled back. `commit()` reports it.
fn writing(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

/// Only the name's own UNIQUE constraint means the name is taken; a clash
/// of hashes (never seen with 256 random bits) is the server's error.
fn create_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, Some(message))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.ends_with("UNIQUE constraint failed: api_tokens.name") =>
        {
            StoreError::Duplicate
        }
        _ => StoreError::Other(e.into()),
    }
}

/// Every token, oldest first.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {INFO_COLUMNS} FROM api_tokens ORDER BY id"
    ))?;
    let rows = stmt.query_map([], info_from_row)?;
    rows.collect()
}

/// Revokes the token named `name`, if it is active.
/// A clock that stepped back since the token was created does not block
/// the revocation: it is dated no earlier than the creation.
pub fn revoke(conn: &Connection, name: &str) -> rusqlite::Result<Revocation> {
    let tx = writing(conn)?;
    let revoked = tx
        .query_row(
            &format!(
                "UPDATE api_tokens SET revoked_at = max({NOW}, created_at) \
                 WHERE name = ?1 AND revoked_at IS NULL RETURNING {INFO_COLUMNS}"
            ),
            [name],
            info_from_row,
        )
        .optional()?;
    tx.commit()?;
    if let Some(info) = revoked {
        return Ok(Revocation::Revoked(info));
    }
    let before = conn
        .query_row(
            &format!("SELECT {INFO_COLUMNS} FROM api_tokens WHERE name = ?1"),
            [name],
            info_from_row,
        )
        .optional()?;
    Ok(before.map_or(Revocation::Unknown, Revocation::AlreadyRevoked))
}

/// The token whose hash is `hash`, revoked or not.
pub fn find_by_hash(conn: &Connection, hash: &[u8; 32]) -> rusqlite::Result<Option<StoredToken>> {
    // Cached: every API request runs it.
    conn.prepare_cached(
        "SELECT name, token_hash, revoked_at IS NOT NULL FROM api_tokens WHERE token_hash = ?1",
    )?
    .query_row([&hash[..]], |row| {
        Ok(StoredToken {
            name: row.get(0)?,
            token_hash: row.get(1)?,
            revoked: row.get(2)?,
        })
    })
    .optional()
}

/// Whether any token can be used.
pub fn any_active(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)",
        [],
        |row| row.get(0),
    )
}

fn info_from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        name: row.get(0)?,
        created_at: row.get(1)?,
        revoked_at: row.get(2)?,
    })
}
