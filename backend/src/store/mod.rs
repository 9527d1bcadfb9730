//! Database access for the service, on SQLite or Postgres (`DATABASE_URL`
//! picks): opening, the schema check, and the secrets store.
//!
//! This module is the one interface the rest of the service sees: [`Db`]
//! dispatches each operation to an engine module (`sqlite`, `postgres`), and
//! the engines share only the value types of `model`, so neither knows the
//! other exists and adding an engine touches this file and its own. Every
//! function here is blocking; the web layer runs them off the async runtime.
//! Both engines return the same values: timestamps are RFC 3339 UTC strings
//! to the second.

mod model;
mod postgres;
mod postgres_tokens;
mod sealing;
mod sqlite;
mod sqlite_tokens;
mod tokens;

pub use model::{KeySample, Revocation, Secret, SecretMeta, StoreError, StoredToken, TokenInfo};
pub use sealing::{Batch, Vault};

use anyhow::Context;

use crate::{dburl::DatabaseUrl, schema};

/// One connection to either engine, for one request: SQLite's only one, or
/// one checked out of the Postgres pool (returned when dropped).
#[allow(clippy::large_enum_variant)] // one per request or per service: size is no concern
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Pooled),
}

/// What the service keeps open between requests: SQLite's one connection
/// (SQLite has one writer at a time anyway), or Postgres's pools, so that a
/// request waiting on a lock holds one connection and not the whole service.
#[allow(clippy::large_enum_variant)] // one per service
pub enum Store {
    Sqlite(Db),
    Postgres(postgres::Pools),
}

pub use postgres::{APPLICATION_NAME, HEALTH_BUDGET, Pool as PgPool};

impl Store {
    /// Opens the database `url` names (never creates one); a Postgres pool
    /// holds up to `pool_size` connections for the API.
    pub fn open(url: &DatabaseUrl, pool_size: u32) -> anyhow::Result<Store> {
        match url {
            DatabaseUrl::Sqlite(path) => sqlite::open(path).map(|c| Store::Sqlite(Db::Sqlite(c))),
            DatabaseUrl::Postgres(pg_url) => {
                postgres::Pools::open(pg_url, pool_size).map(Store::Postgres)
            }
        }
    }

    /// Highest migration version recorded in the database; on Postgres
    /// through `/health`'s own connections, which give up within
    /// [`HEALTH_BUDGET`] rather than wait behind a lock.
    pub fn applied_version(&mut self) -> anyhow::Result<i64> {
        match self {
            Store::Sqlite(db) => db.applied_version(),
            Store::Postgres(pools) => applied_version_on(&pools.health),
        }
    }

    /// Runs `f` on one connection: SQLite's, or one out of the API pool.
    pub fn with_db<T>(&mut self, f: impl FnOnce(&mut Db) -> T) -> anyhow::Result<T> {
        match self {
            Store::Sqlite(db) => Ok(f(db)),
            Store::Postgres(pools) => {
                let client = pools.api.get().context("no database connection")?;
                Ok(f(&mut Db::Postgres(client)))
            }
        }
    }

    /// How the database's schema compares with the one this build expects.
    pub fn schema_state(&mut self) -> anyhow::Result<SchemaState> {
        Ok(SchemaState::of(self.applied_version()?))
    }

    /// The one connection an operator command works on: SQLite's, or one
    /// checked out of the Postgres pool (open it with a pool size of 1).
    pub fn into_connection(self) -> anyhow::Result<Db> {
        match self {
            Store::Sqlite(db) => Ok(db),
            Store::Postgres(pools) => pools.api.get().map(Db::Postgres).map_err(|e| {
                anyhow::anyhow!("no database connection (the server is slow or unreachable): {e}")
            }),
        }
    }

    /// Makes `vault` ready for this database, on one connection: whether
    /// `secrets.value` (the previous release's plaintext) still exists
    /// (schema version 5 has it, the contract migration drops it), and that
    /// its keys open the rows they sealed. The service runs it at start and
    /// after maintenance, `backend seal` before its first batch.
    pub fn ready_vault(&mut self, vault: &Vault) -> anyhow::Result<()> {
        self.with_db(|db| {
            let value_column = db
                .has_value_column()
                .context("reading the columns of table `secrets`")?;
            vault.set_value_column(value_column);
            vault.refuse_keys_that_do_not_open(&db.one_row_per_key()?)
        })?
    }
}

/// The schema version read on a connection of `pool` (blocking).
pub fn applied_version_on(pool: &PgPool) -> anyhow::Result<i64> {
    let mut client = pool.get().map_err(|_| {
        anyhow::anyhow!(
            "no database connection within {} ms (the server is slow, unreachable, or out of connections)",
            HEALTH_BUDGET.as_millis()
        )
    })?;
    postgres::applied_version(&mut client)
}

impl Db {
    /// Highest migration version recorded in the database; 0 when none ran yet.
    pub fn applied_version(&mut self) -> anyhow::Result<i64> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::applied_version(conn)?),
            Db::Postgres(client) => postgres::applied_version(client),
        }
    }

    /// Whether `secrets.value` (the previous release's plaintext) still exists.
    pub fn has_value_column(&mut self) -> anyhow::Result<bool> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::has_value_column(conn)?),
            Db::Postgres(client) => postgres::has_value_column(client),
        }
    }

    /// Stores a new secret, its value sealed under the vault's current key;
    /// a name whose secret has expired may be reused.
    pub fn insert(
        &mut self,
        vault: &Vault,
        name: &str,
        value: &str,
        ttl_seconds: Option<i64>,
    ) -> Result<SecretMeta, StoreError> {
        let sealed = vault.keys().seal(name, value).map_err(StoreError::Other)?;
        let attempt = |db: &mut Db, value_column| match db {
            Db::Sqlite(conn) => sqlite::insert(conn, name, &sealed, value_column, ttl_seconds),
            Db::Postgres(client) => {
                postgres::insert(client, name, &sealed, value_column, ttl_seconds)
            }
        };
        match attempt(self, vault.has_value_column()) {
            Err(StoreError::Other(e)) if plaintext_column_gone(vault, &e) => attempt(self, false),
            done => done,
        }
    }

    /// Names and dates of every live secret, by name.
    pub fn list(&mut self) -> anyhow::Result<Vec<SecretMeta>> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::list(conn)?),
            Db::Postgres(client) => postgres::list(client),
        }
    }

    /// Reads a live secret, sealed or not, and records the read, and the
    /// name of the token that made it, in the access log. A sealed value
    /// that does not open (unknown key id, or sealed for another row) is an
    /// error naming the secret and the key id.
    pub fn reveal(
        &mut self,
        vault: &Vault,
        name: &str,
        token_name: &str,
    ) -> anyhow::Result<Option<Secret>> {
        let keys = vault.keys();
        let attempt = |db: &mut Db, value_column| match db {
            Db::Sqlite(conn) => sqlite::reveal(conn, name, token_name, keys, value_column),
            Db::Postgres(client) => postgres::reveal(client, name, token_name, keys, value_column),
        };
        match attempt(self, vault.has_value_column()) {
            Err(e) if plaintext_column_gone(vault, &e) => attempt(self, false),
            done => done,
        }
    }

    /// After a backfill: SQLite moves its WAL into the file, so the file
    /// no longer holds the plaintext pages; false when a reader kept part of
    /// it. Postgres keeps old row versions until (auto)vacuum, which only
    /// the server's own files hold; dumps and copies read live rows.
    pub fn checkpoint(&mut self) -> anyhow::Result<bool> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::checkpoint(conn)?),
            Db::Postgres(_) => Ok(true),
        }
    }

    /// One sealed row per key id the table uses, and how many rows that id
    /// sealed: `(key_id, rows, name, sealed bytes)`.
    pub fn one_row_per_key(&mut self) -> anyhow::Result<Vec<KeySample>> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::one_row_per_key(conn)?),
            Db::Postgres(client) => postgres::one_row_per_key(client),
        }
    }

    /// How many rows are not sealed under the vault's current key.
    pub fn count_to_seal(&mut self, vault: &Vault) -> anyhow::Result<u64> {
        let current = vault.keys().current_id();
        match self {
            Db::Sqlite(conn) => Ok(sqlite::count_to_seal(conn, current)?),
            Db::Postgres(client) => postgres::count_to_seal(client, current),
        }
    }

    /// Seals (or re-seals under the current key) up to `limit` rows with an
    /// id above `after`, in one short transaction of its own.
    pub fn seal_batch(&mut self, vault: &Vault, after: i64, limit: u32) -> anyhow::Result<Batch> {
        let (keys, value_column) = (vault.keys(), vault.has_value_column());
        match self {
            Db::Sqlite(conn) => sqlite::seal_batch(conn, keys, value_column, after, limit),
            Db::Postgres(client) => postgres::seal_batch(client, keys, value_column, after, limit),
        }
    }

    /// Deletes every expired secret (and, by cascade, its access log); how many.
    pub fn delete_expired(&mut self) -> anyhow::Result<u64> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::delete_expired(conn)?),
            Db::Postgres(client) => postgres::delete_expired(client),
        }
    }

    /// Deletes a secret (and, by cascade, its access log); false when there was none.
    pub fn delete(&mut self, name: &str) -> anyhow::Result<bool> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::delete(conn, name)?),
            Db::Postgres(client) => postgres::delete(client, name),
        }
    }
}

/// Whether `error` says the plaintext `value` column is gone while the
/// vault still counted on it: the contract migration ran while this process
/// served (`migrate --job --allow-contract`). The vault then forgets the
/// column, and the caller tries once more (its transaction rolled back).
fn plaintext_column_gone(vault: &Vault, error: &anyhow::Error) -> bool {
    let gone = vault.has_value_column()
        && error.chain().any(|cause| {
            let undefined = cause.is::<model::ColumnGone>()
                || cause.downcast_ref::<::postgres::Error>().is_some_and(|e| {
                    e.code() == Some(&::postgres::error::SqlState::UNDEFINED_COLUMN)
                });
            let missing = cause.downcast_ref::<rusqlite::Error>().is_some_and(|e| {
                let text = e.to_string();
                text.contains("no such column: value") || text.contains("has no column named value")
            });
            undefined || missing
        });
    if gone {
        tracing::warn!(
            "the plaintext column `secrets.value` is gone (a contract migration ran): no longer written"
        );
        vault.set_value_column(false);
    }
    gone
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
    /// Behind, but no older than [`schema::OLDEST_SERVED_VERSION`]: what is
    /// pending are contract steps (a backfill runs first), so this build serves.
    ContractPending {
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
    /// An error naming the database and what to run when this build cannot
    /// serve it; `Ok` otherwise.
    pub fn refuse_behind(self, url: &impl std::fmt::Display) -> anyhow::Result<()> {
        match self {
            SchemaState::Behind { database, expected } => anyhow::bail!(
                "database {url} is at schema version {database} but this build expects {expected} (and serves \
                 {} or later): run the migrations first (`secrets-ops migrate`; `cargo xtask migrate` in a checkout)",
                schema::OLDEST_SERVED_VERSION
            ),
            _ => Ok(()),
        }
    }

    fn of(database: i64) -> SchemaState {
        let expected = schema::expected_version();
        match database.cmp(&expected) {
            std::cmp::Ordering::Equal => SchemaState::Current,
            std::cmp::Ordering::Less if database >= schema::OLDEST_SERVED_VERSION => {
                SchemaState::ContractPending { database, expected }
            }
            std::cmp::Ordering::Less => SchemaState::Behind { database, expected },
            std::cmp::Ordering::Greater => SchemaState::Ahead { database, expected },
        }
    }
}
