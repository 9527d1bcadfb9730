//! `cargo xtask migrate adopt`, run as the real binary on real databases as
//! the previous stack (Python, SQLAlchemy and Alembic) left them: the same
//! tables, written in that tool's DDL style, plus Alembic's `alembic_version`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
};

use rusqlite::Connection;
use support::{NEXT_INDEX, copy_migrations, mig, mig_name, pg::*, sqlite_url, text, xtask_command};
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

/// The release whose schema the Alembic databases below have: the fixtures
/// hold its migrations (V1–V4) and nothing the repository shipped later, so
/// what is adopted and what is pending after it stay the same as it grows.
const ALEMBIC_RELEASE: u32 = 4;

/// A Postgres site holding only the migrations of [`ALEMBIC_RELEASE`]
/// (twins included) and an empty database.
fn alembic_pg_site(server: &str) -> PgSite {
    let site = PgSite::empty(server);
    for dir in [site.migrations.clone(), site.migrations.join("postgres")] {
        for file in test_support::migration_files(&dir) {
            if test_support::migration_version(&file).is_some_and(|v| v > ALEMBIC_RELEASE) {
                fs::remove_file(file).unwrap();
            }
        }
    }
    site
}

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
        copy_migrations(&migrations, Some(ALEMBIC_RELEASE as usize));
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
    copy_migrations(&migrations, Some(ALEMBIC_RELEASE as usize));
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

    let next = ALEMBIC_RELEASE + 1;
    fs::write(
        old.migrations.join(mig(next, "index_created_at")),
        NEXT_INDEX,
    )
    .unwrap();
    let out = old.xtask(&["migrate"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "1 migration(s) applied ({})",
            mig_name(next, "index_created_at")
        )),
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
    let drifted = alembic_pg_site(&server);
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

    let site = alembic_pg_site(&server);
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
        &mig(ALEMBIC_RELEASE + 1, "secret_note"),
        "ALTER TABLE secrets ADD COLUMN note TEXT;\n",
    );
    let out = site.xtask(&["migrate", "--job"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.db.versions(), [1, 2, 3, 4, 5]);
    assert_eq!(site.db.count("SELECT count(*) FROM secrets"), 1);
}

/// Runs adopt --version 4 on ALEMBIC_V4 changed by `edits` (each applied to
/// its first occurrence: the `secrets` table comes first); asserts it was
/// refused with a difference line mentioning every word of `expected`.
fn refused_naming(edits: &[(&str, &str)], expected: &[&str]) {
    // Without rows: with `PRIMARY KEY DESC` an id is no rowid, so not assigned.
    let rows_at = ALEMBIC_V4.find("INSERT INTO secrets").unwrap();
    let mut sql = ALEMBIC_V4[..rows_at].to_owned();
    for (from, to) in edits {
        assert!(sql.contains(from), "{from}");
        sql = sql.replacen(from, to, 1);
    }
    let old = Old::new(&sql);
    let before = fs::read(&old.db).unwrap();
    let out = old.xtask(&["migrate", "adopt", "--version", "4"]);
    let log = text(&out);
    assert!(!out.status.success(), "{edits:?} was proven equal: {log}");
    assert!(log.contains("nothing was changed"), "{log}");
    assert!(
        log.lines().any(|l| l.trim_start().starts_with("secret")
            && expected
                .iter()
                .all(|w| l.to_uppercase().contains(&w.to_uppercase()))),
        "{edits:?}: no difference line names {expected:?}: {log}"
    );
    assert_eq!(fs::read(&old.db).unwrap(), before);
    assert_eq!(old.history(), []);
}

/// Text replacements: (what, by what).
type Edits<'a> = &'a [(&'a str, &'a str)];

#[test]
fn sqlite_clauses_that_change_behaviour_are_differences() {
    let cases: &[(Edits, &[&str])] = &[
        (
            &[(
                "\tname TEXT NOT NULL,",
                "\tname TEXT NOT NULL COLLATE NOCASE,",
            )],
            &["name", "COLLATE NOCASE"],
        ),
        (
            &[("UNIQUE (name),", "UNIQUE (name) ON CONFLICT REPLACE,")],
            &["ON CONFLICT REPLACE"],
        ),
        (
            &[(
                "\tvalue TEXT NOT NULL,",
                "\tvalue TEXT NOT NULL ON CONFLICT IGNORE,",
            )],
            &["value", "ON CONFLICT IGNORE"],
        ),
        (
            &[
                ("\tid INTEGER NOT NULL,", "\tid INTEGER PRIMARY KEY DESC,"),
                ("\tPRIMARY KEY (id),\n", ""),
            ],
            &["id", "DESC"],
        ),
        (
            &[
                (
                    "\tid INTEGER NOT NULL,",
                    "\tid INTEGER PRIMARY KEY AUTOINCREMENT,",
                ),
                ("\tPRIMARY KEY (id),\n", ""),
            ],
            &["id", "AUTOINCREMENT"],
        ),
        (
            &[("created_at)\n);", "created_at)\n) STRICT;")],
            &["STRICT"],
        ),
        (
            &[("created_at)\n);", "created_at)\n) WITHOUT ROWID;")],
            &["WITHOUT ROWID"],
        ),
        (
            &[(
                "\tname TEXT NOT NULL,",
                "\tname TEXT NOT NULL,\n\tname_lower TEXT GENERATED ALWAYS AS (lower(name)) VIRTUAL,",
            )],
            &["name_lower"],
        ),
        (
            &[(
                "\tname TEXT NOT NULL,",
                "\tname TEXT NOT NULL,\n\tname_lower TEXT GENERATED ALWAYS AS (lower(name)) STORED,",
            )],
            &["name_lower"],
        ),
        (
            &[("ON DELETE CASCADE", "ON DELETE CASCADE ON UPDATE CASCADE")],
            &["ON UPDATE CASCADE"],
        ),
        (
            &[(
                "ON DELETE CASCADE",
                "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
            )],
            &["DEFERRABLE"],
        ),
        (
            &[("ON secrets (expires_at);", "ON secrets (expires_at DESC);")],
            &["expires_at", "DESC"],
        ),
        (
            &[(
                "ON secrets (expires_at);",
                "ON secrets (expires_at COLLATE NOCASE);",
            )],
            &["expires_at", "COLLATE NOCASE"],
        ),
    ];
    for (edits, expected) in cases {
        refused_naming(edits, expected);
    }
}

#[test]
fn a_partial_unique_index_is_not_a_unique_key() {
    refused_naming(
        &[
            ("\tCONSTRAINT uq_secrets_name UNIQUE (name),\n", ""),
            (
                "CREATE INDEX ix_secrets_expires_at",
                "CREATE UNIQUE INDEX u ON secrets(name) WHERE id < 0;\nCREATE INDEX ix_secrets_expires_at",
            ),
        ],
        &["WHERE", "id < 0"],
    );
}

#[test]
fn without_a_match_the_differences_from_the_newest_version_are_printed_too() {
    let old = Old::new(&ALEMBIC_V4.replace("ON DELETE CASCADE", "ON DELETE SET NULL"));
    let out = old.xtask(&["migrate", "adopt"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("the closest is V3"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("ON DELETE SET NULL") && l.contains("on the database only")),
        "the real difference from V4 is hidden: {log}"
    );
}

#[test]
fn a_history_table_of_another_shape_is_named_with_the_fix() {
    let old = Old::new(&format!(
        "{ALEMBIC_V4}\nCREATE TABLE refinery_schema_history (id INTEGER PRIMARY KEY, note TEXT);"
    ));
    let before = fs::read(&old.db).unwrap();
    let out = old.xtask(&["migrate", "adopt"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("refinery_schema_history") && log.contains("not refinery's"),
        "{log}"
    );
    assert_eq!(fs::read(&old.db).unwrap(), before);
}

#[test]
fn a_version_that_is_no_migration_is_a_usage_error() {
    let old = Old::new(ALEMBIC_V4);
    for n in ["0", "9", "-1"] {
        let out = old.xtask(&["migrate", "adopt", &format!("--version={n}")]);
        assert_eq!(out.status.code(), Some(2), "--version {n}: {}", text(&out));
    }
    assert_eq!(old.history(), []);
}

#[test]
fn a_path_with_a_newline_and_quotes_is_printed_quoted() {
    let old = Old::new(ALEMBIC_V4);
    let odd = old.dir.path().join("odd\ndir 'q\"");
    fs::create_dir(&odd).unwrap();
    let db = odd.join("secrets.db");
    fs::rename(&old.db, &db).unwrap();
    let out = xtask_command()
        .args(["migrate", "adopt", "--database-url", &sqlite_url(&db)])
        .args(["--migrations", old.migrations.to_str().unwrap()])
        .output()
        .unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("dir '")),
        "a path was printed raw, its newline splitting the line: {log}"
    );
    assert_eq!(history(&db).len(), 4);
}

#[test]
fn the_lock_is_the_real_file_s_whichever_path_names_it() {
    let old = Old::new(ALEMBIC_V4);
    let real = old.dir.path().join("real");
    let link = old.dir.path().join("link");
    fs::create_dir(&real).unwrap();
    fs::create_dir(&link).unwrap();
    fs::rename(&old.db, real.join("db.sqlite")).unwrap();
    std::os::unix::fs::symlink("../real/db.sqlite", link.join("db.sqlite")).unwrap();
    // Another run holds the lock of the real file (as `migrate` takes it).
    let lock = fs::File::create(real.join("db.sqlite.migrate.lock")).unwrap();
    lock.try_lock().unwrap();
    fs::write(
        real.join("db.sqlite.migrate.lock"),
        "migrate by pid 1 on a test host",
    )
    .unwrap();
    let out = xtask_command()
        .args([
            "migrate",
            "adopt",
            "--database-url",
            &sqlite_url(&link.join("db.sqlite")),
        ])
        .args(["--migrations", old.migrations.to_str().unwrap()])
        .output()
        .unwrap();
    let log = text(&out);
    assert!(
        !out.status.success(),
        "took its own lock beside the symlink: {log}"
    );
    assert!(log.contains("another run holds the lock"), "{log}");
    assert_eq!(history(&real.join("db.sqlite")), []);
    drop(lock);
}

/// A tmpfs too small for the backup, mounted over `path` (needs root).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: PathBuf, kib: u64) -> SmallDisk {
        fs::create_dir_all(&path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root: {}",
            text(&out)
        );
        SmallDisk(path)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_refusal_at_the_backup_leaves_a_rollback_journal_database_byte_identical() {
    let old = Old::new(ALEMBIC_V4);
    let disk = SmallDisk::mount(old.dir.path().join("small"), 256);
    let before = fs::read(&old.db).unwrap();
    let url = sqlite_url(&old.db);
    let out = xtask_command()
        .args(["migrate", "adopt", "--database-url", &url])
        .args(["--migrations", old.migrations.to_str().unwrap()])
        .env("MIGRATE_BACKUP_DIR", &disk.0)
        .output()
        .unwrap();
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("[5/7] back up"), "{log}");
    assert_eq!(
        fs::read(&old.db).unwrap(),
        before,
        "the database file changed: {log}"
    );
    let mode: String = Connection::open(&old.db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
}

/// Between the proof and the history's write, another client changes the
/// schema: nothing may be recorded on a schema that was not proven.
#[cfg(feature = "failpoints")]
#[test]
fn a_schema_changed_after_the_proof_is_not_adopted() {
    use std::io::Write;
    let old = Old::new(ALEMBIC_V4);
    let mut child = xtask_command()
        .args(["migrate", "adopt", "--database-url", &sqlite_url(&old.db)])
        .args(["--migrations", old.migrations.to_str().unwrap()])
        .env("XTASK_FAILPOINT", "adopt-before-record=wait")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = support::stderr_lines(&mut child);
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
        if line.contains("failpoint adopt-before-record reached") {
            break;
        }
    }
    Connection::open(&old.db)
        .unwrap()
        .execute_batch("ALTER TABLE secrets ADD COLUMN note TEXT")
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let rest: Vec<String> = rx.iter().collect();
    let log = format!("{stdout}{}", rest.join("\n"));
    assert!(!status.success(), "{log}");
    assert!(log.contains("secrets.note: on the database only"), "{log}");
    assert!(!log.contains("restore the backup"), "{log}");
    assert_eq!(
        old.history(),
        [],
        "a history was committed on an unproven schema: {log}"
    );
}

/// ALEMBIC_V4_POSTGRES, then `change`: adopt --dry-run refuses with a
/// difference line mentioning `expected`, and records nothing.
fn postgres_refused_naming(server: &str, change: &str, expected: &str) {
    let site = alembic_pg_site(server);
    let mut client = site.db.client();
    client.batch_execute(ALEMBIC_V4_POSTGRES).unwrap();
    client.batch_execute(change).unwrap();
    let out = site.xtask(&["migrate", "adopt", "--version", "4", "--dry-run"], &[]);
    let log = text(&out);
    assert!(!out.status.success(), "{change}: proven equal: {log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("  ") && l.contains(expected)),
        "{change}: no difference line names {expected:?}: {log}"
    );
    assert_eq!(site.db.versions(), Vec::<i32>::new());
}

#[test]
fn postgres_what_the_server_renders_differently_is_a_difference() {
    let Some(server) = server("postgres_what_the_server_renders_differently_is_a_difference")
    else {
        return;
    };
    let cases = [
        (
            "ALTER TABLE secrets ENABLE ROW LEVEL SECURITY",
            "row level security",
        ),
        (
            "CREATE RULE no_delete AS ON DELETE TO secrets DO INSTEAD NOTHING",
            "rule no_delete",
        ),
        (
            "CREATE MATERIALIZED VIEW names AS SELECT name FROM secrets",
            "materialized view names",
        ),
        (
            "ALTER TABLE secrets ALTER COLUMN name TYPE TEXT COLLATE \"C\"",
            "COLLATE",
        ),
        (
            "ALTER TABLE secret_access_log ALTER COLUMN id SET GENERATED ALWAYS",
            "ALWAYS",
        ),
        (
            "ALTER TABLE secrets ALTER COLUMN value SET STORAGE EXTERNAL",
            "STORAGE",
        ),
        (
            "DROP INDEX ix_secrets_expires_at; CREATE INDEX ix ON secrets USING hash (expires_at)",
            "hash",
        ),
        (
            "DROP INDEX ix_secrets_expires_at; CREATE INDEX ix ON secrets (expires_at DESC)",
            "DESC",
        ),
        (
            "CREATE SCHEMA extra; CREATE TABLE extra.notes (id int)",
            "extra.notes",
        ),
        (
            "CREATE TABLE parted (id int) PARTITION BY RANGE (id); \
             CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (10)",
            "table parted_low: on the database only",
        ),
        (
            "ALTER TABLE secrets DROP CONSTRAINT ck_name; \
             ALTER TABLE secrets ADD CONSTRAINT ck_name CHECK (char_length(name) BETWEEN 1 AND 128) NOT VALID",
            "NOT VALID",
        ),
        (
            "ALTER TABLE secret_access_log DROP CONSTRAINT secret_access_log_secret_id_fkey; \
             ALTER TABLE secret_access_log ADD FOREIGN KEY (secret_id) REFERENCES secrets (id) \
             ON DELETE CASCADE ON UPDATE CASCADE",
            "ON UPDATE CASCADE",
        ),
        (
            "ALTER TABLE secrets DROP CONSTRAINT uq_secrets_name; \
             CREATE UNIQUE INDEX u ON secrets (name) WHERE id < 0",
            "WHERE",
        ),
    ];
    for (change, expected) in cases {
        postgres_refused_naming(&server, change, expected);
    }
}

#[test]
fn postgres_tables_on_a_search_path_other_than_public_are_read_there() {
    let Some(server) = server("postgres_tables_on_a_search_path_other_than_public_are_read_there")
    else {
        return;
    };
    let site = alembic_pg_site(&server);
    let name = &site.db.name;
    let mut client = site.db.client();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA app; ALTER DATABASE \"{name}\" SET search_path = app; SET search_path = app;"
        ))
        .unwrap();
    client.batch_execute(ALEMBIC_V4_POSTGRES).unwrap();
    let out = site.xtask(&["migrate", "adopt", "--dry-run"], &[]);
    let log = text(&out);
    assert!(!log.contains("empty"), "{log}");
    assert!(out.status.success(), "{log}");
    assert!(log.contains("the live schema matches V4's"), "{log}");
}

/// The scratch databases of the run with this pid that exist on the server.
#[cfg(feature = "failpoints")]
fn scratch_databases_of(site: &PgSite, pid: u32) -> Vec<String> {
    site.db
        .client()
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            &[&format!("xtask\\_adopt\\_{pid}\\_%")],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// adopt paused once its scratch database exists (the proof under way).
#[cfg(feature = "failpoints")]
fn adopt_paused_in_the_proof(site: &PgSite) -> std::process::Child {
    let mut child = site
        .command(&["migrate", "adopt", "--dry-run"], &[])
        .env("XTASK_FAILPOINT", "adopt-scratch-created=pause")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = support::stderr_lines(&mut child);
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
        if line.contains("failpoint adopt-scratch-created reached") {
            break;
        }
    }
    child
}

#[cfg(feature = "failpoints")]
#[test]
fn postgres_a_stopped_or_killed_proof_leaves_no_scratch_database() {
    let Some(server) = server("postgres_a_stopped_or_killed_proof_leaves_no_scratch_database")
    else {
        return;
    };
    let site = alembic_pg_site(&server);
    site.db.client().batch_execute(ALEMBIC_V4_POSTGRES).unwrap();

    let mut stopped = adopt_paused_in_the_proof(&site);
    assert_eq!(scratch_databases_of(&site, stopped.id()).len(), 1);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &stopped.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    stopped.wait().unwrap();
    assert_eq!(
        scratch_databases_of(&site, stopped.id()),
        Vec::<String>::new(),
        "SIGTERM leaked it"
    );

    let mut killed = adopt_paused_in_the_proof(&site);
    killed.kill().unwrap(); // SIGKILL: nothing runs; the next run cleans up
    killed.wait().unwrap();
    let left = scratch_databases_of(&site, killed.id());
    assert_eq!(left.len(), 1);
    let out = site.xtask(&["migrate", "adopt", "--dry-run"], &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "recovered: dropped the scratch database {}",
            left[0]
        )),
        "{log}"
    );
    assert_eq!(
        scratch_databases_of(&site, killed.id()),
        Vec::<String>::new()
    );
}

#[test]
fn postgres_a_search_path_set_in_the_url_is_the_scratch_database_s_too() {
    let Some(server) =
        server("postgres_a_search_path_set_in_the_url_is_the_scratch_database_s_too")
    else {
        return;
    };
    let site = alembic_pg_site(&server);
    let mut client = site.db.client();
    client
        .batch_execute("CREATE SCHEMA app; SET search_path = app;")
        .unwrap();
    client.batch_execute(ALEMBIC_V4_POSTGRES).unwrap();
    let url = format!("{}?options=-csearch_path%3Dapp", site.db.url);
    let out = site.xtask(
        &["migrate", "adopt", "--dry-run"],
        &[("DATABASE_URL", &url)],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("the live schema matches V4's"), "{log}");

    let url = format!("{}?options=-csearch_path%3Dnowhere", site.db.url);
    let out = site.xtask(
        &["migrate", "adopt", "--dry-run"],
        &[("DATABASE_URL", &url)],
    );
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("search_path") && log.contains("names no schema"),
        "{log}"
    );
}

/// adopt started with `cmd`, waiting at `adopt-before-record` (its lock
/// held, its proof done) until a line is written to its stdin.
#[cfg(feature = "failpoints")]
fn waiting_before_the_record(
    mut cmd: std::process::Command,
) -> (std::process::Child, std::thread::JoinHandle<Vec<String>>) {
    let mut child = cmd
        .env("XTASK_FAILPOINT", "adopt-before-record=wait")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = support::stderr_lines(&mut child);
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
        if line.contains("failpoint adopt-before-record reached") {
            break;
        }
    }
    let rest = std::thread::spawn(move || rx.iter().collect());
    (child, rest)
}

#[cfg(feature = "failpoints")]
#[test]
fn two_runs_through_a_symlink_and_its_target_do_not_both_adopt() {
    use std::io::Write;
    let old = Old::new(ALEMBIC_V4);
    let real = old.dir.path().join("real");
    let link = old.dir.path().join("link");
    fs::create_dir(&real).unwrap();
    fs::create_dir(&link).unwrap();
    fs::rename(&old.db, real.join("db.sqlite")).unwrap();
    std::os::unix::fs::symlink("../real/db.sqlite", link.join("db.sqlite")).unwrap();
    let run = |db: &Path| {
        let mut cmd = xtask_command();
        cmd.args(["migrate", "adopt", "--database-url", &sqlite_url(db)])
            .args(["--migrations", old.migrations.to_str().unwrap()]);
        cmd
    };
    let (mut first, _) = waiting_before_the_record(run(&real.join("db.sqlite")));
    let second = run(&link.join("db.sqlite")).output().unwrap();
    let log = text(&second);
    assert!(!second.status.success(), "both runs went on: {log}");
    assert!(log.contains("another run holds the lock"), "{log}");
    first.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(first.wait().unwrap().success());
    assert_eq!(history(&real.join("db.sqlite")).len(), 4);
}

#[cfg(feature = "failpoints")]
#[test]
fn postgres_a_schema_changed_after_the_proof_is_not_adopted() {
    use std::io::Write;
    let Some(server) = server("postgres_a_schema_changed_after_the_proof_is_not_adopted") else {
        return;
    };
    let site = alembic_pg_site(&server);
    site.db.client().batch_execute(ALEMBIC_V4_POSTGRES).unwrap();
    let (mut child, stderr) = waiting_before_the_record(site.command(&["migrate", "adopt"], &[]));
    site.db
        .client()
        .batch_execute("ALTER TABLE secrets ADD COLUMN note TEXT")
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(!child.wait().unwrap().success());
    let log = stderr.join().unwrap().join("\n");
    assert!(log.contains("secrets.note: on the database only"), "{log}");
    assert!(log.contains("nothing was recorded"), "{log}");
    assert_eq!(
        site.db.versions(),
        Vec::<i32>::new(),
        "a history was committed on an unproven schema"
    );
}
