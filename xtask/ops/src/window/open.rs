//! The one place the window picks its engine from the URL.

use secrets_contract::dburl::DatabaseUrl;

use super::settings::Settings;
use crate::{
    engine::roles::{Engine, Options},
    pg::window::PgWindow,
    sqlite::window::SqliteWindow,
};

/// The engine `settings.url` names. With `create`, a Postgres database that
/// does not exist yet is created here (a SQLite file is created by the
/// preflight, under the lock).
pub fn open(settings: &Settings, create: bool, purpose: &str) -> anyhow::Result<Box<dyn Engine>> {
    let options = options(settings);
    Ok(match &settings.url {
        DatabaseUrl::Sqlite(path) => Box::new(SqliteWindow::new(path, options)),
        DatabaseUrl::Postgres(url) => Box::new(PgWindow::connect(url, create, purpose, options)?),
    })
}

/// The engine's part of the settings.
fn options(settings: &Settings) -> Options {
    Options {
        lock_timeout: settings.lock_timeout,
        pg_timeouts: settings.pg_timeouts,
        lock_path: settings.lock_path.clone(),
        backup_dir: settings.backup_dir.clone(),
        backup_name: settings.backup_name.clone(),
    }
}
