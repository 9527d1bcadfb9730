//! The running service: shared state, maintenance mode, `/health`, the router
//! and the server loop.
//!
//! Maintenance mode is driven by a flag file. A short poll and a check on every
//! request both look for it; while it exists the connection is closed (so an
//! operator tool can take SQLite's exclusive lock) and the API answers 503.
//! When it goes away the next request reopens the database and re-checks the
//! schema before serving.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use tower_http::services::{ServeDir, ServeFile};

use crate::{
    api::{self, ApiError},
    config::Config,
    db::{Db, SchemaState},
    dburl::DatabaseUrl,
    maintenance::RETRY_AFTER_SECONDS,
    schema,
};

/// How often the flag file is polled when no request comes in: it bounds how
/// long `cargo xtask migrate` waits for the database, and a stat costs nothing.
const FLAG_POLL: Duration = Duration::from_millis(20);

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
enum Availability {
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

    fn config(&self) -> &Config {
        &self.inner.config
    }

    fn in_maintenance(&self) -> bool {
        self.config().maintenance_flag.exists()
    }

    /// A poisoned lock only means a handler panicked; the connection is still usable.
    fn lock(&self) -> MutexGuard<'_, Option<Db>> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    /// Runs `f` with the connection on the blocking pool; 503 when there is none.
    pub async fn with_db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Db) -> T + Send + 'static,
        T: Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = state.lock();
            let Some(db) = slot.as_mut() else {
                return Err(maintenance_error());
            };
            let result = f(db);
            if db.is_broken() {
                tracing::warn!(
                    "the database connection was closed; reconnecting on the next request"
                );
                *slot = None;
            }
            Ok(result)
        })
        .await
        .map_err(ApiError::internal)?
    }

    async fn availability_async(&self) -> Availability {
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.availability())
            .await
            .unwrap_or_else(|e| Availability::Unavailable(e.to_string()))
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

fn maintenance_error() -> ApiError {
    ApiError::unavailable(
        "the service is in maintenance; retry shortly",
        RETRY_AFTER_SECONDS,
    )
}

/// Every API request passes here first.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.availability_async().await {
        Availability::Serving => next.run(request).await,
        Availability::Maintenance => maintenance_error().into_response(),
        Availability::Unavailable(reason) => {
            tracing::error!(%reason, "database unavailable");
            ApiError::unavailable(
                "the database is unavailable; see the service log",
                RETRY_AFTER_SECONDS,
            )
            .into_response()
        }
    }
}

/// `GET /health`: 200 with status `ok` when serving, 503 otherwise.
async fn health(State(state): State<AppState>) -> Response {
    let (status, schema_version, error) = match state.availability_async().await {
        Availability::Maintenance => ("maintenance", None, None),
        Availability::Unavailable(reason) => ("unavailable", None, Some(reason)),
        Availability::Serving => match state.with_db(|db| db.applied_version()).await {
            Ok(Ok(version)) => ("ok", Some(version), None),
            Ok(Err(e)) => ("unavailable", None, Some(format!("{e:#}"))),
            Err(_) => ("maintenance", None, None),
        },
    };
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": status,
        "version": crate::VERSION,
        "schema_version": schema_version,
        "expected_schema_version": schema::expected_version(),
    });
    if let Some(error) = error {
        body["error"] = json!(error);
    }
    let mut response = (code, Json(body)).into_response();
    if code != StatusCode::OK {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    }
    response
}

/// The whole application: API, health and the built UI.
pub fn router(state: AppState) -> Router {
    let api = api::routes().layer(middleware::from_fn_with_state(state.clone(), guard));
    let dist = state.config().frontend_dir.clone();
    let ui = ServeDir::new(&dist).fallback(ServeFile::new(dist.join("index.html")));
    Router::new()
        .route("/health", get(health))
        .nest("/api", api)
        .fallback_service(ui)
        .with_state(state)
}

/// Closes the connection promptly when the flag appears, even with no traffic.
fn spawn_flag_poller(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLAG_POLL);
        loop {
            tick.tick().await;
            if state.in_maintenance() {
                state.availability_async().await;
            }
        }
    });
}

/// Checks the database, binds, and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // Blocking: the Postgres client runs its own small runtime, which must
    // not start on one of tokio's worker threads.
    let prepared = config.clone();
    let state = tokio::task::spawn_blocking(move || prepare(prepared))
        .await
        .context("checking the database")??;
    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .with_context(|| {
            format!(
                "binding {} (set SECRETS_ADDR to another address)",
                config.addr
            )
        })?;
    run(listener, state, shutdown_signal()).await
}

/// The start-up check: the database must exist and not be behind this build
/// (unless the service starts in maintenance, when it opens nothing).
pub fn prepare(config: Config) -> anyhow::Result<AppState> {
    let state = AppState::new(config);
    let config = state.config();
    if state.in_maintenance() {
        tracing::warn!(flag = %config.maintenance_flag.display(), "starting in maintenance mode");
    } else {
        let conn = open_checked(&config.database)?;
        *state.lock() = Some(conn);
    }
    if !config.frontend_dir.join("index.html").is_file() {
        tracing::warn!(
            dir = %config.frontend_dir.display(),
            "the web UI is not built (run `npm --prefix frontend run build`); serving the API only"
        );
    }
    Ok(state)
}

/// Serves on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(version = crate::VERSION, "listening on http://{addr}");
    spawn_flag_poller(state.clone());
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP");
    // Closing a Postgres client blocks on its own small runtime, which must
    // not happen on one of tokio's worker threads.
    let _ = tokio::task::spawn_blocking(move || drop(state.lock().take())).await;
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
