//! API tokens on Postgres: the same operations and answers as
//! `sqlite_tokens`, with `timestamptz` dates shown as RFC 3339 to the second.

use postgres::{Client, Row, error::SqlState, types::Type};

use super::{
    model::{Revocation, StoreError, StoredToken, TokenInfo},
    postgres::{NOW, rfc3339},
};

/// The constraint Postgres names for `name TEXT NOT NULL UNIQUE` (migrations/postgres/V5).
const NAME_CONSTRAINT: &str = "api_tokens_name_key";

/// The select list `info_from_row` reads.
fn info_columns() -> String {
    format!("name, {}, {}", rfc3339("created_at"), rfc3339("revoked_at"))
}

/// Records a new token by its hash; `Duplicate` when the name was ever used.
pub fn create(client: &mut Client, name: &str, hash: &[u8; 32]) -> Result<TokenInfo, StoreError> {
    let inserted = client.query_one(
        &format!(
            "INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, {NOW}) \
             RETURNING {}",
            info_columns()
        ),
        &[&name, &&hash[..]],
    );
    match inserted {
        Ok(row) => Ok(info_from_row(&row)),
        Err(e) if is_name_taken(&e) => Err(StoreError::Duplicate),
        Err(e) => Err(e.into()),
    }
}

/// Only the name's own constraint means the name is taken.
fn is_name_taken(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|db| db.constraint()) == Some(NAME_CONSTRAINT)
}

/// Every token, oldest first.
pub fn list(client: &mut Client) -> anyhow::Result<Vec<TokenInfo>> {
    let rows = client.query(
        &format!("SELECT {} FROM api_tokens ORDER BY id", info_columns()),
        &[],
    )?;
    Ok(rows.iter().map(info_from_row).collect())
}

/// Revokes the token named `name`, if it is active.
pub fn revoke(client: &mut Client, name: &str) -> anyhow::Result<Revocation> {
    let revoked = client.query_opt(
        &format!(
            "UPDATE api_tokens SET revoked_at = {NOW} WHERE name = $1 AND revoked_at IS NULL \
             RETURNING {}",
            info_columns()
        ),
        &[&name],
    )?;
    if let Some(row) = revoked {
        return Ok(Revocation::Revoked(info_from_row(&row)));
    }
    let before = client.query_opt(
        &format!("SELECT {} FROM api_tokens WHERE name = $1", info_columns()),
        &[&name],
    )?;
    Ok(before.map_or(Revocation::Unknown, |row| {
        Revocation::AlreadyRevoked(info_from_row(&row))
    }))
}

/// The token whose hash is `hash`, revoked or not.
pub fn find_by_hash(client: &mut Client, hash: &[u8; 32]) -> anyhow::Result<Option<StoredToken>> {
    // Typed: one round trip to the server instead of a prepare first;
    // every API request runs it.
    let row = client.query_typed_opt(
        "SELECT name, token_hash, revoked_at IS NOT NULL FROM api_tokens WHERE token_hash = $1",
        &[(&&hash[..], Type::BYTEA)],
    )?;
    Ok(row.map(|row| StoredToken {
        name: row.get(0),
        token_hash: row.get(1),
        revoked: row.get(2),
    }))
}

/// Whether any token can be used.
pub fn any_active(client: &mut Client) -> anyhow::Result<bool> {
    let row = client.query_one(
        "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)",
        &[],
    )?;
    Ok(row.get(0))
}

fn info_from_row(row: &Row) -> TokenInfo {
    TokenInfo {
        name: row.get(0),
        created_at: row.get(1),
        revoked_at: row.get(2),
    }
}
