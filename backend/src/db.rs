//! Database access for the service, on SQLite or Postgres (`DATABASE_URL`
//! picks): opening, the schema check, and the secrets store. Every function
//! here is blocking; `app` runs them off the async runtime. Both engines
//! return the same values: timestamps are RFC 3339 UTC strings to the second.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use crate::{dburl::DatabaseUrl, pg, schema};

/// An open connection to either engine.
pub enum Db {
    Sqlite(Connection),
    Postgres(postgres::Client),
}

impl Db {
    /// Opens the database `url` names; never creates one.
    pub fn open(url: &DatabaseUrl) -> anyhow::Result<Db> {
        match url {
            DatabaseUrl::Sqlite(path) => open(path).map(Db::Sqlite),
            DatabaseUrl::Postgres(pg_url) => pg::open(pg_url).map(Db::Postgres),
        }
    }

    /// A Postgres connection the server closed (restart, idle timeout) is
    /// useless: the caller drops it and the next request reconnects.
    pub fn is_broken(&self) -> bool {
        match self {
            Db::Sqlite(_) => false,
            Db::Postgres(client) => client.is_closed(),
        }
    }

    pub fn applied_version(&mut self) -> anyhow::Result<i64> {
        match self {
            Db::Sqlite(conn) => Ok(applied_version(conn)?),
            Db::Postgres(client) => pg::applied_version(client),
        }
    }

    pub fn schema_state(&mut self) -> anyhow::Result<SchemaState> {
        Ok(SchemaState::of(self.applied_version()?))
    }

    pub fn insert(
        &mut self,
        name: &str,
        value: &str,
        ttl_seconds: Option<i64>,
    ) -> Result<SecretMeta, StoreError> {
        match self {
            Db::Sqlite(conn) => insert(conn, name, value, ttl_seconds),
            Db::Postgres(client) => pg::insert(client, name, value, ttl_seconds),
        }
    }

    pub fn list(&mut self) -> anyhow::Result<Vec<SecretMeta>> {
        match self {
            Db::Sqlite(conn) => Ok(list(conn)?),
            Db::Postgres(client) => pg::list(client),
        }
    }

    pub fn reveal(&mut self, name: &str) -> anyhow::Result<Option<Secret>> {
        match self {
            Db::Sqlite(conn) => Ok(reveal(conn, name)?),
            Db::Postgres(client) => pg::reveal(client, name),
        }
    }

    pub fn delete(&mut self, name: &str) -> anyhow::Result<bool> {
        match self {
            Db::Sqlite(conn) => Ok(delete(conn, name)?),
            Db::Postgres(client) => pg::delete(client, name),
        }
    }
}

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// An RFC 3339 UTC timestamp computed by SQLite itself, so every row agrees on the clock.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// `?3` seconds from now, or NULL when `?3` is NULL (no expiry).
const EXPIRES_AFTER_TTL: &str = "CASE WHEN ?3 IS NULL THEN NULL \
     ELSE strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+' || ?3 || ' seconds') END";

/// Opens an existing SQLite database (never creates one: schema changes belong to
/// `cargo xtask migrate`) with WAL, a busy timeout and foreign keys on.
fn open(path: &Path) -> anyhow::Result<Connection> {
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
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS.into()))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| anyhow::anyhow!("{} is not a usable SQLite database: {e}", path.display()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "could not switch the database to WAL mode");
    }
    Ok(conn)
}

/// Highest migration version recorded in the database; 0 when none ran yet.
fn applied_version(conn: &Connection) -> rusqlite::Result<i64> {
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

/// How the database's schema compares with the one this binary was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    /// The database needs `cargo xtask migrate` before this build can serve it.
    Behind {
        database: i64,
        expected: i64,
    },
    /// Expanded by a newer release; expand/contract keeps old code working on it.
    Ahead {
        database: i64,
        expected: i64,
    },
}

impl SchemaState {
    fn of(database: i64) -> SchemaState {
        let expected = schema::expected_version();
        match database.cmp(&expected) {
            std::cmp::Ordering::Equal => SchemaState::Current,
            std::cmp::Ordering::Less => SchemaState::Behind { database, expected },
            std::cmp::Ordering::Greater => SchemaState::Ahead { database, expected },
        }
    }
}

/// A secret's name and dates; never its value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Secret {
    #[serde(flatten)]
    pub meta: SecretMeta,
    pub value: String,
}

#[derive(Debug)]
pub enum StoreError {
    Duplicate,
    Other(anyhow::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Other(e.into())
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Other(e.into())
    }
}

/// Stores a new secret; a name whose secret has expired may be reused.
fn insert(
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
        .map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) if is_unique_violation(&e) => {
                StoreError::Duplicate
            }
            _ => StoreError::Other(e.into()),
        })?;
    tx.commit()?;
    Ok(meta)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Names and dates of every live secret, by name.
fn list(conn: &Connection) -> rusqlite::Result<Vec<SecretMeta>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name, created_at, expires_at FROM secrets \
         WHERE expires_at IS NULL OR expires_at > {NOW} ORDER BY name"
    ))?;
    let rows = stmt.query_map([], meta_from_row)?;
    rows.collect()
}

/// Reads a live secret and records the read in the access log.
fn reveal(conn: &mut Connection, name: &str) -> rusqlite::Result<Option<Secret>> {
    let tx = conn.transaction()?;
    let found = tx
        .query_row(
            &format!(
                "SELECT id, name, created_at, expires_at, value FROM secrets \
                 WHERE name = ?1 AND (expires_at IS NULL OR expires_at > {NOW})"
            ),
            [name],
            |row| {
                let id: i64 = row.get(0)?;
                let meta = SecretMeta {
                    name: row.get(1)?,
                    created_at: row.get(2)?,
                    expires_at: row.get(3)?,
                };
                Ok((
                    id,
                    Secret {
                        meta,
                        value: row.get(4)?,
                    },
                ))
            },
        )
        .optional()?;
    let Some((id, secret)) = found else {
        return Ok(None);
    };
    tx.execute(
        &format!("INSERT INTO secret_access_log (secret_id, action, accessed_at) VALUES (?1, 'read', {NOW})"),
        [id],
    )?;
    tx.commit()?;
    Ok(Some(secret))
}

/// Deletes a secret (and, by cascade, its access log); false when there was none.
fn delete(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM secrets WHERE name = ?1", [name])? > 0)
}

fn meta_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SecretMeta> {
    Ok(SecretMeta {
        name: row.get(0)?,
        created_at: row.get(1)?,
        expires_at: row.get(2)?,
    })
}
