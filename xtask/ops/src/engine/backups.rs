//! What every backup has, whatever its engine: names, rotation, room on
//! the disk, private files, publication under the final name. Backups hold
//! secrets: files are 0600, a folder we create 0700.
//! A backup only ever appears under its final name complete and fsynced.
//!
//! Verification compares the copy with its source byte for byte: stronger
//! than comparing hashes, and several times cheaper inside the window.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use crate::fsutil;
use anyhow::{Context, bail};

/// A finished backup.
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
}

pub use super::backup_names::{
    Owner, db_file_name, list, named_entries, new_path, order_of, owner_tag, parse_any,
    pre_restore_order,
};

/// `12 KiB`, `3 MiB`: a backup's size for a status line.
pub fn human_size(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{} MiB", bytes / (1 << 20))
    }
}

/// Why `restore` without an argument picks the `place`-th (from 1) of the
/// `count` of [`list`]: the last taken that verifies.
pub fn why_newest(count: usize, place: usize) -> String {
    let which = if place == count {
        format!("the last taken of the {count} backup(s)")
    } else {
        format!("number {place} taken of the {count} backup(s), the last that verifies")
    };
    format!("{which}, by sequence number (the order they were taken), not by the clock")
}

/// Deletes the oldest backups of `db` beyond `keep`; never `just_made`, never
/// a file outside the naming pattern. Returns what it deleted.
pub fn rotate(
    dir: &Path,
    db: &Path,
    keep: usize,
    just_made: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let all = list(dir, db)?;
    let excess = all.len().saturating_sub(keep.max(1));
    let (mut removed, mut failed) = (Vec::new(), Vec::new());
    // One file that cannot go must not keep every later one.
    for old in all.into_iter().filter(|p| p != just_made).take(excess) {
        match fs::remove_file(&old) {
            Ok(()) => removed.push(old),
            Err(error) => failed.push(format!("{}: {error}", old.display())),
        }
    }
    if !failed.is_empty() {
        bail!(
            "removed {} old backup(s), but not {}",
            removed.len(),
            failed.join("; ")
        );
    }
    Ok(removed)
}

/// Creates the backup folder (0700) if needed and proves it can be written.
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| {
                format!(
                    "creating the backup folder {}: choose a writable one (MIGRATE_BACKUP_DIR)",
                    dir.display()
                )
            })?;
    }
    let probe = dir.join(".xtask-write-probe");
    File::create(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .with_context(|| format!("the backup folder {} cannot be written: fix its permissions or choose another (MIGRATE_BACKUP_DIR)", dir.display()))
}

/// Fails unless `dir` has room for `bytes` plus a margin.
pub fn ensure_space(dir: &Path, bytes: u64) -> anyhow::Result<()> {
    let needed = room_short(dir, bytes)?;
    if let Some((available, needed)) = needed {
        bail!(
            "the backup folder {} has {} MiB free, a backup needs about {} MiB: free space or choose another folder (MIGRATE_BACKUP_DIR)",
            dir.display(),
            available / (1 << 20),
            needed / (1 << 20)
        );
    }
    Ok(())
}

/// `Some((available, needed))` when `dir`'s filesystem lacks room for
/// `bytes` plus a margin (10 % and 1 MiB).
pub fn room_short(dir: &Path, bytes: u64) -> anyhow::Result<Option<(u64, u64)>> {
    let available = fs4::available_space(dir)
        .with_context(|| format!("reading free space of {}", dir.display()))?;
    let needed = bytes + bytes / 10 + 1024 * 1024;
    Ok((available < needed).then_some((available, needed)))
}

/// Creates `path` for writing with mode 0600 (the file holds secrets).
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// SQLite's `-journal`, `-wal` and `-shm` of a closed database file.
pub fn remove_sidecars(db: &Path) {
    for suffix in ["-journal", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// Runs `write` on the temp path beside `dest`; on failure the temp file is
/// removed, so nothing half-written outlives the attempt.
pub fn with_temp<T>(
    dest: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let temp = fsutil::temp_path(dest);
    let result = write(&temp);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        remove_sidecars(&temp);
    }
    result
}

/// Gives a finished temp file its final name, durably, and never over an
/// existing file: a link fails where the name is taken (two backups in one
/// millisecond, a clock gone back), and then nothing was overwritten.
pub fn publish(temp: &Path, dest: &Path) -> anyhow::Result<()> {
    fs::hard_link(temp, dest).with_context(|| {
        format!(
            "publishing {} as {}: a file of that name exists (nothing was overwritten); run again",
            temp.display(),
            dest.display()
        )
    })?;
    fs::remove_file(temp).with_context(|| format!("removing {}", temp.display()))?;
    fsutil::sync_dir(dest.parent().unwrap_or(Path::new(".")))
}

/// Removes what runs that died left in `dirs`: temp backups and copies
/// (`….bak.xtask-tmp` and their `-journal`, `-wal`, `-shm`) and the
/// database's own restore temp. Only for a caller holding the lock, so no
/// live run owns them; returns one line per file removed.
pub fn remove_dead_temps(dirs: &[&Path], db: &Path) -> Vec<String> {
    let db_temp = format!(".{}.xtask-tmp", db_file_name(db));
    let mut done = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let dead = name.contains(".bak.xtask-tmp") || name.starts_with(&db_temp);
            let path = entry.path();
            if dead && path.is_file() && fs::remove_file(&path).is_ok() {
                done.push(format!(
                    "removed {} left by a run that did not finish",
                    path.display()
                ));
            }
        }
    }
    done
}

/// Whether two files hold the same bytes. The halves are compared on two
/// threads: inside the window the copy's verification is most of the
/// backup's time, and reading from the page cache is bound by one core.
pub fn same_bytes(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let open = |p: &Path| File::open(p).with_context(|| format!("opening {}", p.display()));
    let (left, right) = (open(a)?, open(b)?);
    let len = left.metadata()?.len();
    if len != right.metadata()?.len() {
        return Ok(false);
    }
    let half = (len / 2) & !((1 << 20) - 1);
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| same_range(&left, &right, 0, half));
        let second = same_range(&left, &right, half, len);
        (first.join(), second)
    });
    let first = first.map_err(|_| anyhow::anyhow!("the comparing thread panicked"))?;
    let context = || format!("comparing {} with {}", a.display(), b.display());
    Ok(first.with_context(context)? && second.with_context(context)?)
}

/// Whether bytes `start..end` of two files are equal (1 MiB reads).
fn same_range(left: &File, right: &File, start: u64, end: u64) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = start;
    while at < end {
        let n = (end - at).min(1 << 20) as usize;
        left.read_exact_at(&mut x[..n], at)?;
        right.read_exact_at(&mut y[..n], at)?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::timestamp;

    fn is_backup_of(name: &str, db: &Path) -> bool {
        order_of(name, db).is_some()
    }

    #[test]
    fn only_files_of_the_naming_pattern_are_backups() {
        let db = Path::new("/srv/secrets.db");
        assert!(is_backup_of("secrets.db.20261124T001500.123Z.bak", db));
        for not_ours in [
            "secrets.db.bak",
            "secrets.db.20261124T001500Z.bak",
            "other.db.20261124T001500.123Z.bak",
            "secrets.db.20261124T001500.123Z.bak.partial",
            "notes.txt",
        ] {
            assert!(!is_backup_of(not_ours, db), "{not_ours}");
        }
        let stamp = timestamp();
        assert!(
            is_backup_of(&format!("secrets.db.{stamp}.bak"), db),
            "{stamp}"
        );
        assert!(is_backup_of(&format!("secrets.db.000042.{stamp}.bak"), db));
        assert!(!is_backup_of(&format!("secrets.db.42.{stamp}.bak"), db));
        assert!(is_backup_of(&format!("secrets.db.1000000.{stamp}.bak"), db));
        assert!(is_backup_of(
            &format!("secrets.db.000042.{stamp}.of-0a1b2c3d.bak"),
            db
        ));
        assert!(!is_backup_of(
            "secrets.db.000010.20261399T999999.999Z.bak",
            db
        ));
        assert!(!is_backup_of(
            &format!("secrets.db.000042.{stamp}.pre-restore.bak"),
            db
        ));
    }

    #[test]
    fn the_order_is_the_sequence_whatever_the_clock_said() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("s.db");
        for name in [
            "s.db.20991231T000000.000Z.bak",
            "s.db.000002.20200101T000000.000Z.bak",
            "s.db.000001.20991231T000000.000Z.bak",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = list(dir.path(), &db)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "s.db.20991231T000000.000Z.bak",
                "s.db.000001.20991231T000000.000Z.bak",
                "s.db.000002.20200101T000000.000Z.bak"
            ]
        );
        let next = new_path(dir.path(), &db).unwrap();
        assert!(
            next.to_string_lossy().contains("s.db.000003."),
            "{}",
            next.display()
        );
    }

    #[test]
    fn rotation_keeps_the_newest_and_never_the_one_just_made_nor_strangers() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = dir.path().join("s.db");
        let names = [
            "s.db.20260101T000000.000Z.bak",
            "s.db.20260102T000000.000Z.bak",
            "s.db.20260103T000000.000Z.bak",
            "s.db.20260104T000000.000Z.bak",
        ];
        for name in names.iter().chain(&["keep-me.txt", "s.db.bak"]) {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        let removed = rotate(dir.path(), &db, 2, &dir.path().join(names[0])).unwrap();
        assert_eq!(
            removed,
            [dir.path().join(names[1]), dir.path().join(names[2])]
        );
        assert!(dir.path().join(names[0]).exists() && dir.path().join(names[3]).exists());
        assert!(dir.path().join("keep-me.txt").exists() && dir.path().join("s.db.bak").exists());
    }
}
