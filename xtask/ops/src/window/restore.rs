//! NAME
//!     cargo xtask restore — put a backup back in place of the database
//!
//! SYNOPSIS
//!     cargo xtask restore [BACKUP] [--database-url URL]
//!
//! DESCRIPTION
//!     BACKUP defaults to the newest backup of this database (by sequence
//!     number, its owner tag matching) that verifies; newer ones that do not
//!     are named and passed over. Under the
//!     migration lock (and on Postgres the server's advisory lock), verifies
//!     the backup, refuses while the database is in use (stop the service or
//!     set maintenance first; waits MIGRATE_LOCK_TIMEOUT_SECS), keeps the
//!     current contents as `<db>.<sequence>.<timestamp>.of-<owner>.pre-restore.bak`
//!     (so a restore can itself be undone; never taken for the newest backup
//!     nor rotated away), then restores all or nothing.
//!     SQLite: `PRAGMA quick_check` on the backup, an atomic rename, and the
//!     result compared with the backup byte for byte.
//!     Postgres: `pg_restore --list` on the archive, then the public schema
//!     replaced with the archive's in one transaction (`pg_restore | psql`):
//!     any error leaves the database as it was.

use crate::program::OPS;
use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};

use super::{
    lock,
    open::open,
    rotation::new_backup_path,
    settings::{Migrations, Settings},
};
use crate::{
    engine::{backups, journal::Journal, roles::Engine},
    failpoint,
    flags::RestoreArgs,
};

pub fn run(site: &crate::paths::Site, args: &RestoreArgs) -> anyhow::Result<()> {
    let settings = Settings::load(site, args.database_url.as_deref(), Migrations::NotRead)?;
    settings.require_database(
        "or create the folder (mkdir -m 700) to restore a backup into it",
        true,
    )?;
    let journal = Journal::new(&settings.backup_dir, "restore");
    let start = Instant::now();
    let chosen = args.backup.as_deref().map(|backup| site.path(backup));
    let result = restore(&settings, chosen.as_deref());
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
    let mut engine = open(settings, false, "restore")?;
    let _lock = lock::take(settings, engine.as_mut(), &format!("{OPS} restore"))?;
    failpoint::hit("restore-after-lock")?;
    let backup = chosen_or_newest(settings, chosen, engine.as_ref())?;
    engine.verify_backup(&backup).with_context(|| {
        format!(
            "the backup {} is not usable; choose another",
            backup.display()
        )
    })?;
    engine.hold_for_restore()?;
    // Not named like a backup: a plain re-run of `restore` must still pick
    // the backup it was asked for, not the file it replaced.
    let keep_at = new_backup_path(settings)?.with_extension("pre-restore.bak");
    backups::ensure_dir(&settings.backup_dir)?;
    let kept = match engine
        .keep_current(&keep_at)
        .context("keeping the current contents before the restore (nothing was changed)")?
    {
        Some(replaced) => format!(
            "the replaced database was kept as {}",
            replaced.path.display()
        ),
        None => "there was no database to keep".to_owned(),
    };
    failpoint::hit("restore-after-keep")?;
    let checked = engine.restore_from(&backup)?;
    Ok(format!(
        "{} now holds {} ({checked}); {kept}",
        settings.url,
        backup.display()
    ))
}

fn chosen_or_newest(
    settings: &Settings,
    chosen: Option<&Path>,
    engine: &dyn Engine,
) -> anyhow::Result<PathBuf> {
    let backup = match chosen {
        Some(path) => path.to_path_buf(),
        None => newest(settings, engine)?,
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

/// The newest backup of this database, by sequence number (the order
/// backups were taken, not what a clock wrote in their names), that the
/// engine verifies; says which one and why, and which newer ones it passed over.
fn newest(settings: &Settings, engine: &dyn Engine) -> anyhow::Result<PathBuf> {
    let all = backups::list(&settings.backup_dir, &settings.backup_name)?;
    let mut passed_over = Vec::new();
    for (index, candidate) in all.iter().enumerate().rev() {
        if let Err(error) = engine.verify_backup(candidate) {
            passed_over.push(format!("{error:#}"));
            continue;
        }
        let newer = match passed_over.len() {
            0 => String::new(),
            n => format!(
                "; passed over the {n} newer one(s), which do not verify: {}",
                passed_over.join("; ")
            ),
        };
        println!(
            "no backup given: restoring {}; of the backups of {} in {}, it is {}{newer}",
            candidate.display(),
            settings.backup_name.display(),
            settings.backup_dir.display(),
            backups::why_newest(all.len(), index + 1)
        );
        return Ok(candidate.clone());
    }
    let none_verify = match passed_over.len() {
        0 => String::new(),
        n => format!(
            " that verify (the {n} there do not: {})",
            passed_over.join("; ")
        ),
    };
    bail!(
        "no backups of {}{none_verify} in {}: pass one explicitly (`{OPS} backup --list` shows the folder)",
        settings.backup_name.display(),
        settings.backup_dir.display()
    )
}
