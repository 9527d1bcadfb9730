//! What a backup folder holds for one database, read without changing
//! anything: every backup, every pre-restore copy and every unfinished temp
//! file, each with its times, size, schema version and whether it verifies.
//! No lock is taken (a listing must work while a window runs) and nothing
//! is written: SQLite files are opened immutable (no `-wal`, no `-shm`),
//! Postgres archives only read by `pg_restore`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::Serialize;

use crate::{
    engine::backups, history::Engine, pg::backups as pg_backups, sqlite::backups as sqlite_backups,
    stamp,
};

/// What a file of the folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Backup,
    /// Kept by a restore; never picked by one.
    PreRestore,
    /// A temp file: being written now, or left by a run that died.
    Unfinished,
    /// A backup of another database (another tag, or an untagged name in a
    /// folder other databases share): never picked nor rotated for this one.
    OtherDatabase,
    /// Named like a backup, but not one: a folder, a dangling link, a stamp
    /// that is no real time.
    NotABackup,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::PreRestore => "pre-restore",
            Kind::Unfinished => "unfinished",
            Kind::OtherDatabase => "other-database",
            Kind::NotABackup => "not-a-backup",
        }
    }
}

/// One file of the folder. Field names are documented in README.md
/// ("Machine-readable output") and stay stable.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub file: String,
    pub kind: Kind,
    /// The sequence number in the name (None: a name from before them, or a temp).
    pub sequence: Option<u64>,
    /// When the backup was taken, from the stamp in its name (UTC, RFC 3339).
    pub name_time: Option<String>,
    /// The file's modification time (UTC, RFC 3339).
    pub modified_time: Option<String>,
    pub size_bytes: u64,
    /// The highest version in the backup's own migration history.
    pub schema_version: Option<i32>,
    /// Why `schema_version` is None.
    pub schema_version_note: Option<String>,
    pub verifies: bool,
    /// Why it does not verify.
    pub problem: Option<String>,
    /// Whether `restore` without an argument picks this one.
    pub restore_default: bool,
}

/// Every file in `dir` named like a backup of `db`: its backups oldest first
/// (the order `restore` uses; the newest that verifies marked as its pick),
/// then pre-restore copies, unfinished temps, other databases' backups and
/// files named like backups that are none.
pub fn take(dir: &Path, db: &Path, engine: Engine) -> anyhow::Result<Vec<Entry>> {
    // A folder that exists but cannot be read must not pass for an empty one.
    if dir.exists() {
        fs::read_dir(dir).with_context(|| {
            format!(
                "reading the backup folder {}: fix its permissions, or point MIGRATE_BACKUP_DIR at the right one",
                dir.display()
            )
        })?;
    }
    let backups = backups::list(dir, db)?;
    let mut entries: Vec<Entry> = backups
        .iter()
        .filter_map(|path| read(path, db, engine, Kind::Backup))
        .collect();
    if let Some(pick) = entries.iter_mut().rev().find(|e| e.verifies) {
        pick.restore_default = true;
    }
    let (kept, unfinished) = strays(dir, db);
    entries.extend(
        kept.iter()
            .filter_map(|path| read(path, db, engine, Kind::PreRestore)),
    );
    entries.extend(unfinished.iter().filter_map(|path| unfinished_entry(path)));
    entries.extend(not_ours(dir, db, &backups, &kept));
    Ok(entries)
}

/// Files named like a backup of `db` that are not one of its backups nor
/// pre-restore copies, each with what it is instead.
fn not_ours(dir: &Path, db: &Path, backups: &[PathBuf], kept: &[PathBuf]) -> Vec<Entry> {
    let mut found: Vec<Entry> = backups::named_entries(dir, db)
        .into_iter()
        .filter(|(_, path)| !backups.contains(path) && !kept.contains(path))
        .filter_map(|(name, path)| {
            let (kind, problem) = what_instead(dir, db, &name, &path)?;
            let (size_bytes, modified_time) = size_and_time(&path).unwrap_or((0, None));
            let named = backups::parse_any(&name, db);
            Some(Entry {
                file: path.display().to_string(),
                kind,
                sequence: named.as_ref().map(|n| n.sequence).filter(|s| *s > 0),
                name_time: named.and_then(|n| stamp::stamp_to_rfc3339(&n.stamp)),
                modified_time,
                size_bytes,
                schema_version: None,
                schema_version_note: None,
                verifies: false,
                problem: Some(problem),
                restore_default: false,
            })
        })
        .collect();
    found.sort_by(|a, b| a.file.cmp(&b.file));
    found
}

/// Why a file named like a backup is not one of `db`'s; None for a file
/// gone since the folder was read.
fn what_instead(dir: &Path, db: &Path, name: &str, path: &Path) -> Option<(Kind, String)> {
    let link = fs::symlink_metadata(path).ok()?;
    let Ok(target) = fs::metadata(path) else {
        let to = fs::read_link(path).map_or("?".to_owned(), |t| t.display().to_string());
        return Some((
            Kind::NotABackup,
            format!("a symbolic link to {to}, which does not exist: not a backup"),
        ));
    };
    if !target.is_file() {
        let what = crate::fsutil::what_it_is(if link.is_symlink() { &target } else { &link });
        return Some((Kind::NotABackup, format!("{what}, not a backup file")));
    }
    let Some(named) = backups::parse_any(name, db) else {
        return Some((
            Kind::NotABackup,
            "not in the backup pattern <file>.<sequence>.<UTC stamp YYYYMMDDTHHMMSS.mmmZ>[.of-<owner>].bak \
             (or its stamp is no real time): never restored nor rotated; remove or rename it"
                .to_owned(),
        ));
    };
    let problem = match named.owner(dir, db) {
        backups::Owner::Other(tag) => format!(
            "a backup of another database (owner tag {tag}; this database's is {}): never restored nor rotated \
             for {}; restore it by name if that is meant",
            backups::owner_tag(db).unwrap_or_default(),
            db.display()
        ),
        _ => format!(
            "an untagged name from before backups named their database, in a folder other databases may share: \
             it cannot say it is a backup of {}; restore it by name if it is",
            db.display()
        ),
    };
    Some((Kind::OtherDatabase, problem))
}

/// Pre-restore copies of `db` and unfinished temps in `dir`, each sorted by name.
fn strays(dir: &Path, db: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut kept, mut unfinished) = (Vec::new(), Vec::new());
    let Ok(entries) = fs::read_dir(dir) else {
        return (kept, unfinished);
    };
    let temp_prefix = format!(".{}.", backups::db_file_name(db));
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pre_restore = backups::parse_any(&name, db).filter(|n| n.pre_restore);
        if pre_restore.is_some_and(|n| n.owner(dir, db) == backups::Owner::This)
            && entry.path().is_file()
        {
            kept.push(entry.path());
        } else if name.starts_with(&temp_prefix) && name.ends_with(".bak.xtask-tmp") {
            unfinished.push(entry.path());
        }
    }
    kept.sort();
    unfinished.sort();
    (kept, unfinished)
}

/// None: the file went away since the folder was read (rotated by a
/// backup running now), so nothing is said about it.
fn read(path: &Path, db: &Path, engine: Engine, kind: Kind) -> Option<Entry> {
    let (size_bytes, modified_time) = size_and_time(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let order = backups::order_of(&name, db).or_else(|| backups::pre_restore_order(&name, db));
    let (verifies, problem) = match verify(path, engine) {
        Ok(()) => (true, None),
        Err(error) => (false, Some(format!("{error:#}"))),
    };
    let (schema_version, schema_version_note) = match schema_version(path, engine) {
        Ok(Some(version)) => (Some(version), None),
        Ok(None) => (
            None,
            Some("it holds no refinery_schema_history table (data)".to_owned()),
        ),
        Err(error) => (None, Some(format!("cannot be read: {error:#}"))),
    };
    Some(Entry {
        file: path.display().to_string(),
        kind,
        sequence: order
            .as_ref()
            .map(|(sequence, _)| *sequence)
            .filter(|s| *s > 0),
        name_time: order.and_then(|(_, stamp)| stamp::stamp_to_rfc3339(&stamp)),
        modified_time,
        size_bytes,
        schema_version,
        schema_version_note,
        verifies,
        problem,
        restore_default: false,
    })
}

fn unfinished_entry(path: &Path) -> Option<Entry> {
    let (size_bytes, modified_time) = size_and_time(path)?;
    Some(Entry {
        file: path.display().to_string(),
        kind: Kind::Unfinished,
        sequence: None,
        name_time: None,
        modified_time,
        size_bytes,
        schema_version: None,
        schema_version_note: Some("not a complete backup".to_owned()),
        verifies: false,
        problem: Some(
            "not a complete backup: a temp file being written right now, or left by a run that died \
             (the next backup, restore or migrate removes it under the lock)"
                .to_owned(),
        ),
        restore_default: false,
    })
}

/// The engine's own check: SQLite's `PRAGMA quick_check` on an immutable
/// open; for Postgres, `pg_restore --list` reading the archive's contents.
fn verify(path: &Path, engine: Engine) -> anyhow::Result<()> {
    match engine {
        Engine::Sqlite => sqlite_backups::check_restorable(path),
        Engine::Postgres => pg_backups::verify(path).map(drop),
    }
}

/// The highest version in the backup's own `refinery_schema_history`.
fn schema_version(path: &Path, engine: Engine) -> anyhow::Result<Option<i32>> {
    match engine {
        Engine::Sqlite => sqlite_backups::schema_version(path),
        Engine::Postgres => pg_backups::schema_version(path),
    }
}

/// The file's size and modification time (UTC, RFC 3339); None when it is gone.
fn size_and_time(path: &Path) -> Option<(u64, Option<String>)> {
    let metadata = fs::metadata(path).ok()?;
    let modified = metadata.modified().ok();
    let modified = modified.and_then(stamp::system_time_rfc3339);
    Some((metadata.len(), modified))
}
