//! The state every request shares: the configuration and the open store
//! (SQLite's one connection, or Postgres's pools), which maintenance mode
//! takes away and gives back.
//!
//! Maintenance mode is driven by a flag file. While it exists every
//! connection is closed (so an operator tool can take SQLite's exclusive lock) and
//! requests are refused with 503; when it goes away the next request reopens
//! the database and re-checks the schema before serving. This module decides
//! availability; the handlers and the server loop only ask it.

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;

use super::error::ApiError;
use crate::{
    config::Config,
    maintenance::RETRY_AFTER_SECONDS,
    store::{Db, SchemaState, Store, Vault},
};

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// The keys, and whether the plaintext column still exists.
    vault: Arc<Vault>,
    /// `None` while in maintenance or after the database could not be opened.
    /// Held only to reach the store: Postgres requests clone a pool out of
    /// it and run without it, so they never wait for each other here.
    conn: Mutex<Option<Store>>,
}

/// Whether requests can be served right now.
pub enum Availability {
    Serving,
    Maintenance,
    Unavailable(String),
}

impl AppState {
    pub fn new(config: Config, vault: Vault) -> Self {
        AppState {
            inner: Arc::new(Inner {
                config,
                vault: Arc::new(vault),
                conn: Mutex::new(None),
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The keys and the table's shape, for a store call that moves values.
    pub(crate) fn vault(&self) -> Arc<Vault> {
        Arc::clone(&self.inner.vault)
    }

    pub(crate) fn in_maintenance(&self) -> bool {
        self.config().maintenance_flag.exists()
    }

    /// A poisoned lock only means a handler panicked; the connection is still usable.
    fn lock(&self) -> MutexGuard<'_, Option<Store>> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocking: opens the database now, refusing a schema this build is behind.
    pub(crate) fn connect(&self) -> anyhow::Result<()> {
        let conn = open_checked(self.config(), &self.inner.vault)?;
        *self.lock() = Some(conn);
        Ok(())
    }

    /// Blocking: closes the connection, if any (a Postgres client blocks on
    /// its own small runtime while it closes).
    pub(crate) fn disconnect(&self) {
        drop(self.lock().take());
    }

    /// Blocking: closes the connection in maintenance, reopens it afterwards.
    fn availability(&self) -> Availability {
        let mut slot = self.lock();
        if self.in_maintenance() {
            if slot.take().is_some() {
                tracing::info!("maintenance flag present: closed the database");
            }
            return Availability::Maintenance;
        }
        if slot.is_some() {
            return Availability::Serving;
        }
        match open_checked(self.config(), &self.inner.vault) {
            // The flag may have appeared while we were opening: check once more.
            Ok(_) if self.in_maintenance() => Availability::Maintenance,
            Ok(conn) => {
                tracing::info!("database opened; serving");
                *slot = Some(conn);
                Availability::Serving
            }
            Err(e) => Availability::Unavailable(format!("{e:#}")),
        }
    }

    /// [`availability`](Self::availability) on the blocking pool.
    pub(crate) async fn availability_async(&self) -> Availability {
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.availability())
            .await
            .unwrap_or_else(|e| Availability::Unavailable(e.to_string()))
    }

    /// Runs `f` with the connection on the blocking pool; 503 when there is none.
    pub async fn with_db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Db) -> T + Send + 'static,
        T: Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.run_on_connection(f))
            .await
            .map_err(ApiError::internal)?
    }

    /// Blocking: runs `f` on SQLite's connection, or on a connection of the
    /// Postgres pool (the pool replaces one the server closed).
    pub(crate) fn run_on_connection<T>(&self, f: impl FnOnce(&mut Db) -> T) -> Result<T, ApiError> {
        let mut slot = self.lock();
        let pool = match slot.as_mut() {
            None => return Err(maintenance_error()),
            Some(Store::Sqlite(db)) => return Ok(f(db)),
            Some(Store::Postgres(pools)) => pools.api.clone(),
        };
        drop(slot);
        let conn = pool.get().map_err(|_| pool_exhausted(pool.max_size()))?;
        Ok(f(&mut Db::Postgres(conn)))
    }

    /// `/health`'s read of the schema version, on the blocking pool: on
    /// Postgres through its own connections, within the health budget
    /// ([`crate::store::HEALTH_BUDGET`]); `None` in maintenance.
    pub(crate) async fn schema_version(&self) -> Option<anyhow::Result<i64>> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.read_schema_version())
            .await
            .unwrap_or_else(|e| Some(Err(anyhow::anyhow!("{e}"))))
    }

    fn read_schema_version(&self) -> Option<anyhow::Result<i64>> {
        let mut slot = self.lock();
        match slot.as_mut()? {
            Store::Sqlite(db) => Some(db.applied_version()),
            Store::Postgres(pools) => {
                let health = pools.health.clone();
                drop(slot);
                Some(crate::store::applied_version_on(&health))
            }
        }
    }
}

/// Opens the database and refuses a schema older than this build expects,
/// then readies `vault` for it (whether the plaintext column still exists,
/// and that its keys open the stored rows); runs at start and each time
/// maintenance mode ends.
fn open_checked(config: &Config, vault: &Vault) -> anyhow::Result<Store> {
    let url = &config.database;
    let mut db = Store::open(url, config.pool_size)?;
    let state = db.schema_state().context("reading the migration history")?;
    state.refuse_behind(url)?;
    match state {
        SchemaState::Ahead { database, expected } => tracing::warn!(
            database,
            expected,
            "database schema is newer than this build (expanded by a newer release); serving anyway"
        ),
        SchemaState::ContractPending { database, expected } => tracing::warn!(
            database,
            expected,
            "database schema is behind this build by contract migrations only; serving. Once `backend seal` \
             reports every secret sealed, run the migrations (`secrets-ops migrate`; `cargo xtask migrate` in a checkout)"
        ),
        SchemaState::Current | SchemaState::Behind { .. } => {}
    }
    db.ready_vault(vault)?;
    Ok(db)
}

/// Every connection of the pool stayed busy for the whole checkout wait.
fn pool_exhausted(size: u32) -> ApiError {
    tracing::warn!(
        size,
        "every database connection stayed busy: raise DATABASE_POOL_SIZE if this recurs"
    );
    ApiError::unavailable(
        "the service is busy (every database connection is in use); retry shortly",
        RETRY_AFTER_SECONDS,
    )
}

/// The 503 every request gets while the flag file exists.
pub fn maintenance_error() -> ApiError {
    ApiError::unavailable(
        "the service is in maintenance; retry shortly",
        RETRY_AFTER_SECONDS,
    )
}
