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
//!     On Postgres: `pg_dump --format=custom` (a consistent snapshot while the
//!     service runs), 0600, checked with `pg_restore --list`, named
//!     `<dbname>.pg.<UTC timestamp>.bak`, rotated the same way.

use std::{path::Path, time::Instant};

use backend::dburl::{DatabaseUrl, PgUrl};

use crate::{
    engine::backups::{self, Backup},
    engine::pg,
    engine::pg_backups,
    engine::sqlite,
    flags::DatabaseArgs,
    window::journal::Journal,
    window::settings::Settings,
};

pub fn run(repo: &Path, args: &DatabaseArgs) -> anyhow::Result<()> {
    let settings = Settings::load(repo, args.database_url.as_deref(), None)?;
    let journal = Journal::new(&settings.backup_dir, "backup");
    let start = Instant::now();
    let result = match &settings.url {
        DatabaseUrl::Sqlite(_) => sqlite_backup(&settings),
        DatabaseUrl::Postgres(pg) => postgres_backup(&settings, pg),
    };
    match result {
        Ok((backup, verified, removed)) => {
            let detail = format!(
                "{} ({} bytes, {verified}); rotated away {removed}",
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

/// The backup, how it was verified, and how many old ones were rotated away.
type Outcome = anyhow::Result<(Backup, &'static str, usize)>;

fn sqlite_backup(settings: &Settings) -> Outcome {
    let conn = sqlite::open(&settings.db, false)?;
    backups::ensure_dir(&settings.backup_dir)?;
    backups::ensure_space(&settings.backup_dir, settings.database_bytes())?;
    let backup = backups::online(&conn, &settings.new_backup_path())?;
    let removed = settings.rotate_backups(&backup.path)?;
    Ok((backup, "quick_check ok", removed))
}

fn postgres_backup(settings: &Settings, pg: &PgUrl) -> Outcome {
    let mut client = pg::connect(pg, "backup")?;
    pg_backups::check_tools(&mut client)?;
    backups::ensure_dir(&settings.backup_dir)?;
    backups::ensure_space(
        &settings.backup_dir,
        pg_backups::database_bytes(&mut client)?,
    )?;
    let backup = pg_backups::dump(pg, &settings.new_backup_path())?;
    let removed = settings.rotate_backups(&backup.path)?;
    Ok((
        backup,
        "pg_dump custom format, contents listed back",
        removed,
    ))
}
