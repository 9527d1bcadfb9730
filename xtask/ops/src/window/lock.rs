//! The lock `backup` and `restore` take, the same as the window's: a lock
//! file (one run at a time on this host; what dead runs left is removed
//! once it is held), then the engine's server-side lock.
//! So a rotation never deletes a backup a restore is reading, and a backup
//! never copies a database a window is changing.

use super::settings::Settings;
use crate::{
    engine::{backups, roles::Engine},
    run_lock::MigrationLock,
};

pub fn take(
    settings: &Settings,
    engine: &mut dyn Engine,
    purpose: &str,
) -> anyhow::Result<MigrationLock> {
    engine.prepare_lock(false)?;
    let lock = MigrationLock::acquire(&settings.lock_path, purpose)?;
    if let Some(holder) = &lock.stale {
        eprintln!("warning: took over a lock left by a run that is gone ({holder})");
    }
    // Holding the lock, no live run owns a temp file: what is there is a
    // dead run's, and goes now rather than piling up.
    let db_dir = settings
        .backup_name
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    let dirs = [
        settings.backup_dir.as_path(),
        db_dir.unwrap_or(std::path::Path::new(".")),
    ];
    for line in backups::remove_dead_temps(&dirs, &settings.backup_name) {
        eprintln!("recovered: {line}");
    }
    engine.hold_server()?;
    Ok(lock)
}
