//! The maintenance flag file: while it exists the service answers 503 and
//! keeps no connection to the database, so an operator tool can lock it.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

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
pub fn flag_path_from_env(database: &crate::dburl::DatabaseUrl) -> PathBuf {
    match std::env::var_os(FLAG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => database.default_maintenance_flag(),
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
