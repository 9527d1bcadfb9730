//! NAME
//!     cargo xtask backup — a verified backup of the live database
//!
//! SYNOPSIS
//!     cargo xtask backup [--database-url URL]
//!
//! DESCRIPTION
//!     Step 4 of the runbook alone, safe while the service runs.
//!     SQLite: the online backup API into a temp file, fsync, `PRAGMA
//!     quick_check`, 0600, rename to `<db>.<sequence>.<UTC timestamp>.bak`.
//!     Postgres: `pg_dump --format=custom` (a consistent snapshot while the
//!     service runs), 0600, checked with `pg_restore --list`, named
//!     `<dbname>.pg.<sequence>.<UTC timestamp>.bak`.
//!     Both then rotate to the newest N.

use std::{path::Path, time::Instant};

use super::{engine::Verified, journal::Journal, lock, open::open, settings::Settings};
use crate::{engine::backups, flags::DatabaseArgs};

pub fn run(repo: &Path, args: &DatabaseArgs) -> anyhow::Result<()> {
    let settings = Settings::load(repo, args.database_url.as_deref(), None)?;
    settings.require_database("there is nothing to back up", false)?;
    let journal = Journal::new(&settings.backup_dir, "backup");
    let start = Instant::now();
    match back_up(&settings) {
        Ok(detail) => {
            journal.record("backup", start.elapsed(), "ok", &detail);
            println!("backed up {} to {detail}", settings.url);
            Ok(())
        }
        Err(error) => {
            journal.record("backup", start.elapsed(), "FAILED", &format!("{error:#}"));
            Err(error.context(format!(
                "backing up {} (no partial backup was left behind)",
                settings.url
            )))
        }
    }
}

fn back_up(settings: &Settings) -> anyhow::Result<String> {
    let mut engine = open(settings, false, "backup")?;
    // Before anything else: a window, a restore or another backup may be
    // running, and the lock says which.
    let _lock = lock::take(settings, engine.as_mut(), "cargo xtask backup")?;
    let bytes = engine.database_bytes()?;
    backups::ensure_dir(&settings.backup_dir)?;
    backups::ensure_space(&settings.backup_dir, bytes)?;
    let Verified { backup, how } = engine.back_up_online(&settings.new_backup_path())?;
    let rotation = settings.rotate_backups(&backup.path);
    Ok(format!(
        "{} ({} bytes, {how}); {rotation}",
        backup.path.display(),
        backup.bytes
    ))
}
