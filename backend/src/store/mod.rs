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
mod sqlite;

pub use model::{Secret, SecretMeta, StoreError};

use crate::{dburl::DatabaseUrl, schema};

/// An open connection to either engine.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(::postgres::Client),
}

impl Db {
    /// Opens the database `url` names; never creates one.
    pub fn open(url: &DatabaseUrl) -> anyhow::Result<Db> {
        match url {
            DatabaseUrl::Sqlite(path) => sqlite::open(path).map(Db::Sqlite),
            DatabaseUrl::Postgres(pg_url) => postgres::open(pg_url).map(Db::Postgres),
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

    /// Highest migration version recorded in the database; 0 when none ran yet.
    pub fn applied_version(&mut self) -> anyhow::Result<i64> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::applied_version(conn)?),
            Db::Postgres(client) => postgres::applied_version(client),
        }
    }

    /// How the database's schema compares with the one this build expects.
    pub fn schema_state(&mut self) -> anyhow::Result<SchemaState> {
        Ok(SchemaState::of(self.applied_version()?))
    }

    /// Stores a new secret; a name whose secret has expired may be reused.
    pub fn insert(
        &mut self,
        name: &str,
        value: &str,
        ttl_seconds: Option<i64>,
    ) -> Result<SecretMeta, StoreError> {
        match self {
            Db::Sqlite(conn) => sqlite::insert(conn, name, value, ttl_seconds),
            Db::Postgres(client) => postgres::insert(client, name, value, ttl_seconds),
        }
    }

    /// Names and dates of every live secret, by name.
    pub fn list(&mut self) -> anyhow::Result<Vec<SecretMeta>> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::list(conn)?),
            Db::Postgres(client) => postgres::list(client),
        }
    }

    /// Reads a live secret and records the read in the access log.
    pub fn reveal(&mut self, name: &str) -> anyhow::Result<Option<Secret>> {
        match self {
            Db::Sqlite(conn) => Ok(sqlite::reveal(conn, name)?),
            Db::Postgres(client) => postgres::reveal(client, name),
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
