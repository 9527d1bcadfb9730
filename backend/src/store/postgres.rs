//! The secrets store on Postgres: the same operations and answers as the
//! SQLite engine, with the engine's own types (identity keys, `timestamptz`).
//! Timestamps are cut to the second, as SQLite's are, so both engines return
//! identical strings and `cargo xtask db copy` round-trips.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use postgres::{Client, NoTls, Row, error::SqlState, types::Type};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

use super::{
    model::{Secret, SecretMeta, StoreError},
    sealing::{Batch, StoredValue},
};
use crate::{
    dburl::PgUrl,
    schema,
    seal::{Keyring, SEALED_PLACEHOLDER, Sealed},
};

/// Every session's `application_name`, so that `pg_stat_activity` (and a
/// migration waiting for the service to let go) names the lock holder.
pub const APPLICATION_NAME: &str = "secrets-backend";
/// How long a request waits for a free connection before it gets a 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// `/health`'s whole budget on the database: its checkout, and each of its
/// statements (`statement_timeout` and `lock_timeout`), so that it answers
/// within a second even when a migration holds locks.
pub const HEALTH_BUDGET: Duration = Duration::from_millis(500);
/// `/health`'s own connections, apart from the API's: requests stuck behind
/// a lock cannot take them.
const HEALTH_CONNECTIONS: u32 = 2;

type Manager = PostgresConnectionManager<NoTls>;
pub type Pool = r2d2::Pool<Manager>;
/// A connection checked out of a [`Pool`]; it goes back when dropped, and
/// one the server closed is replaced by a new one.
pub type Pooled = r2d2::PooledConnection<Manager>;

/// The service's connections: the API's pool, and `/health`'s small one.
pub struct Pools {
    pub api: Pool,
    pub health: Pool,
}

impl Pools {
    /// Connects once (so that a wrong URL or a missing database fails here,
    /// with the server's reason), then sets up the pools, which connect on
    /// demand: `size` for the API, [`HEALTH_CONNECTIONS`] for `/health`.
    pub fn open(url: &PgUrl, size: u32) -> anyhow::Result<Pools> {
        let manager = || manager(url);
        drop(manager()?.connect().with_context(|| connect_failed(url))?);
        let api = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .error_handler(Box::new(LogConnectError))
            .build_unchecked(manager()?);
        let health = r2d2::Pool::builder()
            .max_size(HEALTH_CONNECTIONS)
            .min_idle(Some(0))
            .connection_timeout(HEALTH_BUDGET)
            .error_handler(Box::new(LogConnectError))
            .connection_customizer(Box::new(HealthTimeouts))
            .build_unchecked(manager()?);
        Ok(Pools { api, health })
    }
}

/// The URL's settings with this service's session name; the password stays
/// inside the client's configuration, never in a message.
fn manager(url: &PgUrl) -> anyhow::Result<Manager> {
    let mut config = postgres::Config::from_str(url.connection_string())
        .with_context(|| format!("{url} is not a valid Postgres URL"))?;
    config.application_name(APPLICATION_NAME);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    Ok(PostgresConnectionManager::new(config, NoTls))
}

fn connect_failed(url: &PgUrl) -> String {
    format!(
        "connecting to {url}: check that the server runs and that the database exists \
         (create and migrate it with `secrets-ops migrate --create`, `cargo xtask migrate --create` in a checkout)"
    )
}

/// r2d2 reports a failed connection attempt through the `log` crate, which
/// this service does not read: into the service's own log instead.
#[derive(Debug)]
struct LogConnectError;

impl r2d2::HandleError<postgres::Error> for LogConnectError {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!(
            "opening a database connection failed: {}",
            crate::db_error::describe_postgres(&error)
        );
    }
}

/// `/health`'s sessions give up on a lock or a slow statement within its
/// budget instead of queueing behind a migration.
#[derive(Debug)]
struct HealthTimeouts;

impl r2d2::CustomizeConnection<Client, postgres::Error> for HealthTimeouts {
    fn on_acquire(&self, client: &mut Client) -> Result<(), postgres::Error> {
        let ms = HEALTH_BUDGET.as_millis();
        client.batch_execute(&format!(
            "SET statement_timeout = {ms}; SET lock_timeout = {ms}"
        ))
    }
}

/// The statement's clock, to the second (SQLite's `strftime` has no fraction).
pub(super) const NOW: &str = "date_trunc('second', now())";

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        let described = crate::db_error::describe_postgres(&e);
        if e.code() == Some(&SqlState::UNDEFINED_COLUMN) {
            return StoreError::Other(
                anyhow::Error::new(super::model::ColumnGone).context(described),
            );
        }
        StoreError::Other(anyhow::anyhow!(described))
    }
}

/// A `timestamptz` column as the API shows it: `2026-11-24T01:02:03Z`.
pub(super) fn rfc3339(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
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
/// The value is written only `sealed`; while the previous release's
/// `value` column exists (`value_column`) it gets the placeholder.
pub fn insert(
    client: &mut Client,
    name: &str,
    sealed: &Sealed,
    value_column: bool,
    ttl_seconds: Option<i64>,
) -> Result<SecretMeta, StoreError> {
    let mut tx = client.transaction()?;
    // The hot paths use typed queries: one round trip each, no prepare.
    tx.query_typed(
        &format!("DELETE FROM secrets WHERE name = $1 AND expires_at <= {NOW}"),
        &[(&name, Type::TEXT)],
    )?;
    let (column, placeholder) = if value_column {
        (", value", format!(", '{SEALED_PLACEHOLDER}'"))
    } else {
        ("", String::new())
    };
    let inserted = tx.query_typed_one(
        &format!(
            "INSERT INTO secrets (name, sealed_value, key_id, created_at, expires_at{column}) \
             VALUES ($1, $2, $4, {NOW}, {NOW} + $3 * interval '1 second'{placeholder}) \
             RETURNING {}",
            meta_columns()
        ),
        &[
            (&name, Type::TEXT),
            (&sealed.bytes, Type::BYTEA),
            (&ttl_seconds, Type::INT8),
            (&sealed.key_id, Type::TEXT),
        ],
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

/// Reads a live secret, opens its value with `keys`, and records the read,
/// and the token that made it, in the access log (not when the value does
/// not open).
pub fn reveal(
    client: &mut Client,
    name: &str,
    token_name: &str,
    keys: &Keyring,
    value_column: bool,
) -> anyhow::Result<Option<Secret>> {
    let mut tx = client.transaction()?;
    let found = tx.query_typed_opt(
        &format!(
            "SELECT {}, {} FROM secrets \
             WHERE name = $1 AND (expires_at IS NULL OR expires_at > {NOW})",
            stored_columns(value_column),
            meta_columns()
        ),
        &[(&name, Type::TEXT)],
    )?;
    let Some(row) = found else {
        return Ok(None);
    };
    let stored = stored_from_row(&row);
    let value = stored.reveal(keys)?;
    tx.query_typed(
        &format!(
            "INSERT INTO secret_access_log (secret_id, action, accessed_at, token_name) \
             VALUES ($1, 'read', {NOW}, $2)"
        ),
        &[(&stored.id, Type::INT8), (&token_name, Type::TEXT)],
    )?;
    tx.commit()?;
    Ok(Some(Secret {
        meta: meta_from_row(&row, 5),
        value,
    }))
}

/// The select list `stored_from_row` reads; the plaintext is NULL once its column is gone.
fn stored_columns(value_column: bool) -> String {
    let plaintext = if value_column { "value" } else { "NULL::text" };
    format!("id, name, {plaintext}, sealed_value, key_id")
}

/// `stored_columns`, in that order.
fn stored_from_row(row: &Row) -> StoredValue {
    StoredValue {
        id: row.get(0),
        name: row.get(1),
        plaintext: row.get(2),
        sealed: row.get(3),
        key_id: row.get(4),
    }
}

/// Whether `secrets.value` (the previous release's plaintext) still exists.
pub fn has_value_column(client: &mut Client) -> anyhow::Result<bool> {
    let row = client.query_one(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'secrets' AND column_name = 'value')",
        &[],
    )?;
    Ok(row.get(0))
}

/// How many rows are not sealed under `current` (the backfill's work).
/// One sealed row per key id the table uses, and how many rows it sealed.
pub fn one_row_per_key(client: &mut Client) -> anyhow::Result<Vec<super::model::KeySample>> {
    let rows = client.query(
        "SELECT s.key_id, k.n, s.name, s.sealed_value FROM secrets s \
         JOIN (SELECT key_id, min(id) AS id, count(*) AS n FROM secrets \
               WHERE key_id IS NOT NULL AND sealed_value IS NOT NULL GROUP BY key_id) k ON s.id = k.id",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|row| super::model::KeySample {
            key_id: row.get(0),
            rows: row.get(1),
            name: row.get(2),
            sealed: row.get(3),
        })
        .collect())
}

pub fn count_to_seal(client: &mut Client, current: &str) -> anyhow::Result<u64> {
    let row = client.query_one(
        "SELECT COUNT(*) FROM secrets WHERE key_id IS NULL OR key_id <> $1",
        &[&current],
    )?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Seals up to `limit` rows with an id above `after` that are not sealed
/// under the current key, in one short transaction. The rows are locked as
/// they are read, skipping any another `backend seal` holds, so several
/// instances share the work; an update only lands if the row still has the
/// key id it was read with, so nothing changed meanwhile is overwritten.
pub fn seal_batch(
    client: &mut Client,
    keys: &Keyring,
    value_column: bool,
    after: i64,
    limit: u32,
) -> anyhow::Result<Batch> {
    let mut tx = client.transaction()?;
    let rows = tx.query(
        &format!(
            "SELECT {} FROM secrets WHERE id > $1 AND (key_id IS NULL OR key_id <> $2) \
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
            stored_columns(value_column)
        ),
        &[&after, &keys.current_id(), &i64::from(limit)],
    )?;
    let set_placeholder = if value_column {
        format!(", value = '{SEALED_PLACEHOLDER}'")
    } else {
        String::new()
    };
    let update = format!(
        "UPDATE secrets SET sealed_value = $1, key_id = $2{set_placeholder} \
         WHERE id = $3 AND key_id IS NOT DISTINCT FROM $4"
    );
    let mut batch = Batch::default();
    for row in rows.iter().map(stored_from_row) {
        batch.read += 1;
        batch.last_id = Some(row.id);
        match row.resealed(keys) {
            Ok(Some(sealed)) => {
                let params: [&(dyn postgres::types::ToSql + Sync); 4] =
                    [&sealed.bytes, &sealed.key_id, &row.id, &row.key_id];
                batch.sealed += tx.execute(&update, &params)?;
            }
            Ok(None) => {}
            Err(e) => batch.failures.push((row.id, format!("{e:#}"))),
        }
    }
    tx.commit()?;
    Ok(batch)
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
    let deleted = client.query_typed(
        "DELETE FROM secrets WHERE name = $1 RETURNING 1",
        &[(&name, Type::TEXT)],
    )?;
    Ok(!deleted.is_empty())
}
