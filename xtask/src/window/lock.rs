//! The lock `backup` and `restore` take, the same as the window's: a lock
//! file (one run at a time on this host; a dead run's unfinished copy is
//! removed when its lock is found stale), then the engine's server-side lock.
//! So a rotation never deletes a backup a restore is reading, and a backup
//! never copies a database a window is changing.

use super::{engine::Engine, settings::Settings};
use crate::{fsutil, run_lock::MigrationLock};

pub fn take(
    settings: &Settings,
    engine: &mut dyn Engine,
    purpose: &str,
) -> anyhow::Result<MigrationLock> {
    engine.prepare_lock(settings, false)?;
    let lock = MigrationLock::acquire(&settings.lock_path(), purpose)?;
    if let Some(holder) = &lock.stale {
        eprintln!("warning: took over a lock left by a run that is gone ({holder})");
        let leftover = fsutil::temp_path(&settings.db);
        if leftover.is_file() && std::fs::remove_file(&leftover).is_ok() {
            eprintln!("recovered: removed the unfinished {}", leftover.display());
        }
    }
    engine.hold_server(settings)?;
    Ok(lock)
}
