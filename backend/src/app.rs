//! The running service: the router and the server loop. This is the one place
//! that puts the pieces together, the API behind its maintenance gate,
//! `/health` and the built UI, so the handlers in `web` never import it.
//!
//! A short poll of the maintenance flag complements the check on every API
//! request: it closes the connection promptly even with no traffic, so an
//! operator tool waiting for the database lock is not kept waiting.

use std::time::Duration;

use anyhow::Context;
use axum::{Router, middleware, routing::get};
use tower_http::services::{ServeDir, ServeFile};

pub use crate::web::state::AppState;
use crate::{
    config::Config,
    seal::keyfile,
    store::Vault,
    web::{api, auth, guard::guard, headers::security_headers, health::health},
};

/// How often the flag file is polled when no request comes in: it bounds how
/// long `cargo xtask migrate` waits for the database, and a stat costs nothing.
const FLAG_POLL: Duration = Duration::from_millis(20);

/// The whole application: API (behind the maintenance gate, then the
/// token check), health and the built UI.
pub fn router(state: AppState) -> Router {
    let api = api::routes()
        .layer(middleware::from_fn(auth::require_token))
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    let dist = state.config().frontend_dir.clone();
    let ui = ServeDir::new(&dist).fallback(ServeFile::new(dist.join("index.html")));
    Router::new()
        .route("/health", get(health))
        .nest("/api", api)
        .fallback_service(ui)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Deletes expired secrets every `sweep_interval` (reads already hide them);
/// skipped while in maintenance or without a connection, logged when it fails.
fn spawn_expiry_sweeper(state: AppState) {
    let interval = state.config().sweep_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if state.in_maintenance() {
                continue;
            }
            match state.with_db(|db| db.delete_expired()).await {
                Ok(Ok(0)) | Err(_) => {}
                Ok(Ok(deleted)) => tracing::info!(deleted, "deleted expired secrets"),
                Ok(Err(e)) => tracing::warn!("deleting expired secrets failed: {e:#}"),
            }
        }
    });
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

/// The start-up check: the key file must be valid, and the database must
/// exist and not be behind this build (unless the service starts in
/// maintenance, when it opens nothing).
pub fn prepare(config: Config) -> anyhow::Result<AppState> {
    let keys = keyfile::read(&config.key_file)?;
    tracing::info!(current_key_id = keys.current_id(), "key file read");
    let state = AppState::new(config, Vault::new(keys));
    let config = state.config();
    if state.in_maintenance() {
        tracing::warn!(flag = %config.maintenance_flag.display(), "starting in maintenance mode");
    } else {
        state.connect()?;
        auth::announce_missing_token(&state);
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
    spawn_expiry_sweeper(state.clone());
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP");
    // Closing a Postgres client blocks on its own small runtime, which must
    // not happen on one of tokio's worker threads.
    let _ = tokio::task::spawn_blocking(move || state.disconnect()).await;
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
