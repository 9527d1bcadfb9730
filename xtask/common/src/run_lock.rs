//! The lock that serializes runs: one runbook (or restore) at a time per
//! database, one release at a time per repository.
//!
//! An OS file lock on `<database>.migrate.lock`, so it vanishes with the
//! process that held it however that process ended; the file's text names the
//! holder (pid, host, start time) for the error a second run prints. Text
//! found in a file nobody holds is a lock left by a dead run: taken over with
//! a warning.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};

pub struct MigrationLock {
    file: File,
    pub path: PathBuf,
    /// The holder found in a lock nobody held any more, if any.
    pub stale: Option<String>,
}

/// `<database>.migrate.lock`, beside the file the path resolves to: two
/// paths to one database (a symlink, `..`) take one lock. A missing
/// database (a first deploy) resolves through its folder.
pub fn path_for(db: &Path) -> PathBuf {
    let resolved = std::fs::canonicalize(db).ok().or_else(|| {
        let folder = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(folder).ok()?.join(db.file_name()?))
    });
    let db = resolved.as_deref().unwrap_or(db);
    PathBuf::from(format!("{}.migrate.lock", db.display()))
}

/// Who holds the lock at `path` right now, if anyone does (a lock file
/// nobody holds names nobody, whatever text it keeps).
pub fn current_holder(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => Some(read_holder(&mut file)).filter(|h| !h.is_empty()),
        _ => None,
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

impl MigrationLock {
    /// Takes the lock or fails at once, naming the holder.
    pub fn acquire(path: &Path, purpose: &str) -> anyhow::Result<MigrationLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| {
                format!("opening the lock file {}: is its folder writable (and not a read-only filesystem)?", path.display())
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = wait_for_holder(&mut file);
                bail!(
                    "another run holds the lock {}: {holder}. Wait for it to finish; runs are serialized",
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let previous = read_holder(&mut file);
        let stale = (!previous.is_empty()).then_some(previous);
        let holder = format!(
            "{purpose} by pid {} on {} since {}",
            std::process::id(),
            hostname(),
            crate::stamp::timestamp()
        );
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(holder.as_bytes())?;
        file.sync_all()?;
        Ok(MigrationLock {
            file,
            path: path.to_path_buf(),
            stale,
        })
    }
}

/// The holder writes its name right after locking: a run that lost the race
/// by microseconds waits briefly for it rather than naming nobody.
fn wait_for_holder(file: &mut File) -> String {
    for _ in 0..50 {
        let holder = read_holder(file);
        if !holder.is_empty() {
            return holder;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    "a run that has not written its name yet".into()
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text));
    text.trim().to_owned()
}

impl Drop for MigrationLock {
    /// An empty file means "released cleanly"; the OS lock goes with the handle.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}
