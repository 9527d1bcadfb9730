//! Backup names: `<db file>.<sequence>.<UTC timestamp>.of-<owner>.bak`.
//! Which files are backups of which database, in what order, and the name
//! the next one takes. Read from names and file types only: nothing here
//! opens a backup.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::stamp::timestamp;

/// The database's file name: the first part of its backups' names.
pub fn db_file_name(db: &Path) -> String {
    db.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `<db file>.<sequence>.<UTC timestamp>.of-<owner>.bak` in `dir`. The
/// sequence number, one above the highest any file of that name holds there
/// (backups, pre-restore copies, other databases' backups), orders backups
/// by fact: a clock that jumped cannot make an old backup look new. It has
/// at least six digits and grows wider past 999999. `<owner>` ties the
/// backup to its database ([`owner_tag`]).
/// A backup already numbered at the highest sequence is refused: the next
/// one would wrap to the oldest place, and rotation could remove it.
pub fn new_path(dir: &Path, db: &Path) -> anyhow::Result<PathBuf> {
    let last = named_entries(dir, db)
        .iter()
        .filter_map(|(name, _)| parse_any(name, db).map(|named| (named.sequence, name.clone())))
        .max();
    let next = match &last {
        None => 1,
        Some((sequence, name)) => sequence.checked_add(1).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the backup {name} carries the highest number a backup can have ({sequence}), so no \
                 backup can follow it: move it out of the folder (or rename it with a lower number) and run \
                 again; nothing was changed",
                dir.display()
            )
        })?,
    };
    let owner = owner_tag(db).map_or(String::new(), |tag| format!(".of-{tag}"));
    Ok(dir.join(format!(
        "{}.{:06}.{}{owner}.bak",
        db_file_name(db),
        next,
        timestamp()
    )))
}

/// Whose backup a name says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Tagged with this database's tag, or an untagged name in the
    /// database's own folder (where its file name alone identifies it).
    This,
    /// Tagged with another database's tag.
    Other(String),
    /// An untagged name (from before tags) in a folder other databases
    /// may share: it cannot say which database it came from.
    Unknown,
}

/// A name in the backup pattern, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// 0 for names from before sequence numbers.
    pub sequence: u64,
    pub stamp: String,
    pub pre_restore: bool,
    tag: Option<String>,
}

impl Named {
    pub fn owner(&self, dir: &Path, db: &Path) -> Owner {
        match (&self.tag, owner_tag(db)) {
            (Some(tag), Some(ours)) if *tag == ours => Owner::This,
            (Some(tag), _) => Owner::Other(tag.clone()),
            // A Postgres database has no path to tag its backups with.
            (None, None) => Owner::This,
            (None, _) if in_own_folder(dir, db) => Owner::This,
            (None, _) => Owner::Unknown,
        }
    }
}

/// 8 hex digits of FNV-1a over the database's canonical path: two databases
/// of one file name in one backup folder never take each other's backups.
/// None for a Postgres database (its `db` is a bare `<dbname>.pg`).
pub fn owner_tag(db: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    if !db.is_absolute() {
        return None;
    }
    let canonical = canonical_db(db);
    let hash = canonical
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    Some(format!("{:08x}", (hash >> 32) ^ (hash & 0xffff_ffff)))
}

/// The database's path with its links and `..` resolved, also when the
/// file does not exist yet (a restore into an empty folder).
fn canonical_db(db: &Path) -> PathBuf {
    if let Ok(path) = fs::canonicalize(db) {
        return path;
    }
    match (
        db.parent().and_then(|p| fs::canonicalize(p).ok()),
        db.file_name(),
    ) {
        (Some(parent), Some(name)) => parent.join(name),
        _ => db.to_path_buf(),
    }
}

fn in_own_folder(dir: &Path, db: &Path) -> bool {
    let parent = db.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    match (fs::canonicalize(dir), fs::canonicalize(parent)) {
        (Ok(a), Ok(b)) => a == b,
        _ => dir == parent,
    }
}

/// A backup's place in the order, by its name: the sequence number (0 for
/// names from before sequence numbers), then the stamp. None: not in the
/// backup pattern of `db` (a pre-restore copy, anything else).
pub fn order_of(name: &str, db: &Path) -> Option<(u64, String)> {
    parse(name, db, ".bak").map(|n| (n.sequence, n.stamp))
}

/// The same for a pre-restore copy (`<db>.<sequence>.<stamp>[.of-<owner>].pre-restore.bak`).
pub fn pre_restore_order(name: &str, db: &Path) -> Option<(u64, String)> {
    parse(name, db, ".pre-restore.bak").map(|n| (n.sequence, n.stamp))
}

/// A backup or a pre-restore copy of any database of `db`'s file name.
pub fn parse_any(name: &str, db: &Path) -> Option<Named> {
    parse(name, db, ".pre-restore.bak").or_else(|| parse(name, db, ".bak"))
}

fn parse(name: &str, db: &Path, suffix: &str) -> Option<Named> {
    let rest = name
        .strip_prefix(&format!("{}.", db_file_name(db)))?
        .strip_suffix(suffix)?;
    let (rest, tag) = match rest.rsplit_once(".of-") {
        Some((rest, tag)) if tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (rest, Some(tag.to_owned()))
        }
        _ => (rest, None),
    };
    let (sequence, stamp) = match rest.split_once('.') {
        Some((sequence, stamp))
            if sequence.len() >= 6
                && sequence.bytes().all(|b| b.is_ascii_digit())
                && is_stamp(stamp) =>
        {
            (sequence.parse().ok()?, stamp)
        }
        _ if is_stamp(rest) => (0, rest),
        _ => return None,
    };
    Some(Named {
        sequence,
        stamp: stamp.to_owned(),
        pre_restore: suffix == ".pre-restore.bak",
        tag,
    })
}

fn is_stamp(stamp: &str) -> bool {
    crate::stamp::stamp_to_rfc3339(stamp).is_some()
}

/// Whether a name is one a backup file of `db` could have: `<db file>.` …
/// `.bak`. What `backup --list` shows, whatever it turns out to be.
pub fn named_like_a_backup(name: &str, db: &Path) -> bool {
    name.starts_with(&format!("{}.", db_file_name(db))) && name.ends_with(".bak")
}

/// Every entry of `dir` named like a backup of `db`, with its path.
pub fn named_entries(dir: &Path, db: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| named_like_a_backup(name, db))
        .collect()
}

/// Backups of `db` in `dir`, oldest first (by sequence number, then
/// stamp): regular files in the pattern that belong to `db` ([`Owner::This`]).
pub fn list(dir: &Path, db: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<((u64, String), PathBuf)> = named_entries(dir, db)
        .into_iter()
        .filter_map(|(name, path)| {
            let named = parse(&name, db, ".bak")?;
            let ours = named.owner(dir, db) == Owner::This && path.is_file();
            ours.then_some(((named.sequence, named.stamp), path))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}
