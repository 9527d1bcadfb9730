//! `cargo xtask migrate` (the plain form) run as the real binary against real
//! SQLite files and migration folders in temp directories.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
};

use rusqlite::Connection;
use support::{
    copy_migrations, migrations_dir as repo_migrations, sqlite_url as url, text, xtask_command,
};
use tempfile::TempDir;

/// A temp folder with a copy of the repository's first `count` migrations
/// (all of them when None) in `migrations/`.
fn workspace(count: Option<usize>) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let migrations = dir.path().join("migrations");
    copy_migrations(&migrations, count);
    (dir, migrations)
}

fn xtask(args: &[&str]) -> Output {
    xtask_command().args(args).output().unwrap()
}

fn migrate(db: &Path, migrations: &Path, extra: &[&str]) -> Output {
    let url = url(db);
    let mut args = vec![
        "migrate",
        "--database-url",
        &url,
        "--migrations",
        migrations.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    xtask(&args)
}

fn history(db: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, name FROM refinery_schema_history ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn tables(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn creates_and_migrates_a_fresh_database_then_has_nothing_to_do() {
    let (dir, migrations) = workspace(None);
    let db = dir.path().join("data/secrets.db");
    let out = migrate(&db, &migrations, &["--create"]);
    assert!(out.status.success(), "{}", text(&out));
    let applied = history(&db);
    assert_eq!(applied.len(), fs::read_dir(&migrations).unwrap().count());
    assert_eq!(applied[0], (1, "create_secrets".to_owned()));
    assert!(text(&out).contains("V1__create_secrets"), "{}", text(&out));
    assert!(tables(&db).contains(&"secret_access_log".to_owned()));
    let journal: String = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");

    let again = migrate(&db, &migrations, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("up to date"), "{}", text(&again));
    assert_eq!(history(&db), applied);
}

#[test]
fn upgrades_a_database_of_an_older_release_keeping_its_rows() {
    let (dir, old) = workspace(Some(2));
    let db = dir.path().join("secrets.db");
    assert!(migrate(&db, &old, &["--create"]).status.success());
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "INSERT INTO secrets (name, value, created_at, expires_at) VALUES
               ('a', 'one', '2026-01-01T00:00:00Z', NULL),
               ('b', 'two', '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z');",
        )
        .unwrap();
    // To V5, the last schema with plaintext values: V6 waits for `backend
    // seal` (expand_contract.rs walks that part).
    let out = migrate(&db, &repo_migrations(), &["--to", "5"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("V3__secrets_check_constraints"),
        "{}",
        text(&out)
    );
    let conn = Connection::open(&db).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT name, value FROM secrets ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [("a".into(), "one".into()), ("b".into(), "two".into())]
    );
    // The rebuilt table kept its index and gained its checks.
    let too_long = conn.execute(
        "INSERT INTO secrets (name, value, created_at) VALUES (?1, 'v', 'now')",
        ["n".repeat(129)],
    );
    assert!(
        too_long.is_err(),
        "V3's CHECK on the name length is in force"
    );
}

/// Runs a migrate that must fail and asserts the database file did not change.
fn fails_leaving_db_unchanged(db: &Path, migrations: &Path, extra: &[&str]) -> String {
    let before = fs::read(db).ok();
    let out = migrate(db, migrations, extra);
    assert!(!out.status.success(), "should have failed:\n{}", text(&out));
    assert_eq!(
        fs::read(db).ok(),
        before,
        "the database file changed:\n{}",
        text(&out)
    );
    text(&out)
}

fn db_at(migrations_count: usize) -> (TempDir, PathBuf, PathBuf) {
    let (dir, migrations) = workspace(Some(migrations_count));
    let db = dir.path().join("secrets.db");
    assert!(migrate(&db, &migrations, &["--create"]).status.success());
    // Checkpoint so the comparison below sees every byte in the main file.
    Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    (dir, db, migrations)
}

#[test]
fn an_sql_error_in_any_pending_migration_applies_none_of_them() {
    let (_dir, db, migrations) = db_at(2);
    for file in [
        "V3__secrets_check_constraints.sql",
        "V4__create_secret_access_log.sql",
    ] {
        fs::copy(repo_migrations().join(file), migrations.join(file)).unwrap();
    }
    fs::write(
        migrations.join("V5__broken.sql"),
        "ALTER TABLE no_such_table ADD COLUMN x TEXT;\n",
    )
    .unwrap();
    let message = fails_leaving_db_unchanged(&db, &migrations, &[]);
    assert!(message.contains("no_such_table"), "{message}");
    assert_eq!(history(&db).len(), 2, "V3 and V4 must not land without V5");
}

#[test]
fn a_migration_that_breaks_a_foreign_key_is_rolled_back() {
    let (_dir, db, migrations) = db_at(4);
    fs::write(
        migrations.join("V5__orphan_log_rows.sql"),
        "INSERT INTO secret_access_log (secret_id, action, accessed_at) VALUES (4242, 'read', 'x');\n",
    )
    .unwrap();
    let message = fails_leaving_db_unchanged(&db, &migrations, &[]);
    assert!(
        message.contains("foreign key") && message.contains("secret_access_log"),
        "{message}"
    );
}

#[test]
fn an_edited_applied_migration_is_named() {
    let (_dir, db, migrations) = db_at(2);
    let file = migrations.join("V2__add_secret_expiry.sql");
    fs::write(&file, fs::read_to_string(&file).unwrap() + "-- edited\n").unwrap();
    let message = fails_leaving_db_unchanged(&db, &migrations, &[]);
    assert!(
        message.contains("V2__add_secret_expiry.sql") && message.contains("changed"),
        "{message}"
    );
}

#[test]
fn a_vanished_applied_migration_is_named() {
    // A hole in the middle of the history (a vanished newest file reads as a
    // newer release's: "ahead", see the Postgres suite).
    let (_dir, db, migrations) = db_at(3);
    fs::remove_file(migrations.join("V2__add_secret_expiry.sql")).unwrap();
    let message = fails_leaving_db_unchanged(&db, &migrations, &[]);
    assert!(
        message.contains("V2__add_secret_expiry") && message.contains("missing"),
        "{message}"
    );
}

#[test]
fn stray_files_and_duplicate_versions_are_errors_not_skips() {
    let (_dir, db, migrations) = db_at(2);
    fs::write(
        migrations.join("V3_missing_underscore.sql"),
        "CREATE TABLE x (id INTEGER);",
    )
    .unwrap();
    fs::write(
        migrations.join("V2__second_v2.sql"),
        "CREATE TABLE y (id INTEGER);",
    )
    .unwrap();
    fs::write(migrations.join("notes.txt"), "todo").unwrap();
    let message = fails_leaving_db_unchanged(&db, &migrations, &[]);
    assert!(message.contains("3 problem(s)"), "{message}");
    assert!(
        message.contains("V3_missing_underscore.sql") && message.contains("rename"),
        "{message}"
    );
    assert!(message.contains("notes.txt"), "{message}");
    assert!(message.contains("version 2 is also used by"), "{message}");
}

#[test]
fn a_missing_database_is_not_created_without_create() {
    let (dir, migrations) = workspace(None);
    let db = dir.path().join("typo.db");
    let out = migrate(&db, &migrations, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not exist") && text(&out).contains("--create"),
        "{}",
        text(&out)
    );
    assert!(!db.exists());
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let (dir, migrations) = workspace(None);
    let db = dir.path().join("not-a.db");
    fs::write(&db, "plain text, not a database\n".repeat(300)).unwrap();
    let message = fails_leaving_db_unchanged(&db, &migrations, &[]);
    assert!(
        message.contains("not a usable SQLite database"),
        "{message}"
    );
}

#[test]
fn a_folder_as_database_path_is_refused() {
    let (dir, migrations) = workspace(None);
    let out = migrate(dir.path(), &migrations, &["--create"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is a folder"), "{}", text(&out));
}

#[test]
fn paths_with_spaces_quotes_and_dollar_parens_are_taken_literally() {
    let (dir, migrations) = workspace(None);
    let db = dir.path().join("a b 'c' $(touch pwned).db");
    let out = migrate(&db, &migrations, &["--create"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(db.is_file());
    assert!(!Path::new("pwned").exists() && !dir.path().join("pwned").exists());
}

#[test]
fn malformed_urls_name_the_accepted_forms() {
    for bad in [
        "mysql://localhost/x",
        "postgres://localhost",
        "sqlite://x.db",
        "sqlite:///",
    ] {
        let out = xtask(&["migrate", "--database-url", bad]);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("sqlite:////absolute/path")
                && text(&out).contains("postgres://host:5432/dbname"),
            "{bad}: {}",
            text(&out)
        );
    }
}

#[test]
fn the_flag_wins_over_the_environment() {
    let (dir, migrations) = workspace(None);
    let flagged = dir.path().join("flag.db");
    let out = xtask_command()
        .args([
            "migrate",
            "--create",
            "--database-url",
            &url(&flagged),
            "--migrations",
        ])
        .arg(&migrations)
        .env("DATABASE_URL", url(&dir.path().join("env.db")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(flagged.exists() && !dir.path().join("env.db").exists());
}

#[test]
fn help_lists_each_command_with_one_line() {
    let out = xtask(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("migrate") && help.contains("maintenance window"),
        "{help}"
    );
}

/// A bare `cargo xtask` prints the help and succeeds, as cargo does; an
/// empty `DATABASE_URL=` is refused, naming the variable, instead of
/// silently meaning the default database (#13).
#[test]
fn a_bare_call_prints_help_and_an_empty_database_url_is_refused() {
    let out = xtask_command().output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: cargo xtask"));
    let out = xtask_command()
        .args(["migrate", "status"])
        .env("DATABASE_URL", "")
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("DATABASE_URL is set but empty"), "{said}");
}

/// `migrate --create --dry-run` on a database that does not exist yet
/// prints the first deploy's plan and creates nothing (#13: it failed with
/// "does not exist: pass --create").
#[test]
fn a_first_deploy_dry_run_prints_the_plan_and_creates_nothing() {
    let (dir, migrations) = workspace(None);
    let db = dir.path().join("new").join("secrets.db");
    let out = migrate(&db, &migrations, &["--create", "--dry-run"]);
    let plan = text(&out);
    assert!(out.status.success(), "{plan}");
    assert!(
        plan.contains("does not exist yet")
            && plan.contains("V1__create_secrets")
            && plan.contains("nothing was changed"),
        "{plan}"
    );
    assert!(
        !dir.path().join("new").exists(),
        "the dry run created something"
    );
}
