//! NAME
//!     cargo xtask backup — a verified backup of the live database
//!
//! SYNOPSIS
//!     cargo xtask backup [--database-url URL]
//!
//! DESCRIPTION
//!     Step 4 of the runbook alone, safe while the service runs: SQLite's
//!     online backup API into a temp file, fsync, `PRAGMA quick_check`, 0600,
//!     rename to `<db>.<UTC timestamp>.bak`, rotate to the newest N.

use std::{path::Path, time::Instant};

use crate::{backups, flags::DatabaseArgs, journal::Journal, settings::Settings, sqlite};

pub fn run(repo: &Path, args: &DatabaseArgs) -> anyhow::Result<()> {
    let settings = Settings::load(repo, args.database_url.as_deref(), None)?;
    let journal = Journal::new(&settings.backup_dir, "backup");
    let start = Instant::now();
    let result = (|| {
        let conn = sqlite::open(&settings.db, false)?;
        backups::ensure_dir(&settings.backup_dir)?;
        backups::ensure_space(&settings.backup_dir, settings.database_bytes())?;
        let backup = backups::online(&conn, &settings.new_backup_path())?;
        let removed = settings.rotate_backups(&backup.path)?;
        anyhow::Ok((backup, removed))
    })();
    match result {
        Ok((backup, removed)) => {
            let detail = format!(
                "{} ({} bytes, quick_check ok); rotated away {removed}",
                backup.path.display(),
                backup.bytes
            );
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
