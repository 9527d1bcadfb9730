//! Backups and restore never pick the wrong file (adversarial pass 3 on
//! backups): every file named like a backup is classified truthfully, a
//! backup belongs to one database, sequence numbers are unique at any
//! width, and `restore` without an argument takes the newest complete,
//! verified backup of this database. The real binary on real SQLite files.

#![allow(clippy::unwrap_used)]

use crate::support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use rusqlite::Connection;
use serde_json::Value;
use support::{Site, text};

fn listing(site: &Site, env: &[(&str, &str)]) -> Value {
    let out = site.xtask(&["backup", "--list", "--json"], env);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn entry<'a>(listing: &'a Value, file: &Path) -> &'a Value {
    let file = file.display().to_string();
    listing["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == file.as_str())
        .unwrap_or_else(|| panic!("{file} is not listed: {listing}"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The one backup `xtask backup` made now (the file that was not there before).
fn back_up(site: &Site, dir: &Path, env: &[(&str, &str)]) -> PathBuf {
    let before = names(dir);
    let out = site.xtask(&["backup"], env);
    assert!(out.status.success(), "{}", text(&out));
    let made: Vec<String> = names(dir)
        .into_iter()
        .filter(|n| !before.contains(n) && n.ends_with(".bak"))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}: {}", text(&out));
    dir.join(&made[0])
}

fn sequence_of(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.split('.').nth(2).unwrap().to_owned()
}

fn add_secret(site: &Site, name: &str) {
    let conn = Connection::open(&site.db).unwrap();
    support::insert_sealed(&conn, name, "v", "2026-01-03T00:00:00Z");
}

fn secret_names(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM secrets ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Finding 1: after 999999 the numbers grow wider and stay visible, unique
/// and in order; rotation and restore see them.
#[test]
fn sequence_numbers_past_999999_stay_visible_unique_and_last() {
    let site = Site::new();
    let dir = site.dir.path();
    let first = back_up(&site, dir, &[]);
    let high = dir.join("secrets.db.999999.20261129T112041.910Z.bak");
    fs::copy(&first, &high).unwrap();
    let a = back_up(&site, dir, &[]);
    add_secret(&site, "gamma");
    let b = back_up(&site, dir, &[]);
    assert_eq!(sequence_of(&a), "1000000");
    assert_eq!(sequence_of(&b), "1000001");
    let listing = listing(&site, &[]);
    assert_eq!(entry(&listing, &b)["sequence"], 1000001);
    assert_eq!(listing["restore_pick"], b.display().to_string().as_str());

    let out = site.xtask(&["backup"], &[("MIGRATE_KEEP_BACKUPS", "2")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !high.exists() && !first.exists() && !a.exists(),
        "{}",
        text(&out)
    );
    assert!(b.exists());

    add_secret(&site, "delta");
    let out = site.xtask(&["restore"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(secret_names(&site.db).contains(&"gamma".to_owned()));
    assert!(!secret_names(&site.db).contains(&"delta".to_owned()));
}

/// Finding 19: pre-restore copies use their number up; the next backup
/// takes one above them all.
#[test]
fn pre_restore_copies_and_backups_never_share_a_number() {
    let site = Site::new();
    let dir = site.dir.path();
    back_up(&site, dir, &[]);
    for _ in 0..3 {
        let out = site.xtask(&["restore"], &[]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let next = back_up(&site, dir, &[]);
    let mut sequences: Vec<String> = names(dir)
        .iter()
        .filter(|n| n.ends_with(".bak"))
        .map(|n| sequence_of(Path::new(n)))
        .collect();
    assert_eq!(sequences.len(), 5, "{:?}", names(dir));
    sequences.sort();
    sequences.dedup();
    assert_eq!(
        sequences.len(),
        5,
        "a number was used twice: {:?}",
        names(dir)
    );
    assert_eq!(sequence_of(&next), "000005", "{:?}", names(dir));
}

/// Finding 2: two databases of one file name share a backup folder; each
/// sees, rotates and restores only its own backups.
#[test]
fn a_shared_backup_folder_keeps_each_databases_backups_apart() {
    let shared = tempfile::TempDir::new().unwrap();
    let bk = shared.path().to_str().unwrap();
    let env = [("MIGRATE_BACKUP_DIR", bk)];
    let (a, b) = (Site::new(), Site::new());
    let a_backup = back_up(&a, shared.path(), &env);
    add_secret(&b, "only-in-b");
    let before = fs::read(&b.db).unwrap();
    let out = b.xtask(&["restore"], &env);
    assert_eq!(
        out.status.code(),
        Some(1),
        "b restored a's backup: {}",
        text(&out)
    );
    assert!(text(&out).contains("no backups of"), "{}", text(&out));
    assert_eq!(fs::read(&b.db).unwrap(), before, "b's database changed");

    let b_listing = listing(&b, &env);
    assert_eq!(entry(&b_listing, &a_backup)["kind"], "other-database");
    assert_eq!(b_listing["restore_pick"], Value::Null);

    let keep_one = [("MIGRATE_BACKUP_DIR", bk), ("MIGRATE_KEEP_BACKUPS", "1")];
    let b_backup = back_up(&b, shared.path(), &keep_one);
    back_up(&b, shared.path(), &keep_one);
    assert!(a_backup.exists(), "b's rotation deleted a's backup");
    assert!(!b_backup.exists(), "b's rotation kept its old backup");
    let out = a.xtask(&["restore"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("restoring {}", a_backup.display())),
        "{}",
        text(&out)
    );
}

/// Findings 3 and 18: an empty file, another application's SQLite file and
/// a name whose stamp is no real time are not backups of this database:
/// listed as such and never restore's pick.
#[test]
fn empty_foreign_and_impossible_files_are_never_restores_pick() {
    let site = Site::new();
    let dir = site.dir.path();
    let good = back_up(&site, dir, &[]);
    let empty = dir.join("secrets.db.000007.20261129T101500.000Z.bak");
    fs::write(&empty, "").unwrap();
    let other_app = dir.join("secrets.db.000008.20261129T101600.000Z.bak");
    Connection::open(&other_app)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
        .unwrap();
    let impossible = dir.join("secrets.db.000010.20261399T999999.999Z.bak");
    fs::copy(&good, &impossible).unwrap();

    let listing = listing(&site, &[]);
    let e = entry(&listing, &empty);
    assert_eq!(e["verifies"], false, "{e}");
    assert!(e["problem"].as_str().unwrap().contains("empty"), "{e}");
    assert_eq!(e["schema_version"], Value::Null, "{e}");
    let o = entry(&listing, &other_app);
    assert_eq!(o["schema_version"], Value::Null, "{o}");
    assert_eq!(o["verifies"], false, "{o}");
    assert!(
        o["problem"]
            .as_str()
            .unwrap()
            .contains("refinery_schema_history"),
        "{o}"
    );
    let i = entry(&listing, &impossible);
    assert_eq!(i["kind"], "not-a-backup", "{i}");
    assert_eq!(i["name_time"], Value::Null, "{i}");
    assert_eq!(listing["restore_pick"], good.display().to_string().as_str());

    add_secret(&site, "gamma");
    let out = site.xtask(&["restore"], &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("restoring {}", good.display())),
        "{said}"
    );
    assert!(said.contains("000008") && said.contains("000007"), "{said}");
    assert!(fs::metadata(&site.db).unwrap().len() > 0);
    assert!(!secret_names(&site.db).contains(&"gamma".to_owned()));

    let out = site.xtask(&["restore", empty.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(fs::metadata(&site.db).unwrap().len() > 0);
}

/// Findings 12, 14 and 22: an mtime out of range, a folder or a dangling
/// link under a backup's name, a backup folder that does not exist.
#[test]
fn the_listing_survives_odd_files_and_says_what_they_are() {
    let site = Site::new();
    let dir = site.dir.path();
    let good = back_up(&site, dir, &[]);
    let far = dir.join("secrets.db.000002.20261129T101500.000Z.bak");
    fs::copy(&good, &far).unwrap();
    let touched = Command::new("touch")
        .arg("-d")
        .arg("@253402300800")
        .arg(&far)
        .status()
        .unwrap();
    assert!(touched.success());
    let folder = dir.join("secrets.db.000003.20261129T101600.000Z.bak");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("inside"), "x").unwrap();
    let dangling = dir.join("secrets.db.000004.20261129T101700.000Z.bak");
    std::os::unix::fs::symlink(dir.join("gone"), &dangling).unwrap();

    let listing = listing(&site, &[]);
    // ext4 clamps that mtime to 2446; where it is kept (tmpfs, XFS) it is
    // past the year 9999 and listed as unknown (stamp.rs tests the conversion).
    let far_time = &entry(&listing, &far)["modified_time"];
    assert!(
        far_time.is_null() || far_time.as_str().unwrap().ends_with('Z'),
        "{far_time}"
    );
    let f = entry(&listing, &folder);
    assert_eq!(f["kind"], "not-a-backup", "{f}");
    assert!(f["problem"].as_str().unwrap().contains("folder"), "{f}");
    let d = entry(&listing, &dangling);
    assert_eq!(d["kind"], "not-a-backup", "{d}");
    assert!(
        d["problem"].as_str().unwrap().contains("symbolic link"),
        "{d}"
    );
    assert_eq!(listing["restore_pick"], far.display().to_string().as_str());

    // Rotation goes past what it cannot remove and keeps strangers.
    let out = site.xtask(&["backup"], &[("MIGRATE_KEEP_BACKUPS", "1")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!good.exists() && !far.exists(), "{}", text(&out));
    assert!(folder.join("inside").exists());

    let missing = dir.join("no-such-folder");
    let out = site.xtask(
        &["backup", "--list"],
        &[("MIGRATE_BACKUP_DIR", missing.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
}

/// Finding 8: restore waits MIGRATE_LOCK_TIMEOUT_SECS for the database, and
/// a path that is not a file is named for what it is.
#[test]
fn restore_waits_the_lock_timeout_and_names_a_path_that_is_no_file() {
    let site = Site::new();
    back_up(&site, site.dir.path(), &[]);
    let holder = Connection::open(&site.db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let start = Instant::now();
    let out = site.xtask(&["restore"], &[("MIGRATE_LOCK_TIMEOUT_SECS", "3")]);
    let waited = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        waited.as_secs_f64() >= 2.9,
        "gave up after {waited:?}: {}",
        text(&out)
    );
    drop(holder);

    let other = tempfile::TempDir::new().unwrap();
    let folder_db = other.path().join("secrets.db");
    fs::create_dir(&folder_db).unwrap();
    let backup = site.backups()[0].clone();
    let out = support::xtask_command()
        .args(["restore", backup.to_str().unwrap(), "--database-url"])
        .arg(support::sqlite_url(&folder_db))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is a folder"), "{}", text(&out));
    assert!(!text(&out).contains("in use"), "{}", text(&out));

    fs::remove_dir(&folder_db).unwrap();
    let made = Command::new("mkfifo").arg(&folder_db).status().unwrap();
    assert!(made.success());
    let out = support::xtask_command()
        .args(["restore", backup.to_str().unwrap(), "--database-url"])
        .arg(support::sqlite_url(&folder_db))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is a FIFO"), "{}", text(&out));
    assert!(!text(&out).contains("in use"), "{}", text(&out));
}

/// Findings 10 and 11: with nothing pending, `migrate` checks no backup
/// folder, and `--vacuum` is refused with the command that does it.
#[test]
fn migrate_with_nothing_pending_needs_no_backup_room_and_never_ignores_vacuum() {
    let site = Site::new();
    let not_a_folder = site.dir.path().join("a-file");
    fs::write(&not_a_folder, "x").unwrap();
    let env = [("MIGRATE_BACKUP_DIR", not_a_folder.to_str().unwrap())];
    let out = site.xtask(&["migrate"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));

    let out = site.xtask(&["migrate", "--vacuum"], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("VACUUM"), "{said}");
}
