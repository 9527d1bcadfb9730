//! `cargo xtask migrate adopt`, run as the real binary on real databases as
//! the previous stack (Python, SQLAlchemy and Alembic) left them: the same
//! tables, written in that tool's DDL style, plus Alembic's `alembic_version`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
};

use rusqlite::Connection;
use support::{V5_INDEX, copy_migrations, pg::*, sqlite_url, text, xtask_command};
use tempfile::TempDir;

/// The schema of V4 as SQLAlchemy and Alembic write it: table-level named
/// constraints, other index names, and Alembic's version table.
const ALEMBIC_V4: &str = "
CREATE TABLE alembic_version (
\tversion_num VARCHAR(32) NOT NULL,
\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('4b1f0c2d9e7a');
CREATE TABLE secrets (
\tid INTEGER NOT NULL,
\tname TEXT NOT NULL,
\tvalue TEXT NOT NULL,
\tcreated_at TEXT NOT NULL,
\texpires_at TEXT,
\tPRIMARY KEY (id),
\tCONSTRAINT uq_secrets_name UNIQUE (name),
\tCONSTRAINT ck_secrets_name_length CHECK (length(name) BETWEEN 1 AND 128),
\tCONSTRAINT ck_secrets_value_size CHECK (length(CAST(value AS BLOB)) BETWEEN 1 AND 65536),
\tCONSTRAINT ck_secrets_expiry CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX ix_secrets_expires_at ON secrets (expires_at);
CREATE TABLE secret_access_log (
\tid INTEGER NOT NULL,
\tsecret_id INTEGER NOT NULL,
\taction TEXT NOT NULL,
\taccessed_at TEXT NOT NULL,
\tPRIMARY KEY (id),
\tCONSTRAINT ck_secret_access_log_action CHECK (action IN ('read')),
\tFOREIGN KEY(secret_id) REFERENCES secrets (id) ON DELETE CASCADE
);
CREATE INDEX ix_secret_access_log_secret_id ON secret_access_log (secret_id);
INSERT INTO secrets (name, value, created_at) VALUES ('alpha', 'one', '2026-01-01T00:00:00Z'),
                                                     ('beta', 'two', '2026-01-02T00:00:00Z');
INSERT INTO secret_access_log (secret_id, action, accessed_at) VALUES (1, 'read', '2026-01-03T00:00:00Z');
";

/// A temp folder with migrations V1–V4 and a database built by `sql`.
struct Old {
    dir: TempDir,
    db: PathBuf,
    migrations: PathBuf,
}

impl Old {
    fn new(sql: &str) -> Old {
        let dir = TempDir::new().unwrap();
        let migrations = dir.path().join("migrations");
        copy_migrations(&migrations, None);
        let db = dir.path().join("secrets.db");
        // Alembic's SQLite: the default rollback journal, not WAL.
        Connection::open(&db).unwrap().execute_batch(sql).unwrap();
        Old {
            dir,
            db,
            migrations,
        }
    }

    fn xtask(&self, args: &[&str]) -> Output {
        let url = sqlite_url(&self.db);
        xtask_command()
            .args(args)
            .args(["--database-url", &url])
            .args(["--migrations", self.migrations.to_str().unwrap()])
            .output()
            .unwrap()
    }

    fn history(&self) -> Vec<(i32, String, String)> {
        history(&self.db)
    }

    fn backups(&self) -> Vec<PathBuf> {
        support::backups_in(self.dir.path())
    }
}

/// (version, name, checksum) of the refinery history; empty without one.
fn history(db: &Path) -> Vec<(i32, String, String)> {
    let conn = Connection::open(db).unwrap();
    let Ok(mut stmt) = conn
        .prepare("SELECT version, name, checksum FROM refinery_schema_history ORDER BY version")
    else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The history `cargo xtask migrate` itself writes for V1–V4.
fn history_written_by_migrate() -> Vec<(i32, String, String)> {
    let dir = TempDir::new().unwrap();
    let migrations = dir.path().join("migrations");
    copy_migrations(&migrations, None);
    let db = dir.path().join("fresh.db");
    let out = xtask_command()
        .args(["migrate", "--create", "--database-url", &sqlite_url(&db)])
        .args(["--migrations", migrations.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    history(&db)
}

#[test]
fn an_alembic_database_is_adopted_then_migrated_like_any_other() {
    let old = Old::new(ALEMBIC_V4);
    let out = old.xtask(&["migrate", "adopt"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("ignored: alembic_version — table of another tool (Alembic)"),
        "{log}"
    );
    assert!(
        log.contains("the live schema matches V4's in every table's columns"),
        "{log}"
    );
    assert!(log.contains("adopted sqlite:"), "{log}");
    // The rows are refinery's own: `migrate` would have written the same.
    assert_eq!(old.history(), history_written_by_migrate());
    assert_eq!(old.backups().len(), 1, "{log}");
    let journal = fs::read_to_string(old.dir.path().join("migrate.journal")).unwrap();
    assert!(
        journal.contains("migrate adopt") && journal.contains("record the history"),
        "{journal}"
    );

    let status = old.xtask(&["migrate", "status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("up to date"), "{}", text(&status));

    fs::write(old.migrations.join("V5__index_created_at.sql"), V5_INDEX).unwrap();
    let out = old.xtask(&["migrate"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("1 migration(s) applied (V5__index_created_at)"),
        "{log}"
    );
    let versions: Vec<i32> = old.history().into_iter().map(|(v, _, _)| v).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    let conn = Connection::open(&old.db).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM secrets"), 2);
    assert_eq!(count("SELECT count(*) FROM secret_access_log"), 1);
    assert_eq!(count("SELECT count(*) FROM alembic_version"), 1);
}

#[test]
fn a_drifted_column_is_refused_with_the_difference_and_the_file_untouched() {
    let drifted = ALEMBIC_V4.replace("\tvalue TEXT NOT NULL,", "\tvalue BLOB,");
    let old = Old::new(&drifted);
    let before = fs::read(&old.db).unwrap();
    for args in [
        &["migrate", "adopt", "--version", "4"][..],
        &["migrate", "adopt"],
    ] {
        let out = old.xtask(args);
        let log = text(&out);
        assert!(!out.status.success(), "{log}");
        assert!(
            log.contains("secrets.value: type BLOB on the database, TEXT on V4"),
            "{log}"
        );
        assert!(
            log.contains("secrets.value: nullable on the database, NOT NULL on V4"),
            "{log}"
        );
        assert!(log.contains("nothing was changed"), "{log}");
    }
    assert!(
        text(&old.xtask(&["migrate", "adopt"])).contains("the closest is V4, with 2 difference(s)")
    );
    assert_eq!(fs::read(&old.db).unwrap(), before, "the database changed");
    assert_eq!(old.history(), []);
    assert_eq!(old.backups(), Vec::<PathBuf>::new());
}

#[test]
fn a_table_the_migrations_do_not_know_is_a_difference_not_ignored() {
    let old = Old::new(&format!(
        "{ALEMBIC_V4}\nCREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
    ));
    let before = fs::read(&old.db).unwrap();
    let out = old.xtask(&["migrate", "adopt", "--version", "4"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("table notes: on the database only"), "{log}");
    assert!(!log.contains("ignored: notes"), "{log}");
    assert_eq!(fs::read(&old.db).unwrap(), before);
}

#[test]
fn an_index_the_migrations_do_not_make_is_a_difference() {
    let old = Old::new(&format!(
        "{ALEMBIC_V4}\nCREATE INDEX ix_secrets_lower_name ON secrets (lower(name));"
    ));
    let out = old.xtask(&["migrate", "adopt", "--version", "4"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("secrets: index [\"<expression>\"] on the database only"),
        "{log}"
    );
}

#[test]
fn a_view_or_trigger_the_migrations_do_not_make_is_a_difference() {
    let old = Old::new(&format!(
        "{ALEMBIC_V4}\nCREATE VIEW live_secrets AS SELECT name FROM secrets WHERE expires_at IS NULL;\n\
         CREATE TRIGGER secrets_touch AFTER UPDATE ON secrets BEGIN SELECT 1; END;"
    ));
    let out = old.xtask(&["migrate", "adopt"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("the closest is V4, with 2 difference(s)"),
        "{log}"
    );
    assert!(
        log.contains("view live_secrets: on the database only"),
        "{log}"
    );
    assert!(
        log.contains("trigger secrets_touch: on the database only"),
        "{log}"
    );
}

#[test]
fn the_wrong_version_is_refused_naming_what_differs() {
    let old = Old::new(ALEMBIC_V4);
    let out = old.xtask(&["migrate", "adopt", "--version", "3"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("table secret_access_log: on the database only"),
        "{log}"
    );
    let out = old.xtask(&["migrate", "adopt", "--version", "9"]);
    assert!(
        text(&out).contains("--version 9: there is no migration V9__*.sql"),
        "{}",
        text(&out)
    );
    assert_eq!(old.history(), []);
}

#[test]
fn a_database_failing_its_integrity_checks_is_not_adopted() {
    // Alembic's SQLite ran without foreign key enforcement: a log row can
    // point at a secret that is gone.
    let old = Old::new(&format!(
        "PRAGMA foreign_keys = OFF;{ALEMBIC_V4}\nINSERT INTO secret_access_log (secret_id, action, accessed_at) \
         VALUES (99, 'read', '2026-01-04T00:00:00Z');"
    ));
    let before = fs::read(&old.db).unwrap();
    let out = old.xtask(&["migrate", "adopt"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("[3/7] prove the schema ... "), "{log}");
    assert!(
        log.contains("fails its integrity checks: secret_access_log row 2 references a missing row in secrets"),
        "{log}"
    );
    assert_eq!(fs::read(&old.db).unwrap(), before);
    assert_eq!(old.backups(), Vec::<PathBuf>::new());
}

#[test]
fn create_and_job_are_refused_with_adopt() {
    let old = Old::new(ALEMBIC_V4);
    let out = old.xtask(&["migrate", "--create", "adopt"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("--create and --job do not go with `migrate adopt`"),
        "{log}"
    );
    assert_eq!(old.history(), []);
}

#[test]
fn the_checks_tell_v2_from_v3() {
    // V3 only adds CHECK constraints: without them V2's schema is the match.
    let v2 = "CREATE TABLE secrets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, value TEXT NOT NULL, \
              created_at TEXT NOT NULL, expires_at TEXT);
              CREATE INDEX ix_secrets_expires_at ON secrets (expires_at);";
    let old = Old::new(v2);
    let out = old.xtask(&["migrate", "adopt", "--dry-run"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("record    V1__create_secrets, V2__add_secret_expiry as applied"),
        "{log}"
    );
    let out = old.xtask(&["migrate", "adopt", "--version", "3"]);
    assert!(
        text(&out).contains("secrets: check \"length(name) between 1 and 128\" on V3 only"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_empty_file_is_refused_saying_migrate_will_create_the_schema() {
    let old = Old::new("");
    assert_eq!(fs::metadata(&old.db).unwrap().len(), 0);
    for args in [
        &["migrate", "adopt", "--version", "4"][..],
        &["migrate", "adopt"],
    ] {
        let out = old.xtask(args);
        let log = text(&out);
        assert!(!out.status.success(), "{log}");
        assert!(log.contains("it is empty"), "{log}");
        assert!(
            log.contains("`cargo xtask migrate` will simply create the schema"),
            "{log}"
        );
        assert!(log.contains("table secrets: on V4 only"), "{log}");
        assert!(log.contains("table secret_access_log: on V4 only"), "{log}");
    }
    assert_eq!(fs::metadata(&old.db).unwrap().len(), 0);
}

#[test]
fn a_dry_run_prints_what_would_be_recorded_and_changes_nothing() {
    let old = Old::new(ALEMBIC_V4);
    let before = fs::read(&old.db).unwrap();
    let out = old.xtask(&["migrate", "adopt", "--dry-run"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("dry run: adopt would"), "{log}");
    assert!(
        log.contains(
            "record    V1__create_secrets, V2__add_secret_expiry, V3__secrets_check_constraints, \
             V4__create_secret_access_log as applied (their SQL not run): schema version 4"
        ),
        "{log}"
    );
    assert!(log.contains("dry run: nothing was changed"), "{log}");
    assert_eq!(fs::read(&old.db).unwrap(), before);
    let left: Vec<String> = fs::read_dir(old.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["migrations", "secrets.db"], "a dry run left files");
}

#[test]
fn a_second_adopt_is_refused_pointing_at_status() {
    let old = Old::new(ALEMBIC_V4);
    assert!(old.xtask(&["migrate", "adopt"]).status.success());
    let recorded = old.history();
    let out = old.xtask(&["migrate", "adopt"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(
            "already has a migration history (4 migration(s), up to V4__create_secret_access_log)"
        ),
        "{log}"
    );
    assert!(log.contains("cargo xtask migrate status"), "{log}");
    assert_eq!(old.history(), recorded);
    assert_eq!(old.backups().len(), 1);
}

/// V4 on Postgres as Alembic would have built it from the same models.
const ALEMBIC_V4_POSTGRES: &str = "
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version VALUES ('4b1f0c2d9e7a');
CREATE TABLE secrets (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id),
    CONSTRAINT uq_secrets_name UNIQUE (name),
    CONSTRAINT ck_name CHECK (char_length(name) BETWEEN 1 AND 128),
    CONSTRAINT ck_value CHECK (octet_length(value) BETWEEN 1 AND 65536),
    CONSTRAINT ck_expiry CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX ix_secrets_expires_at ON secrets (expires_at);
CREATE TABLE secret_access_log (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY NOT NULL,
    secret_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    accessed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_action CHECK (action IN ('read')),
    FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE
);
CREATE INDEX ix_secret_access_log_secret_id ON secret_access_log (secret_id);
INSERT INTO secrets (name, value, created_at) VALUES ('alpha', 'one', '2026-01-01T00:00:00Z');
";

#[test]
fn postgres_an_alembic_database_is_adopted_and_a_drifted_one_refused() {
    let Some(server) = server("postgres_an_alembic_database_is_adopted_and_a_drifted_one_refused")
    else {
        return;
    };
    let drifted = PgSite::empty(&server);
    drifted
        .db
        .client()
        .batch_execute(
            &ALEMBIC_V4_POSTGRES.replace("name TEXT NOT NULL,", "name VARCHAR(200) NOT NULL,"),
        )
        .unwrap();
    let out = drifted.xtask(&["migrate", "adopt"], &[]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("secrets.name: type CHARACTER VARYING(200) on the database, TEXT on V4"),
        "{log}"
    );
    assert_eq!(drifted.db.versions(), Vec::<i32>::new());
    assert_eq!(drifted.backups(), Vec::<PathBuf>::new());

    let site = PgSite::empty(&server);
    site.db.client().batch_execute(ALEMBIC_V4_POSTGRES).unwrap();
    let out = site.xtask(&["migrate", "adopt", "--dry-run"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("dry run: nothing was changed"));
    assert_eq!(site.db.versions(), Vec::<i32>::new());
    assert_eq!(site.backups(), Vec::<PathBuf>::new());
    let out = site.xtask(&["migrate", "adopt"], &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("ignored: alembic_version"), "{log}");
    assert_eq!(site.db.versions(), [1, 2, 3, 4]);
    assert_eq!(site.backups().len(), 1, "{log}");
    let status = site.xtask(&["migrate", "status"], &[]);
    assert!(status.status.success(), "{}", text(&status));
    // An expand migration, which the rolling-deploy job applies without a marker.
    site.add_migration(
        "V5__secret_note.sql",
        "ALTER TABLE secrets ADD COLUMN note TEXT;\n",
    );
    let out = site.xtask(&["migrate", "--job"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.db.versions(), [1, 2, 3, 4, 5]);
    assert_eq!(site.db.count("SELECT count(*) FROM secrets"), 1);
}
