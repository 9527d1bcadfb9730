use super::{rules::RULES, *};

fn file(sql: &str) -> MigrationFile {
    MigrationFile {
        version: 9,
        name: "x".into(),
        path: "V9__x.sql".into(),
        sql: sql.into(),
    }
}

fn rules_as(engine: Engine, sql: &str) -> Vec<&'static str> {
    let file = file(sql);
    let marked = contract_reason(&file).is_some();
    lint_file(&file, engine, marked)
        .iter()
        .map(|f| f.rule)
        .collect()
}

fn rules(sql: &str) -> Vec<&'static str> {
    rules_as(Engine::Sqlite, sql)
}

#[test]
fn docs_carry_the_rule_table() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/migrations.md"
    ))
    .unwrap_or_default();
    assert!(
        docs.contains(&rules_markdown()),
        "docs/migrations.md is out of date: paste the output of `cargo xtask migrations rules` into it"
    );
}

#[test]
fn every_rule_the_lint_reports_is_in_the_table() {
    let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    let source = [include_str!("classify.rs"), include_str!("mod.rs")].concat();
    for quoted in source.split("Class::Rule(\"").skip(1) {
        let id = quoted.split('"').next().unwrap_or_default();
        assert!(ids.contains(&id), "{id} is not in RULES");
    }
}

#[test]
fn expand_changes_pass_on_both_engines() {
    for sql in [
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
        "ALTER TABLE t ADD COLUMN c TEXT;",
        "ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT 'x';",
        "CREATE VIEW v AS SELECT 1; INSERT INTO t (c) VALUES ('x');",
        "CREATE TABLE u (id INTEGER PRIMARY KEY); UPDATE u SET id = 2; DELETE FROM u;",
        "SELECT count(*), lower('A') FROM t;",
        "CREATE TABLE u (id INTEGER PRIMARY KEY, x TEXT); CREATE INDEX u_x ON u (x);",
    ] {
        assert_eq!(rules_as(Engine::Sqlite, sql), Vec::<&str>::new(), "{sql}");
        assert_eq!(rules_as(Engine::Postgres, sql), Vec::<&str>::new(), "{sql}");
    }
    // SQLite has no CONCURRENTLY and deploys in a window.
    assert_eq!(rules("CREATE INDEX i ON t (x);"), Vec::<&str>::new());
    for sql in [
        "ALTER TABLE t ADD COLUMN seen TIMESTAMPTZ DEFAULT now();",
        "ALTER TABLE t ADD COLUMN n INT DEFAULT CAST('1' AS INT);",
        "ALTER TABLE t ADD COLUMN seen TIMESTAMPTZ DEFAULT pg_catalog.now();",
        "ALTER TABLE t VALIDATE CONSTRAINT c;",
        "ALTER TABLE t ALTER COLUMN x DROP NOT NULL;",
        "CREATE TYPE mood AS ENUM ('ok', 'sad');",
        "CREATE TABLE s.t (id INT); ALTER TABLE s.t RENAME TO u; ALTER TABLE s.u DROP COLUMN id;",
    ] {
        assert_eq!(rules_as(Engine::Postgres, sql), Vec::<&str>::new(), "{sql}");
    }
}

#[test]
fn each_contract_rule_fires_without_a_marker() {
    let cases = [
        ("DROP TABLE t;", "drop-table"),
        ("DROP TABLE IF EXISTS t;", "drop-table"),
        ("ALTER TABLE t DROP COLUMN c;", "drop-column"),
        ("ALTER TABLE main.t DROP COLUMN c;", "drop-column"),
        ("ALTER TABLE \"t\" DROP c;", "drop-column"),
        ("ALTER TABLE t RENAME TO u;", "rename-table"),
        ("ALTER TABLE t RENAME COLUMN a TO b;", "rename-column"),
        ("ALTER TABLE t RENAME a TO b;", "rename-column"),
        ("DROP INDEX i;", "drop-index"),
        ("DROP VIEW v;", "drop-view-or-trigger"),
        ("DROP TRIGGER g;", "drop-view-or-trigger"),
        (
            "ALTER TABLE t ADD COLUMN c TEXT NOT NULL;",
            "add-not-null-column",
        ),
    ];
    for (sql, rule) in cases {
        assert_eq!(rules(sql), [rule], "{sql}");
        let finding = &lint_file(&file(&format!("\n\n{sql}")), Engine::Sqlite, false)[0];
        assert_eq!(finding.line, 3);
        assert!(finding.to_string().contains("V9__x.sql:3:"), "{finding}");
        assert!(finding.to_string().contains("Instead: "), "{finding}");
    }
}

#[test]
fn every_action_of_a_multi_action_alter_is_classified() {
    assert_eq!(
        rules_as(
            Engine::Postgres,
            "ALTER TABLE ONLY public.t ADD COLUMN a TEXT, DROP COLUMN b, ALTER COLUMN c SET NOT NULL;"
        ),
        ["mixed-file", "drop-column", "set-not-null"]
    );
}

#[test]
fn locking_rules_apply_to_existing_tables_on_postgres_only() {
    let cases = [
        ("CREATE INDEX i ON t (x);", "create-index-not-concurrently"),
        (
            "ALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (x) REFERENCES u (id);",
            "add-constraint-not-valid",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT c UNIQUE (x);",
            "add-unique-constraint",
        ),
        (
            "ALTER TABLE t ADD COLUMN x TEXT UNIQUE;",
            "add-unique-constraint",
        ),
        (
            "ALTER TABLE t ALTER COLUMN x TYPE BIGINT;",
            "alter-column-type",
        ),
        (
            "ALTER TABLE t ADD COLUMN x UUID DEFAULT gen_random_uuid();",
            "add-column-volatile-default",
        ),
        (
            "ALTER TABLE t ADD COLUMN x TIMESTAMPTZ DEFAULT clock_timestamp();",
            "add-column-volatile-default",
        ),
        (
            "ALTER TABLE t ADD COLUMN x BIGSERIAL;",
            "add-column-volatile-default",
        ),
        ("TRUNCATE t;", "truncate"),
    ];
    for (sql, rule) in cases {
        assert_eq!(rules_as(Engine::Postgres, sql), [rule], "{sql}");
        let new = format!("CREATE TABLE t (id BIGINT PRIMARY KEY, x TEXT);\n{sql}");
        assert_eq!(
            rules_as(Engine::Postgres, &new),
            Vec::<&str>::new(),
            "new table: {new}"
        );
    }
}

#[test]
fn unreadable_or_unclassified_statements_need_a_marker() {
    for sql in [
        "ALTER TABLE t FROBNICATE x;",
        "GRANT SELECT ON t TO PUBLIC;",
        "CREATE TABLE t (x",
        "ALTER TABLE t DROP CONSTRAINT c;",
    ] {
        assert_eq!(
            rules_as(Engine::Postgres, sql),
            ["unknown-statement"],
            "{sql}"
        );
        let marked = format!("-- contract: checked by hand\n{sql}");
        assert_eq!(
            rules_as(Engine::Postgres, &marked),
            Vec::<&str>::new(),
            "{sql}"
        );
    }
    // One bad statement does not hide the next one.
    assert_eq!(
        rules_as(
            Engine::Postgres,
            "ALTER TABLE t FROBNICATE x;\nDROP TABLE t;"
        ),
        ["unknown-statement", "drop-table"]
    );
}

#[test]
fn concurrently_goes_alone_in_a_no_transaction_file() {
    let index = "CREATE INDEX CONCURRENTLY i ON t (x);";
    assert_eq!(
        rules_as(Engine::Postgres, index),
        ["concurrently-in-transaction"]
    );
    assert_eq!(
        rules_as(
            Engine::Postgres,
            &format!("-- xtask: no-transaction\n{index}")
        ),
        Vec::<&str>::new()
    );
    // Two statements in a marked file: refused when the files are loaded,
    // before any lint runs, in the lint's file:line: rule form.
    let two = file(&format!("-- xtask: no-transaction\n{index}\n{index}"));
    let refused = crate::history::no_transaction::refuse_unrunnable(&[two], Engine::Postgres)
        .map_err(|e| e.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains(":3: no-transaction-one-statement:")),
        "{refused:?}"
    );
    let marked = format!("-- contract: whatever\n{index}");
    assert_eq!(
        rules_as(Engine::Postgres, &marked),
        ["concurrently-in-transaction"]
    );
}

#[test]
fn a_table_rebuild_is_one_contract_finding_not_a_mixed_file() {
    let sql = "CREATE TABLE t_new (id INTEGER PRIMARY KEY, x TEXT NOT NULL);\n\
               INSERT INTO t_new SELECT id, x FROM t;\nDROP TABLE t;\n\
               ALTER TABLE t_new RENAME TO t;\nCREATE INDEX t_x ON t (x);\n";
    assert_eq!(rules(sql), ["table-rebuild"]);
    assert_eq!(
        rules(&format!(
            "-- contract: x becomes NOT NULL, unused by 0.2\n{sql}"
        )),
        Vec::<&str>::new()
    );
}

#[test]
fn a_marker_needs_a_reason_and_does_not_excuse_mixing() {
    assert_eq!(rules("-- contract:\nDROP TABLE t;"), ["drop-table"]);
    assert_eq!(
        rules("-- contract: gone since 0.3\nDROP TABLE t;"),
        Vec::<&str>::new()
    );
    assert_eq!(
        rules("-- contract: gone\nCREATE TABLE u (x);\nDROP TABLE t;"),
        ["mixed-file"]
    );
    assert_eq!(
        rules("CREATE TABLE u (x);\nDROP TABLE t;"),
        ["mixed-file", "drop-table"]
    );
}

#[test]
fn a_shared_file_without_a_twin_is_linted_as_both_engines_once() {
    let shared = file("CREATE INDEX i ON t (x);\nDROP TABLE u;\n");
    let found: Vec<_> = lint_migration(&shared, None)
        .iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(
        found,
        ["mixed-file", "drop-table", "create-index-not-concurrently"]
    );
    let twin = file("-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n");
    let shared = file("CREATE INDEX i ON t (x);\n");
    assert!(lint_migration(&shared, Some(&twin)).is_empty());
}

#[test]
fn what_the_lint_does_not_know_to_be_safe_needs_a_marker() {
    let cases = [
        (
            "CREATE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;",
            "runs-code",
        ),
        (
            "CREATE OR REPLACE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;",
            "runs-code",
        ),
        ("SELECT public.count(*) FROM t;", "runs-code"),
        ("SELECT \"lower\"(x) FROM t;", "runs-code"),
        ("CREATE EXTENSION pgcrypto;", "runs-code"),
        ("SET lock_timeout = '2s';", "session-setting"),
        (
            "SELECT pg_catalog.set_config('lock_timeout', '0', false);",
            "session-setting",
        ),
        ("CREATE SCHEMA s;", "create-schema"),
        ("UPDATE t SET c = 'x';", "data-change"),
        (
            "CREATE TABLE u (c TEXT); UPDATE u SET c = f();",
            "runs-code",
        ),
        ("INSERT INTO t (c) SELECT c FROM u;", "data-change"),
        (
            "WITH d AS (UPDATE t SET c = 'x' RETURNING 1) SELECT 1;",
            "data-change",
        ),
        (
            "-- xtask: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (x);",
            "tighten-constraint",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT VALID;",
            "tighten-constraint",
        ),
        (
            "ALTER TABLE t ADD COLUMN x INT DEFAULT s.now();",
            "add-column-volatile-default",
        ),
        (
            "ALTER TABLE t ADD COLUMN x INT DEFAULT \"now\"();",
            "add-column-volatile-default",
        ),
        (
            "ALTER TABLE t ADD COLUMN x INT REFERENCES u (id);",
            "add-constraint-not-valid",
        ),
        (
            "ALTER TABLE t ADD COLUMN x INT CHECK (x > 0);",
            "add-constraint-not-valid",
        ),
    ];
    for (sql, rule) in cases {
        let found = rules_as(Engine::Postgres, sql);
        assert!(found.contains(&rule), "{sql}: {found:?}");
        let marked = format!("-- contract: checked by hand\n{sql}");
        assert_eq!(
            rules_as(Engine::Postgres, &marked),
            Vec::<&str>::new(),
            "{sql}"
        );
    }
    assert_eq!(rules("UPDATE t SET c = 'x';"), ["data-change"]);
    assert_eq!(
        rules("CREATE UNIQUE INDEX i ON t (x);"),
        ["tighten-constraint"]
    );
}

#[test]
fn only_a_plain_create_table_of_the_same_resolved_name_makes_a_table_new() {
    let drop = "ALTER TABLE t DROP COLUMN c;";
    for create in [
        "CREATE TABLE IF NOT EXISTS t (id INT);",
        "CREATE TEMP TABLE t (id INT);",
        "CREATE TABLE \"T\" (id INT);",
        "CREATE TABLE s.t (id INT);",
    ] {
        let found = rules_as(Engine::Postgres, &format!("{create}\n{drop}"));
        assert!(found.contains(&"drop-column"), "{create}: {found:?}");
    }
    // Unquoted names fold; SQLite compares every name case-insensitively.
    assert!(
        rules_as(
            Engine::Postgres,
            &format!("CREATE TABLE T (id INT);\n{drop}")
        )
        .is_empty()
    );
    assert!(
        rules_as(
            Engine::Postgres,
            &format!("CREATE TABLE public.\"t\" (id INT);\n{drop}")
        )
        .is_empty()
    );
    assert!(rules(&format!("CREATE TABLE \"T\" (id INT);\n{drop}")).is_empty());
    assert!(rules(&format!("CREATE TABLE main.t (id INT);\n{drop}")).is_empty());
}
