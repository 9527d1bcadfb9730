//! The state every request shares: the configuration and the one database
//! connection, which maintenance mode takes away and gives back.
//!
//! Maintenance mode is driven by a flag file. While it exists the connection
//! is closed (so an operator tool can take SQLite's exclusive lock) and
//! requests are refused with 503; when it goes away the next request reopens
//! the database and re-checks the schema before serving. This module decides
//! availability; the handlers and the server loop only ask it.

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;

use super::error::ApiError;
use crate::{
    config::Config,
    dburl::DatabaseUrl,
    maintenance::RETRY_AFTER_SECONDS,
    store::{Db, SchemaState},
};

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// `None` while in maintenance or after the database could not be opened.
    conn: Mutex<Option<Db>>,
}

/// Whether requests can be served right now.
pub enum Availability {
    Serving,
    Maintenance,
    Unavailable(String),
}

impl AppState {
    pub fn new(config: Config) -> Self {
        AppState {
            inner: Arc::new(Inner {
                config,
                conn: Mutex::new(None),
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn in_maintenance(&self) -> bool {
        self.config().maintenance_flag.exists()
    }

    /// A poisoned lock only means a handler panicked; the connection is still usable.
    fn lock(&self) -> MutexGuard<'_, Option<Db>> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocking: opens the database now, refusing a schema this build is behind.
    pub(crate) fn connect(&self) -> anyhow::Result<()> {
        let conn = open_checked(&self.config().database)?;
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
        match open_checked(&self.config().database) {
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

    /// Blocking: runs `f` on the connection, then drops the connection if the
    /// server closed it, so the next request reconnects.
    fn run_on_connection<T>(&self, f: impl FnOnce(&mut Db) -> T) -> Result<T, ApiError> {
        let mut slot = self.lock();
        let Some(db) = slot.as_mut() else {
            return Err(maintenance_error());
        };
        let result = f(db);
        if db.is_broken() {
            tracing::warn!("the database connection was closed; reconnecting on the next request");
            *slot = None;
        }
        Ok(result)
    }
}

/// Opens the database and refuses a schema older than this build expects.
fn open_checked(url: &DatabaseUrl) -> anyhow::Result<Db> {
    let mut db = Db::open(url)?;
    match db.schema_state().context("reading the migration history")? {
        SchemaState::Current => {}
        SchemaState::Ahead { database, expected } => tracing::warn!(
            database,
            expected,
            "database schema is newer than this build (expanded by a newer release); serving anyway"
        ),
        SchemaState::Behind { database, expected } => anyhow::bail!(
            "database {url} is at schema version {database} but this build expects {expected}: \
             run `cargo xtask migrate` first"
        ),
    }
    Ok(db)
}

/// The 503 every request gets while the flag file exists.
pub fn maintenance_error() -> ApiError {
    ApiError::unavailable(
        "the service is in maintenance; retry shortly",
        RETRY_AFTER_SECONDS,
    )
}
