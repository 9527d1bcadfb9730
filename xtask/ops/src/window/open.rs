//! The one place the window picks its engine from the URL.

use secrets_contract::dburl::DatabaseUrl;

use super::{engine::Engine, postgres::PgWindow, settings::Settings, sqlite::SqliteWindow};

/// The engine `settings.url` names. With `create`, a Postgres database that
/// does not exist yet is created here (a SQLite file is created by the
/// preflight, under the lock).
pub fn open(settings: &Settings, create: bool, purpose: &str) -> anyhow::Result<Box<dyn Engine>> {
    Ok(match &settings.url {
        DatabaseUrl::Sqlite(path) => Box::new(SqliteWindow::new(path, settings.lock_timeout)),
        DatabaseUrl::Postgres(url) => Box::new(PgWindow::connect(url, create, purpose)?),
    })
}
