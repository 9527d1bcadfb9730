//! The secrets store on Postgres: the same operations and answers as the
//! SQLite engine, with the engine's own types (identity keys, `timestamptz`).
//! Timestamps are cut to the second, as SQLite's are, so both engines return
//! identical strings and `cargo xtask db copy` round-trips.

use anyhow::Context;
use postgres::{Client, NoTls, Row, error::SqlState};

use super::model::{Secret, SecretMeta, StoreError};
use crate::{dburl::PgUrl, schema};

/// The statement's clock, to the second (SQLite's `strftime` has no fraction).
const NOW: &str = "date_trunc('second', now())";

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Other(anyhow::anyhow!(crate::db_error::describe_postgres(&e)))
    }
}

/// A `timestamptz` column as the API shows it: `2026-11-24T01:02:03Z`.
fn rfc3339(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

/// Connects to an existing database (never creates one).
pub fn open(url: &PgUrl) -> anyhow::Result<Client> {
    Client::connect(url.connection_string(), NoTls).with_context(|| {
        format!(
            "connecting to {url}: check that the server runs and that the database exists \
             (create and migrate it with `cargo xtask migrate --create`)"
        )
    })
}

/// Highest migration version recorded in the database; 0 when none ran yet.
pub fn applied_version(client: &mut Client) -> anyhow::Result<i64> {
    let history = schema::HISTORY_TABLE;
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&history])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client.query_one(
        &format!("SELECT COALESCE(MAX(version), 0)::int8 FROM {history}"),
        &[],
    )?;
    Ok(row.get(0))
}

/// The select list `meta_from_row` reads: name and both dates as RFC 3339.
fn meta_columns() -> String {
    format!("name, {}, {}", rfc3339("created_at"), rfc3339("expires_at"))
}

/// The `meta_columns` of `row`, starting at column `at`.
fn meta_from_row(row: &Row, at: usize) -> SecretMeta {
    SecretMeta {
        name: row.get(at),
        created_at: row.get(at + 1),
        expires_at: row.get(at + 2),
    }
}

/// Stores a new secret; a name whose secret has expired may be reused.
pub fn insert(
    client: &mut Client,
    name: &str,
    value: &str,
    ttl_seconds: Option<i64>,
) -> Result<SecretMeta, StoreError> {
    let mut tx = client.transaction()?;
    tx.execute(
        &format!("DELETE FROM secrets WHERE name = $1 AND expires_at <= {NOW}"),
        &[&name],
    )?;
    let inserted = tx.query_one(
        &format!(
            "INSERT INTO secrets (name, value, created_at, expires_at) \
             VALUES ($1, $2, {NOW}, {NOW} + $3::int8 * interval '1 second') RETURNING {}",
            meta_columns()
        ),
        &[&name, &value, &ttl_seconds],
    );
    let row = inserted.map_err(insert_error)?;
    tx.commit()?;
    Ok(meta_from_row(&row, 0))
}

/// The constraint Postgres names for `name TEXT UNIQUE` (migrations/postgres/V1).
const NAME_CONSTRAINT: &str = "secrets_name_key";

/// The name's own constraint means a live secret holds the name: the
/// client's to fix. Any other violation (the key, an index an operator
/// added) is the server's: a 500, never a false "already exists".
fn insert_error(e: postgres::Error) -> StoreError {
    let name_taken = e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|db| db.constraint()) == Some(NAME_CONSTRAINT);
    if name_taken {
        StoreError::Duplicate
    } else {
        e.into()
    }
}

/// Names and dates of every live secret, by name.
pub fn list(client: &mut Client) -> anyhow::Result<Vec<SecretMeta>> {
    let rows = client.query(
        &format!(
            "SELECT {} FROM secrets WHERE expires_at IS NULL OR expires_at > {NOW} \
             ORDER BY name COLLATE \"C\"",
            meta_columns()
        ),
        &[],
    )?;
    Ok(rows.iter().map(|row| meta_from_row(row, 0)).collect())
}

/// Reads a live secret and records the read in the access log.
pub fn reveal(client: &mut Client, name: &str) -> anyhow::Result<Option<Secret>> {
    let mut tx = client.transaction()?;
    let found = tx.query_opt(
        &format!(
            "SELECT id, value, {} FROM secrets \
             WHERE name = $1 AND (expires_at IS NULL OR expires_at > {NOW})",
            meta_columns()
        ),
        &[&name],
    )?;
    let Some(row) = found else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    tx.execute(
        &format!(
            "INSERT INTO secret_access_log (secret_id, action, accessed_at) VALUES ($1, 'read', {NOW})"
        ),
        &[&id],
    )?;
    tx.commit()?;
    Ok(Some(Secret {
        meta: meta_from_row(&row, 2),
        value: row.get(1),
    }))
}

/// Deletes every expired secret (and, by cascade, its access log); how many.
pub fn delete_expired(client: &mut Client) -> anyhow::Result<u64> {
    Ok(client.execute(
        &format!("DELETE FROM secrets WHERE expires_at <= {NOW}"),
        &[],
    )?)
}

/// Deletes a secret (and, by cascade, its access log); false when there was none.
pub fn delete(client: &mut Client, name: &str) -> anyhow::Result<bool> {
    Ok(client.execute("DELETE FROM secrets WHERE name = $1", &[&name])? > 0)
}
