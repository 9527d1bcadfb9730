//! The maintenance flag file: while it exists the service answers 503 and
//! keeps no connection to the database, so an operator tool can lock it.
//!
//! Everything about where the flag lives is decided here, in one place: the
//! default beside a SQLite file, the default for a Postgres database, and the
//! `SECRETS_MAINTENANCE_FLAG` override. The service and the xtask both ask
//! this module (the xtask through `DatabaseUrl::default_maintenance_flag`), so
//! they cannot disagree about the path. This module uses `dburl`; `dburl`
//! knows nothing of maintenance.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use crate::dburl::DatabaseUrl;

/// Environment variable that overrides where the flag file lives.
pub const FLAG_ENV: &str = "SECRETS_MAINTENANCE_FLAG";

/// Seconds clients are told to wait (`Retry-After`) during maintenance.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The database path plus `.maintenance`: `data/secrets.db.maintenance`.
pub fn default_flag_path(database: &Path) -> PathBuf {
    let mut name = OsString::from(database.as_os_str());
    name.push(".maintenance");
    PathBuf::from(name)
}

/// The flag path the service uses: `$SECRETS_MAINTENANCE_FLAG`, else the default.
pub fn flag_path_from_env(database: &DatabaseUrl) -> PathBuf {
    match std::env::var_os(FLAG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => database.default_maintenance_flag(),
    }
}

// An inherent method defined beside the rest of the flag's rules (Rust allows
// an `impl` anywhere in the defining crate), so callers keep writing
// `url.default_maintenance_flag()` while `dburl` stays free of maintenance.
impl DatabaseUrl {
    /// Where the maintenance flag lives unless configured: beside a SQLite
    /// file, or `data/<dbname>.maintenance` for Postgres (the folder the
    /// default SQLite database uses).
    pub fn default_maintenance_flag(&self) -> PathBuf {
        match self {
            DatabaseUrl::Sqlite(path) => default_flag_path(path),
            DatabaseUrl::Postgres(pg) => {
                PathBuf::from("data").join(format!("{}.maintenance", pg.database()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_sits_beside_the_database() {
        assert_eq!(
            default_flag_path(Path::new("/srv/data/secrets.db")),
            PathBuf::from("/srv/data/secrets.db.maintenance")
        );
    }
}
