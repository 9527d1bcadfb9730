//! Gaps in the migration versions (#13, findings 4, 5 and 16): computed and
//! printed as ranges whatever the jump, listed in `allow-gaps` as ranges,
//! refused by every command that reads the history (adopt and db copy too),
//! and a version that does not fit refinery's i32 named as out of range.
//! The real binary on temp repositories, real SQLite files and the real
//! Postgres server.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    fs,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use support::{copy_migrations, mig, next, shipped_latest, sqlite_url, text, xtask_command};
use tempfile::TempDir;

/// A temp repository with this repository's migrations, a `Cargo.toml`
/// holding `migrate_toml` as `[workspace.metadata.migrate]`, and `extra`
/// (name, SQL) added to its migrations folder.
fn repo(migrate_toml: &str, extra: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    let migrations = dir.path().join("migrations");
    copy_migrations(&migrations, None);
    for (name, sql) in extra {
        fs::write(migrations.join(name), sql).unwrap();
    }
    fs::write(
        dir.path().join("Cargo.toml"),
        format!("[workspace]\nmembers = []\n\n[workspace.metadata.migrate]\n{migrate_toml}"),
    )
    .unwrap();
    dir
}

fn xtask(repo: &Path, args: &[&str]) -> Command {
    let mut cmd = xtask_command();
    cmd.env_remove("MIGRATE_ALLOW_GAPS")
        .arg("--repo")
        .arg(repo)
        .args(args);
    cmd
}

const ADD_X: &str = "ALTER TABLE secrets ADD COLUMN x TEXT;\n";

/// What the xtask says of `file` two versions after the shipped latest.
fn gap_after(file: &str) -> String {
    format!(
        "{file}: follows V{} — version {} is missing",
        shipped_latest(),
        next()
    )
}

/// The shipped migrations then V1000000: the gap is one range, found at once and said in a
/// line, with the allow-gaps entry that would list it.
#[test]
fn a_large_jump_is_one_range_found_at_once() {
    let repo = repo("", &[("V1000000__add_x.sql", ADD_X)]);
    let started = Instant::now();
    let out = xtask(repo.path(), &["migrations", "new", "next"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(said.len() < 4000, "{} bytes said", said.len());
    let (latest, next) = (shipped_latest(), next());
    assert!(
        said.contains(&format!(
            "follows V{latest} — versions {next}–999999 are missing"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("allow-gaps = [\"{next}-999999\"]")),
        "{said}"
    );
    assert!(
        said.contains(&format!("MIGRATE_ALLOW_GAPS={next}-999999")),
        "{said}"
    );
    let names = fs::read_dir(repo.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(!names.iter().any(|n| n.contains("next")), "{names:?}");
}

#[test]
fn a_range_in_allow_gaps_lets_the_history_run() {
    let n = next();
    let repo = repo(
        &format!("allow-gaps = [\"{n}-999999\"]\n"),
        &[("V1000000__add_x.sql", ADD_X)],
    );
    let db = repo.path().join("data/secrets.db");
    let out = xtask(repo.path(), &["migrate", "--create"])
        .args(["--database-url", &sqlite_url(&db)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = xtask(repo.path(), &["migrations", "new", "next"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.path().join("migrations/V1000001__next.sql").is_file());
    // The environment takes ranges and single versions alike.
    let (add_x, add_y) = (mig(n + 2, "add_x"), mig(n + 15, "add_y"));
    let repo2 = self::repo(
        "",
        &[
            (add_x.as_str(), ADD_X),
            (add_y.as_str(), "ALTER TABLE secrets ADD COLUMN y TEXT;\n"),
        ],
    );
    let out = xtask(repo2.path(), &["migrations", "new", "next"])
        .env(
            "MIGRATE_ALLOW_GAPS",
            format!("{n},{} {}-{}", n + 1, n + 3, n + 14),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A range that covers a file is stale, and said so.
    let out = xtask(repo2.path(), &["migrations", "new", "other"])
        .env("MIGRATE_ALLOW_GAPS", format!("{n}-{}", n + 14))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("allow-gaps lists versions {n}-{}, but", n + 14))
            && text(&out).contains(&format!("{add_x} exists")),
        "{}",
        text(&out)
    );
}

#[test]
fn a_version_above_i32_is_said_to_be_out_of_range() {
    let repo = repo("", &[("V2147483648__add_x.sql", ADD_X)]);
    let out = xtask(repo.path(), &["migrations", "new", "next"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("V2147483648__add_x.sql: version 2147483648 is out of range")
            && text(&out).contains("2147483647"),
        "{}",
        text(&out)
    );
}

#[test]
fn allow_gaps_below_one_or_reversed_is_refused_naming_the_variable() {
    let repo = repo("", &[]);
    for bad in ["0", "-1", "3-", "9-5", "x"] {
        let out = xtask(repo.path(), &["migrations", "new", "next"])
            .env("MIGRATE_ALLOW_GAPS", bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("MIGRATE_ALLOW_GAPS=`{bad}`")),
            "{bad}: {}",
            text(&out)
        );
    }
    let repo = self::repo("allow-gaps = [0]\n", &[]);
    let out = xtask(repo.path(), &["migrations", "new", "next"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("allow-gaps"), "{}", text(&out));
    assert!(
        !repo
            .path()
            .join("migrations")
            .join(mig(next(), "next"))
            .exists()
    );
}

/// A SQLite database built by running the shipped migrations' SQL by hand:
/// the latest schema without refinery's history, as `migrate adopt` expects
/// to find it.
fn unrecorded_latest(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("old.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    for file in test_support::migration_files(&dir.join("migrations")) {
        conn.execute_batch(&fs::read_to_string(file).unwrap())
            .unwrap();
    }
    db
}

#[test]
fn adopt_refuses_a_gap_before_it_records_anything() {
    let repo = repo("", &[]);
    let db = unrecorded_latest(repo.path());
    let after_next = mig(next() + 1, "add_x");
    fs::write(repo.path().join("migrations").join(&after_next), ADD_X).unwrap();
    let before = fs::read(&db).unwrap();
    for dry in [true, false] {
        let mut cmd = xtask(repo.path(), &["migrate", "adopt"]);
        cmd.args(["--database-url", &sqlite_url(&db)]);
        if dry {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "dry run {dry}: {}", text(&out));
        assert!(
            text(&out).contains(&gap_after(&after_next)),
            "{}",
            text(&out)
        );
    }
    assert_eq!(fs::read(&db).unwrap(), before, "the database changed");
}

#[test]
fn db_copy_refuses_a_gap_before_it_copies_anything() {
    let Some(server) = support::pg::server("db_copy_refuses_a_gap_before_it_copies_anything")
    else {
        return;
    };
    let source = support::Site::new();
    let target = support::pg::PgSite::empty(&server);
    target.migrate_fully();
    let after_next = mig(next() + 1, "add_x");
    target.add_migration(&after_next, ADD_X);
    let out = target.copy_from(&source);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&gap_after(&after_next)),
        "{}",
        text(&out)
    );
    assert_eq!(target.secrets(), Vec::<(String, String)>::new());
}
