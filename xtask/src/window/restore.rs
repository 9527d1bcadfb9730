//! NAME
//!     cargo xtask restore — put a backup back in place of the database
//!
//! SYNOPSIS
//!     cargo xtask restore [BACKUP] [--database-url URL]
//!
//! DESCRIPTION
//!     BACKUP defaults to the newest backup of the database. Refuses while the
//!     database is in use (stop the service or set maintenance first). Verifies
//!     the backup (`PRAGMA quick_check`), keeps the file it replaces as
//!     `<db>.<timestamp>.pre-restore.bak` (so a restore can itself be undone;
//!     never taken for the newest backup nor rotated away), then restores atomically and
//!     checks the result equals the backup byte for byte.
//!
//!     On Postgres: under the migration advisory lock, refuses while other
//!     sessions use the database, keeps the current contents as a
//!     `.pre-restore.bak` dump, then replaces the public schema with the
//!     archive's in one transaction (`pg_restore | psql --single-transaction`):
//!     any error leaves the database as it was.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use backend::dburl::{DatabaseUrl, PgUrl};

use super::{journal::Journal, settings::Settings};
use crate::{
    engine::{backups, pg, pg_backups, sqlite},
    flags::RestoreArgs,
    run_lock,
};

pub fn run(repo: &Path, args: &RestoreArgs) -> anyhow::Result<()> {
    let settings = Settings::load(repo, args.database_url.as_deref(), None)?;
    let journal = Journal::new(&settings.backup_dir, "restore");
    let start = Instant::now();
    let result = restore(&settings, args.backup.as_deref());
    match &result {
        Ok(detail) => {
            journal.record("restore", start.elapsed(), "ok", detail);
            println!("restored: {detail}");
        }
        Err(error) => journal.record("restore", start.elapsed(), "FAILED", &format!("{error:#}")),
    }
    result.map(drop)
}

fn restore(settings: &Settings, chosen: Option<&Path>) -> anyhow::Result<String> {
    if let DatabaseUrl::Postgres(pg) = &settings.url {
        let backup = chosen_or_newest(settings, chosen)?;
        return restore_postgres(settings, pg, &backup);
    }
    let lock = run_lock::MigrationLock::acquire(&settings.lock_path(), "cargo xtask restore")?;
    if let Some(holder) = &lock.stale {
        eprintln!("warning: took over a lock left by a run that is gone ({holder})");
        let leftover = crate::fsutil::temp_path(&settings.db);
        if leftover.is_file() && std::fs::remove_file(&leftover).is_ok() {
            eprintln!("recovered: removed the unfinished {}", leftover.display());
        }
    }
    crate::failpoint::hit("restore-after-lock")?;
    let backup = chosen_or_newest(settings, chosen)?;
    backups::verify_database(&backup).with_context(|| {
        format!(
            "the backup {} is not usable; choose another",
            backup.display()
        )
    })?;
    let mut kept = String::from("there was no database to keep");
    if settings.db.exists() {
        let db = sqlite::lock_exclusively(&settings.db, Duration::from_secs(1)).context(
            "refusing to restore a database in use: stop the service (or set its maintenance flag) first",
        )?;
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .context("checkpointing the database before keeping it")?;
        // Not named like a backup: a plain re-run of `restore` must still
        // pick the backup it was asked for, not the file it replaced.
        let replaced = backups::copy_verified(
            &settings.db,
            &backups::new_path(&settings.backup_dir, &settings.db)
                .with_extension("pre-restore.bak"),
        )?;
        kept = format!(
            "the replaced database was kept as {}",
            replaced.path.display()
        );
        crate::failpoint::hit("restore-after-keep")?;
        drop(db);
    }
    backups::restore_file(&backup, &settings.db)?;
    Ok(format!(
        "{} now holds {} (verified byte for byte); {kept}",
        settings.db.display(),
        backup.display()
    ))
}

fn chosen_or_newest(settings: &Settings, chosen: Option<&Path>) -> anyhow::Result<PathBuf> {
    let backup = match chosen {
        Some(path) => path.to_path_buf(),
        None => newest(settings)?,
    };
    if !backup.is_file() {
        bail!(
            "backup {} does not exist: list the backups in {}",
            backup.display(),
            settings.backup_dir.display()
        );
    }
    Ok(backup)
}

fn newest(settings: &Settings) -> anyhow::Result<PathBuf> {
    backups::list(&settings.backup_dir, &settings.db)?
        .pop()
        .with_context(|| {
            format!(
                "no backups of {} in {}: pass one explicitly",
                settings.db.display(),
                settings.backup_dir.display()
            )
        })
}

fn restore_postgres(settings: &Settings, pg: &PgUrl, backup: &Path) -> anyhow::Result<String> {
    pg_backups::verify(backup).with_context(|| {
        format!(
            "the backup {} is not usable; choose another",
            backup.display()
        )
    })?;
    let mut client = pg::connect(pg, "restore")?;
    pg::lock(
        &mut client,
        settings.lock_timeout,
        "MIGRATE_LOCK_TIMEOUT_SECS",
    )?;
    let sessions = pg_backups::other_sessions(&mut client)?;
    if !sessions.is_empty() {
        bail!(
            "refusing to restore a database in use by {}: stop the service (or set its maintenance flag) first",
            sessions.join(", ")
        );
    }
    backups::ensure_dir(&settings.backup_dir)?;
    let replaced = pg_backups::dump(
        pg,
        &settings.new_backup_path().with_extension("pre-restore.bak"),
    )
    .context("keeping the current contents before the restore (nothing was changed)")?;
    crate::failpoint::hit("restore-after-keep")?;
    pg_backups::restore(pg, backup)?;
    Ok(format!(
        "{} now holds {}; the replaced contents were kept as {}",
        settings.url,
        backup.display(),
        replaced.path.display()
    ))
}
