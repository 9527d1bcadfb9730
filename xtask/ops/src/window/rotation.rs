//! Naming the next backup and rotating the old ones, as every command that
//! takes a backup does.

use std::path::{Path, PathBuf};

use super::settings::Settings;
use crate::engine::backups;

/// Where a backup taken now goes.
pub fn new_backup_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    backups::new_path(&settings.backup_dir, &settings.backup_name)
}

/// Keeps the newest `keep_backups`, never `just_made`; says what went.
/// Rotation is housekeeping: when an old backup cannot be removed, the
/// new one is still complete, so this warns instead of failing the run.
pub fn rotate_backups(settings: &Settings, just_made: &Path) -> String {
    let (dir, name) = (&settings.backup_dir, &settings.backup_name);
    match backups::rotate(dir, name, settings.keep_backups, just_made) {
        Ok(removed) => format!("rotated away {}", removed.len()),
        Err(error) => {
            let warning = format!(
                "rotating old backups failed ({error:#}); the new backup is complete: remove the old \
                 one by hand, or fix its permissions"
            );
            eprintln!("warning: {warning}");
            format!("WARNING: {warning}")
        }
    }
}
