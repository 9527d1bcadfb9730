//! Backups of the SQLite file: verified copies (online, or of the file
//! under the exclusive lock), their checks, and atomic restores. What every
//! backup has (names, rotation, space, private files, publication) is
//! `engine::backups`.

use std::{
    fs::{self, File},
    io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use crate::{
    engine::backups::{Backup, create_private, publish, remove_sidecars, same_bytes, with_temp},
    fsutil, sqlite,
};

/// How long an online backup may wait for a moment when its one read
/// transaction can start.
const SNAPSHOT_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Copies a database file nobody else is using (the service is down and the
/// WAL checkpointed) to `dest`, verified byte for byte against the source.
pub fn copy_verified(src: &Path, dest: &Path) -> anyhow::Result<Backup> {
    with_temp(dest, |temp| {
        let mut input = File::open(src).with_context(|| format!("opening {}", src.display()))?;
        let mut output =
            create_private(temp).with_context(|| format!("creating {}", temp.display()))?;
        // File to file: the kernel copies (copy_file_range), as `cp` does.
        let bytes = io::copy(&mut input, &mut output)
            .with_context(|| format!("copying {} to {}", src.display(), temp.display()))?;
        crate::failpoint::hit("mid-backup")?;
        output
            .sync_all()
            .with_context(|| format!("flushing {} to disk", temp.display()))?;
        drop(output);
        if !same_bytes(src, temp)? {
            bail!(
                "the copy {} does not match {} byte for byte: the disk may be failing",
                temp.display(),
                src.display()
            );
        }
        publish(temp, dest)?;
        crate::failpoint::hit("after-backup")?;
        Ok(Backup {
            path: dest.to_path_buf(),
            bytes,
        })
    })
}

/// A consistent copy of a database in use, through SQLite's online backup
/// API; verified with `PRAGMA quick_check` (the source keeps changing, so a
/// hash comparison would mean nothing).
pub fn online(conn: &Connection, dest: &Path) -> anyhow::Result<Backup> {
    with_temp(dest, |temp| {
        create_private(temp).with_context(|| format!("creating {}", temp.display()))?;
        sqlite::snapshot(conn, temp, SNAPSHOT_WITHIN)
            .with_context(|| format!("online backup to {}", temp.display()))?;
        File::open(temp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("flushing {}", temp.display()))?;
        fs::set_permissions(temp, fs::Permissions::from_mode(0o600))?;
        verify_database(temp)?;
        remove_sidecars(temp);
        let bytes = fs::metadata(temp)?.len();
        publish(temp, dest)?;
        Ok(Backup {
            path: dest.to_path_buf(),
            bytes,
        })
    })
}

/// `PRAGMA quick_check` on a database file, opened immutable: nothing is
/// written beside it (no `-wal`, no `-shm`), whatever file it turns out to be.
pub fn verify_database(path: &Path) -> anyhow::Result<()> {
    let conn = open_immutable(path)?;
    let problems = sqlite::integrity_problems(&conn, "quick_check")
        .with_context(|| format!("{} is not a readable SQLite database", path.display()))?;
    if !problems.is_empty() {
        bail!(
            "{} fails PRAGMA quick_check: {}",
            path.display(),
            problems.join("; ")
        );
    }
    Ok(())
}

/// What `restore` takes: a non-empty file that passes `PRAGMA quick_check`
/// and holds a `refinery_schema_history` table. An empty file opens as an
/// empty database and checks fine; another application's database too: neither
/// is a backup of a database this tool migrates.
pub fn check_restorable(path: &Path) -> anyhow::Result<()> {
    let metadata = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !metadata.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if metadata.len() == 0 {
        bail!(
            "{} is an empty file (0 bytes), not a SQLite database: not a backup",
            path.display()
        );
    }
    verify_database(path)?;
    if !has_history(&open_immutable(path)?, path)? {
        bail!(
            "{} has no refinery_schema_history table: another application's database, not a backup of this one",
            path.display()
        );
    }
    Ok(())
}

/// The highest version in a SQLite backup's own migration history (0: none
/// applied, as `migrate status` says of such a database), opened immutable
/// like [`verify_database`].
pub fn schema_version(path: &Path) -> anyhow::Result<Option<i32>> {
    let conn = open_immutable(path)?;
    // An empty file or another application's database has no history: its
    // version is unknown, not 0.
    if !has_history(&conn, path)? {
        return Ok(None);
    }
    let history = sqlite::applied_history(&conn)?;
    Ok(Some(history.last().map_or(0, |m| m.version())))
}

/// Whether a database file holds refinery's history table.
fn has_history(conn: &Connection, path: &Path) -> anyhow::Result<bool> {
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'refinery_schema_history'",
            [],
            |row| row.get(0),
        )
        .with_context(|| format!("reading the tables of {}", path.display()))?;
    Ok(tables > 0)
}

/// `file:<path>?immutable=1`, every byte outside the URI's unreserved set
/// percent-encoded, so a path is a path whatever it holds.
fn open_immutable(path: &Path) -> anyhow::Result<Connection> {
    use std::os::unix::ffi::OsStrExt;
    let absolute =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut uri = String::from("file:");
    for byte in absolute.as_os_str().as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(char::from(*byte))
            }
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    Connection::open_with_flags(&uri, flags).with_context(|| format!("opening {}", path.display()))
}

/// Puts `backup` in place of `db` atomically (temp file beside the database,
/// fsync, rename, folder fsync), removes stale `-wal`/`-shm` files, and
/// checks the result equals the backup byte for byte.
pub fn restore_file(backup: &Path, db: &Path) -> anyhow::Result<()> {
    // A database path that is a symbolic link: the real file is restored and
    // the link kept, so whoever opens either path sees the restored data.
    let db = &fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let owner = fs::metadata(db).ok();
    with_temp(db, |temp| {
        let mut input =
            File::open(backup).with_context(|| format!("opening backup {}", backup.display()))?;
        let mut output =
            create_private(temp).with_context(|| format!("creating {}", temp.display()))?;
        io::copy(&mut input, &mut output)
            .with_context(|| format!("copying {} to {}", backup.display(), temp.display()))?;
        crate::failpoint::hit("restore-mid-copy")?;
        output.sync_all()?;
        drop(output);
        if let Some(replaced) = &owner {
            keep_owner_and_mode(temp, replaced, db)?;
        }
        for suffix in ["-wal", "-shm"] {
            let stale = PathBuf::from(format!("{}{suffix}", db.display()));
            if stale.exists() {
                fs::remove_file(&stale)
                    .with_context(|| format!("removing stale {}", stale.display()))?;
            }
        }
        fs::rename(temp, db)
            .with_context(|| format!("renaming {} over {}", temp.display(), db.display()))?;
        crate::failpoint::hit("restore-after-rename")?;
        fsutil::sync_dir(db.parent().unwrap_or(Path::new(".")))?;
        if !same_bytes(backup, db)? {
            bail!(
                "the restored {} does not equal the backup {}: restore it again by hand",
                db.display(),
                backup.display()
            );
        }
        Ok(())
    })
}

/// The restored file gets the owner, group and mode of the one it replaces:
/// the service (often another user than the one restoring) must still open it.
fn keep_owner_and_mode(temp: &Path, replaced: &fs::Metadata, db: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(temp, Some(replaced.uid()), Some(replaced.gid())).with_context(|| {
        format!(
            "giving the restored file the owner {}:{} of {} (nothing was replaced): run the restore as root or \
             as that owner",
            replaced.uid(),
            replaced.gid(),
            db.display()
        )
    })?;
    fs::set_permissions(temp, fs::Permissions::from_mode(replaced.mode() & 0o7777))
        .with_context(|| format!("setting the mode of {}", temp.display()))
}
