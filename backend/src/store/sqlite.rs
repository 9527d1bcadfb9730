//! The secrets store on SQLite. SQLite computes every timestamp itself
//! (`strftime`), so rows agree on one clock and come back as the RFC 3339
//! strings the API shows; the Postgres engine matches these answers.

use std::{path::Path, time::Duration};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};

use super::model::{Secret, SecretMeta, StoreError};
use crate::schema;

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// An RFC 3339 UTC timestamp computed by SQLite itself, so every row agrees on the clock.
pub(super) const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// `?3` seconds from now, or NULL when `?3` is NULL (no expiry).
const EXPIRES_AFTER_TTL: &str = "CASE WHEN ?3 IS NULL THEN NULL \
     ELSE strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+' || ?3 || ' seconds') END";

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Other(e.into())
    }
}

/// Opens an existing SQLite database (never creates one: schema changes belong to
/// `cargo xtask migrate`) with WAL, a busy timeout and foreign keys on.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        anyhow::bail!(
            "database file {} does not exist: create and migrate it with \
             `cargo xtask migrate --create` (or point DATABASE_URL at the right file)",
            path.display()
        );
    }
    // No SQLITE_OPEN_URI: a path is a path, whatever characters it holds.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| anyhow::anyhow!("opening database {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS.into()))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    switch_to_wal(&conn, path)?;
    Ok(conn)
}

/// Switches the journal to WAL; a database that stays in another mode is
/// still served, with a warning.
fn switch_to_wal(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| anyhow::anyhow!("{} is not a usable SQLite database: {e}", path.display()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "could not switch the database to WAL mode");
    }
    Ok(())
}

/// Highest migration version recorded in the database; 0 when none ran yet.
pub fn applied_version(conn: &Connection) -> rusqlite::Result<i64> {
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [schema::HISTORY_TABLE],
        |row| row.get(0),
    )?;
    if !has_history {
        return Ok(0);
    }
    let sql = format!(
        "SELECT COALESCE(MAX(version), 0) FROM {}",
        schema::HISTORY_TABLE
    );
    conn.query_row(&sql, [], |row| row.get(0))
}

/// Stores a new secret; a name whose secret has expired may be reused.
pub fn insert(
    conn: &mut Connection,
    name: &str,
    value: &str,
    ttl_seconds: Option<i64>,
) -> Result<SecretMeta, StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        &format!("DELETE FROM secrets WHERE name = ?1 AND expires_at <= {NOW}"),
        [name],
    )?;
    let meta = tx
        .query_row(
            &format!(
                "INSERT INTO secrets (name, value, created_at, expires_at) \
                 VALUES (?1, ?2, {NOW}, {EXPIRES_AFTER_TTL}) RETURNING name, created_at, expires_at"
            ),
            params![name, value, ttl_seconds],
            meta_from_row,
        )
        .map_err(insert_error)?;
    tx.commit()?;
    Ok(meta)
}

/// The name's own UNIQUE constraint means a live secret holds the name: the
/// client's to fix. Any other violation (the key, an index an operator
/// added) is the server's: a 500, never a false "already exists".
fn insert_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) if is_name_taken(&e) => StoreError::Duplicate,
        _ => StoreError::Other(e.into()),
    }
}

/// SQLite names the columns of the violated constraint in its message.
fn is_name_taken(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(message))
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            && message.ends_with("UNIQUE constraint failed: secrets.name"))
}

/// Names and dates of every live secret, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<SecretMeta>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name, created_at, expires_at FROM secrets \
         WHERE expires_at IS NULL OR expires_at > {NOW} ORDER BY name"
    ))?;
    let rows = stmt.query_map([], meta_from_row)?;
    rows.collect()
}

/// Reads a live secret and records the read, and the token that made it, in the access log.
pub fn reveal(
    conn: &mut Connection,
    name: &str,
    token_name: &str,
) -> rusqlite::Result<Option<Secret>> {
    let tx = conn.transaction()?;
    let found = tx
        .query_row(
            &format!(
                "SELECT id, name, created_at, expires_at, value FROM secrets \
                 WHERE name = ?1 AND (expires_at IS NULL OR expires_at > {NOW})"
            ),
            [name],
            id_and_secret_from_row,
        )
        .optional()?;
    let Some((id, secret)) = found else {
        return Ok(None);
    };
    tx.execute(
        &format!(
            "INSERT INTO secret_access_log (secret_id, action, accessed_at, token_name) \
             VALUES (?1, 'read', {NOW}, ?2)"
        ),
        params![id, token_name],
    )?;
    tx.commit()?;
    Ok(Some(secret))
}

/// Deletes every expired secret (and, by cascade, its access log); how many.
pub fn delete_expired(conn: &Connection) -> rusqlite::Result<u64> {
    let deleted = conn.execute(
        &format!("DELETE FROM secrets WHERE expires_at <= {NOW}"),
        [],
    )?;
    Ok(deleted as u64)
}

/// Deletes a secret (and, by cascade, its access log); false when there was none.
pub fn delete(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM secrets WHERE name = ?1", [name])? > 0)
}

/// `name, created_at, expires_at`, in that order.
fn meta_from_row(row: &Row<'_>) -> rusqlite::Result<SecretMeta> {
    Ok(SecretMeta {
        name: row.get(0)?,
        created_at: row.get(1)?,
        expires_at: row.get(2)?,
    })
}

/// `id`, then the meta columns, then `value`: the row id feeds the access log.
fn id_and_secret_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Secret)> {
    let id: i64 = row.get(0)?;
    let meta = SecretMeta {
        name: row.get(1)?,
        created_at: row.get(2)?,
        expires_at: row.get(3)?,
    };
    let secret = Secret {
        meta,
        value: row.get(4)?,
    };
    Ok((id, secret))
}
