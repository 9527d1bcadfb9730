//! The secrets store on SQLite. SQLite computes every timestamp itself
//! (`strftime`), so rows agree on one clock and come back as the RFC 3339
//! strings the API shows; the Postgres engine matches these answers.

use std::{path::Path, time::Duration};

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
};

use super::{
    model::{Secret, SecretMeta, StoreError},
    sealing::{Batch, StoredValue},
};
use crate::{
    schema,
    seal::{Keyring, SEALED_PLACEHOLDER, Sealed},
};

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
             `secrets-ops migrate --create` (`cargo xtask migrate --create` in a checkout; or point DATABASE_URL at the right file)",
            path.display()
        );
    }
    // No SQLITE_OPEN_URI: a path is a path, whatever characters it holds.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|e| anyhow::anyhow!("opening database {}: {e}", path.display()))?;
    conn.busy_handler(Some(wait_for_the_lock))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // A value sealed over the previous release's plaintext, or deleted, must
    // not linger in the free space of the file (nor in its backups).
    conn.pragma_update(None, "secure_delete", true)?;
    switch_to_wal(&conn, path)?;
    Ok(conn)
}

/// SQLite's own busy wait backs off to 100 ms between tries, so a request
/// could miss every short gap between another writer's transactions (the
/// backfill's batches) for a second. This one tries every millisecond,
/// for up to [`BUSY_TIMEOUT_MS`] in all.
fn wait_for_the_lock(tries: i32) -> bool {
    if u32::try_from(tries).unwrap_or(u32::MAX) >= BUSY_TIMEOUT_MS {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
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
/// The value is written only `sealed`; while the previous release's
/// `value` column exists (`value_column`) it gets the placeholder.
pub fn insert(
    conn: &mut Connection,
    name: &str,
    sealed: &Sealed,
    value_column: bool,
    ttl_seconds: Option<i64>,
) -> Result<SecretMeta, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Cached statements: the hot paths skip parsing their SQL each request.
    tx.prepare_cached(&format!(
        "DELETE FROM secrets WHERE name = ?1 AND expires_at <= {NOW}"
    ))?
    .execute([name])?;
    let (column, placeholder) = if value_column {
        (", value", format!(", '{SEALED_PLACEHOLDER}'"))
    } else {
        ("", String::new())
    };
    let meta = tx
        .prepare_cached(&format!(
            "INSERT INTO secrets (name, sealed_value, key_id, created_at, expires_at{column}) \
             VALUES (?1, ?2, ?4, {NOW}, {EXPIRES_AFTER_TTL}{placeholder}) \
             RETURNING name, created_at, expires_at"
        ))?
        .query_row(
            params![name, sealed.bytes, ttl_seconds, sealed.key_id],
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

/// Reads a live secret, opens its value with `keys`, and records the read,
/// and the token that made it, in the access log (not when the value does
/// not open).
pub fn reveal(
    conn: &mut Connection,
    name: &str,
    token_name: &str,
    keys: &Keyring,
    value_column: bool,
) -> anyhow::Result<Option<Secret>> {
    // IMMEDIATE: the reveal writes its access-log row after reading. A
    // deferred transaction would have to upgrade its read to a write, which
    // SQLite refuses at once (SQLITE_BUSY, no busy wait) when another
    // connection (`backend seal`, another process) committed in between.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = tx
        .prepare_cached(&format!(
            "SELECT id, name, created_at, expires_at, {}, sealed_value, key_id FROM secrets \
             WHERE name = ?1 AND (expires_at IS NULL OR expires_at > {NOW})",
            plaintext_column(value_column)
        ))?
        .query_row([name], |row| {
            Ok((meta_from_row_at(row, 1)?, stored_from_row(row)?))
        })
        .optional()?;
    let Some((meta, stored)) = found else {
        return Ok(None);
    };
    let value = stored.reveal(keys)?;
    tx.prepare_cached(&format!(
        "INSERT INTO secret_access_log (secret_id, action, accessed_at, token_name) \
         VALUES (?1, 'read', {NOW}, ?2)"
    ))?
    .execute(params![stored.id, token_name])?;
    tx.commit()?;
    Ok(Some(Secret { meta, value }))
}

/// The select-list item for the plaintext column, NULL once it is gone.
fn plaintext_column(value_column: bool) -> &'static str {
    if value_column { "value" } else { "NULL" }
}

/// Whether `secrets.value` (the previous release's plaintext) still exists.
pub fn has_value_column(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('secrets') WHERE name = 'value')",
        [],
        |row| row.get(0),
    )
}

/// How many rows are not sealed under `current` (the backfill's work).
/// One sealed row per key id the table uses, and how many rows it sealed.
pub fn one_row_per_key(conn: &Connection) -> rusqlite::Result<Vec<super::model::KeySample>> {
    let mut stmt = conn.prepare(
        "SELECT s.key_id, k.n, s.name, s.sealed_value FROM secrets s \
         JOIN (SELECT key_id, min(id) AS id, count(*) AS n FROM secrets \
               WHERE key_id IS NOT NULL AND sealed_value IS NOT NULL GROUP BY key_id) k ON s.id = k.id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(super::model::KeySample {
            key_id: row.get(0)?,
            rows: row.get(1)?,
            name: row.get(2)?,
            sealed: row.get(3)?,
        })
    })?;
    rows.collect()
}

pub fn count_to_seal(conn: &Connection, current: &str) -> rusqlite::Result<u64> {
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM secrets WHERE key_id IS NULL OR key_id <> ?1",
        [current],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Seals up to `limit` rows with an id above `after` that are not sealed
/// under the current key, in one short write transaction (taken at once, so
/// no other writer slips in between the read and the updates). An update
/// only lands if the row still has the key id it was read with.
pub fn seal_batch(
    conn: &mut Connection,
    keys: &Keyring,
    value_column: bool,
    after: i64,
    limit: u32,
) -> anyhow::Result<Batch> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let rows = {
        let mut stmt = tx.prepare(&format!(
            "SELECT id, name, created_at, expires_at, {}, sealed_value, key_id FROM secrets \
             WHERE id > ?1 AND (key_id IS NULL OR key_id <> ?2) ORDER BY id LIMIT ?3",
            plaintext_column(value_column)
        ))?;
        let rows = stmt.query_map(params![after, keys.current_id(), limit], stored_from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let set_placeholder = if value_column {
        format!(", value = '{SEALED_PLACEHOLDER}'")
    } else {
        String::new()
    };
    let update = format!(
        "UPDATE secrets SET sealed_value = ?1, key_id = ?2{set_placeholder} \
         WHERE id = ?3 AND key_id IS ?4"
    );
    let mut batch = Batch::default();
    for row in &rows {
        batch.read += 1;
        batch.last_id = Some(row.id);
        match row.resealed(keys) {
            Ok(Some(sealed)) => {
                let params = params![sealed.bytes, sealed.key_id, row.id, row.key_id];
                batch.sealed += tx.execute(&update, params)? as u64;
            }
            Ok(None) => {}
            Err(e) => batch.failures.push((row.id, format!("{e:#}"))),
        }
    }
    tx.commit()?;
    Ok(batch)
}

/// Copies the WAL into the database file and empties it, so the file holds
/// the sealed rows and no page of the plaintext ones; false when a reader
/// kept part of it (the service's next checkpoint finishes the work).
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        Ok(row.get::<_, i64>(0)? == 0)
    })
}

/// `id, name, created_at, expires_at, value, sealed_value, key_id`.
fn stored_from_row(row: &Row<'_>) -> rusqlite::Result<StoredValue> {
    Ok(StoredValue {
        id: row.get(0)?,
        name: row.get(1)?,
        plaintext: row.get(4)?,
        sealed: row.get(5)?,
        key_id: row.get(6)?,
    })
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
    meta_from_row_at(row, 0)
}

/// The meta columns of `row`, starting at column `at`.
fn meta_from_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<SecretMeta> {
    Ok(SecretMeta {
        name: row.get(at)?,
        created_at: row.get(at + 1)?,
        expires_at: row.get(at + 2)?,
    })
}
