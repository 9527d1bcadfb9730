//! NAME
//!     cargo xtask backup — a verified backup of the live database
//!
//! SYNOPSIS
//!     cargo xtask backup [--database-url URL]
//!     cargo xtask backup --list [--json] [--database-url URL]
//!
//! DESCRIPTION
//!     Step 4 of the runbook alone, safe while the service runs.
//!     SQLite: the online backup API into a temp file, fsync, `PRAGMA
//!     quick_check`, 0600, rename to
//!     `<db>.<sequence>.<UTC timestamp>.of-<owner>.bak` (`engine/backup_names.rs`).
//!     Postgres: `pg_dump --format=custom` (a consistent snapshot while the
//!     service runs), 0600, checked with `pg_restore --list`, named
//!     `<dbname>.pg.<sequence>.<UTC timestamp>.bak`.
//!     Both then rotate to the newest N.
//!     `--list` shows the backup folder instead (`engine/inventory.rs`):
//!     no lock, nothing written.

use crate::program::OPS;
use std::{path::Path, time::Instant};

use serde::Serialize;

use super::{
    inventory::{self, Entry, Kind},
    lock,
    open::open,
    rotation::{new_backup_path, rotate_backups},
    settings::{Migrations, Settings},
};
use crate::{
    engine::{backups, journal::Journal, roles::Verified},
    flags::BackupArgs,
};

pub fn run(site: &crate::paths::Site, args: &BackupArgs) -> anyhow::Result<()> {
    let settings = Settings::load(site, args.database_url.as_deref(), Migrations::NotRead)?;
    if args.list {
        return list(&settings, args.json);
    }
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
    let _lock = lock::take(settings, engine.as_mut(), &format!("{OPS} backup"))?;
    let bytes = engine.database_bytes()?;
    backups::ensure_dir(&settings.backup_dir)?;
    backups::ensure_space(&settings.backup_dir, bytes)?;
    let Verified { backup, how } = engine.back_up_online(&new_backup_path(settings)?)?;
    let rotation = rotate_backups(settings, &backup.path);
    Ok(format!(
        "{} ({} bytes, {how}); {rotation}",
        backup.path.display(),
        backup.bytes
    ))
}

/// `backup --list --json`: field names are documented in README.md
/// ("Machine-readable output") and stay stable.
#[derive(Serialize)]
struct Listing<'a> {
    /// The URL, password redacted.
    database: String,
    engine: &'static str,
    backup_dir: String,
    /// The file `restore` without an argument picks, and why.
    restore_pick: Option<&'a str>,
    restore_pick_reason: String,
    backups: &'a [Entry],
}

fn list(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let entries = inventory::take(
        &settings.backup_dir,
        &settings.backup_name,
        settings.engine(),
    )?;
    let pick = entries.iter().find(|e| e.restore_default);
    let backups: Vec<&Entry> = entries.iter().filter(|e| e.kind == Kind::Backup).collect();
    let place = backups.iter().position(|e| e.restore_default);
    let reason = match (pick, place) {
        (Some(_), Some(place)) if place + 1 < backups.len() => format!(
            "{}; the {} newer one(s) do not verify, so restore passes them over",
            backups::why_newest(backups.len(), place + 1),
            backups.len() - place - 1
        ),
        (Some(_), Some(place)) => backups::why_newest(backups.len(), place + 1),
        _ if !settings.backup_dir.exists() => format!(
            "the backup folder {} does not exist: no backup was taken there yet, or MIGRATE_BACKUP_DIR \
             points at the wrong folder",
            settings.backup_dir.display()
        ),
        _ if backups.is_empty() => "there is no backup of this database to restore".to_owned(),
        _ => "none of the backups of this database verifies: restore would refuse each one"
            .to_owned(),
    };
    if json {
        let listing = Listing {
            database: settings.url.to_string(),
            engine: settings.url.engine(),
            backup_dir: settings.backup_dir.display().to_string(),
            restore_pick: pick.map(|e| e.file.as_str()),
            restore_pick_reason: reason,
            backups: &entries,
        };
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    print_table(settings, &entries);
    match pick {
        Some(chosen) => println!(
            "restore without an argument picks {}: {reason}",
            chosen.file
        ),
        None => println!("restore without an argument: {reason}"),
    }
    Ok(())
}

/// One line per file; `taken` is the stamp in the name, `modified` the
/// file's mtime, both UTC. `*` marks restore's pick.
fn print_table(settings: &Settings, entries: &[Entry]) {
    println!(
        "backups of {} in {} (taken: from the name; modified: the file's mtime; both UTC)",
        settings.url,
        settings.backup_dir.display()
    );
    println!(
        "   {:12}  {:7}  {:24}  {:24}  {:>12}  {:6}  {:8}  file",
        "kind", "seq", "taken", "modified", "bytes", "schema", "verifies"
    );
    for e in entries {
        let name = Path::new(&e.file)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        println!(
            " {} {:12}  {:7}  {:24}  {:24}  {:>12}  {:6}  {:8}  {name}",
            if e.restore_default { '*' } else { ' ' },
            e.kind.as_str(),
            e.sequence.map_or("-".to_owned(), |s| format!("{s:06}")),
            e.name_time.as_deref().unwrap_or("-"),
            e.modified_time.as_deref().unwrap_or("-"),
            e.size_bytes,
            e.schema_version.map_or("?".to_owned(), |v| v.to_string()),
            if e.verifies { "yes" } else { "NO" },
        );
        if let Some(problem) = &e.problem {
            println!("      {name}: {problem}");
        } else if let Some(note) = &e.schema_version_note {
            println!("      {name}: schema version unknown: {note}");
        }
    }
    if !settings.backup_dir.exists() {
        println!(
            "   (none: the backup folder {} does not exist)",
            settings.backup_dir.display()
        );
    } else if entries.is_empty() {
        let whose = settings
            .backup_name
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        println!("   (none: no file named like a backup of {whose} in the folder)");
    }
}
