//! `cargo xtask migrations check` and `migrations new` on fixture migration
//! folders built in temp directories (some inside temp git repos with tags),
//! run as the real binary.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{fs, path::PathBuf, process::Output};

use serde_json::Value;
use support::{
    lint_cases::{ALLOWED, CASES, HEAD, case_file},
    repo_root, text, xtask_command,
};
use tempfile::TempDir;

const V1: &str = "CREATE TABLE notes (\n    id INTEGER PRIMARY KEY,\n    body TEXT NOT NULL,\n    created_at TEXT NOT NULL\n);\n";
const V2: &str = "CREATE TABLE tags (\n    id INTEGER PRIMARY KEY,\n    note_id INTEGER NOT NULL REFERENCES notes (id),\n    kind TEXT NOT NULL CHECK (kind IN ('red', 'blue'))\n);\n";
const V3: &str = "ALTER TABLE notes ADD COLUMN archived_at TEXT;\n";

/// A temp folder (optionally a git repo) with `migrations/` in it.
struct Folder {
    dir: TempDir,
}

impl Folder {
    fn new(files: &[(&str, &str)]) -> Folder {
        let folder = Folder {
            dir: TempDir::new().unwrap(),
        };
        fs::create_dir(folder.migrations()).unwrap();
        for (name, sql) in files {
            folder.write(name, sql);
        }
        folder
    }

    fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    fn write(&self, name: &str, sql: &str) {
        let path = self.migrations().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, sql).unwrap();
    }

    /// Versions this history skips on purpose (a gap is otherwise an error).
    fn allow_gaps(&self, versions: &str) {
        let toml = format!("[workspace.metadata.migrate]\nallow-gaps = {versions}\n");
        fs::write(self.dir.path().join("Cargo.toml"), toml).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        support::git(self.dir.path(), args)
    }

    /// Commits everything (making the folder a git repo first) and tags it `tag`.
    fn release(&self, tag: &str) {
        if !self.dir.path().join(".git").exists() {
            self.git(&["init", "--quiet", "--initial-branch=main"]);
        }
        let id = ["-c", "user.name=t", "-c", "user.email=t@t"];
        self.git(&[&id[..], &["add", "--all"]].concat());
        self.git(&[&id[..], &["commit", "--quiet", "-m", tag]].concat());
        self.git(&["tag", tag]);
    }

    /// The checks of SQLite-only histories: the Postgres check (proven in
    /// tests/postgres.rs) stays out, whatever the environment says.
    fn xtask(&self, args: &[&str]) -> Output {
        xtask_command()
            .env_remove("MIGRATIONS_POSTGRES_URL")
            .arg("--repo")
            .arg(self.dir.path())
            .args(args)
            .arg("--migrations")
            .arg(self.migrations())
            .output()
            .unwrap()
    }

    fn bless(&self) {
        let out = self.xtask(&["migrations", "check", "--bless"]);
        assert!(
            self.migrations().join("schema.sql").exists(),
            "{}",
            text(&out)
        );
    }

    /// The JSON report and the exit status.
    fn check(&self) -> (Value, bool) {
        let out = self.xtask(&["migrations", "check", "--json"]);
        let report: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(
            report["ok"],
            out.status.success(),
            "exit status and report agree"
        );
        (report, out.status.success())
    }
}

fn verdict<'a>(report: &'a Value, name: &str) -> (&'a str, String) {
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    let problems = check["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    (
        check["verdict"].as_str().unwrap(),
        format!("{}{problems}", check["detail"].as_str().unwrap()),
    )
}

/// Asserts `check` failed with a problem containing every `needle`.
fn assert_fails(folder: &Folder, check: &str, needles: &[&str]) {
    let (report, ok) = folder.check();
    assert!(!ok, "the check run should fail:\n{report:#}");
    let (verdict, problems) = verdict(&report, check);
    assert_eq!(verdict, "failed", "{check}: {report:#}");
    for needle in needles {
        assert!(
            problems.contains(needle),
            "{check}: expected {needle:?} in:\n{problems}"
        );
    }
}

#[test]
fn the_projects_own_migrations_pass() {
    let out = xtask_command()
        .args(["migrations", "check"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    for check in [
        "files",
        "fresh database",
        "schema snapshot",
        "upgrade path",
        "zero-downtime lint",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(check) && l.trim_start().starts_with("ok")),
            "{check}: {report}"
        );
    }
}

#[test]
fn a_good_history_passes_and_non_git_checks_say_skipped() {
    let folder = Folder::new(&[
        ("V1__create_notes.sql", V1),
        ("V2__create_tags.sql", V2),
        ("V3__archive_notes.sql", V3),
    ]);
    folder.bless();
    let (report, ok) = folder.check();
    assert!(ok, "{report:#}");
    assert_eq!(verdict(&report, "shipped immutable").0, "skipped");
    assert!(
        verdict(&report, "shipped immutable")
            .1
            .contains("not in a git work tree")
    );
    assert_eq!(
        verdict(&report, "upgrade path").0,
        "ok",
        "the prefix walk runs without git"
    );
    let human = text(&folder.xtask(&["migrations", "check"]));
    assert!(human.contains("skipped  shipped immutable"), "{human}");
}

#[test]
fn bad_names_duplicates_crlf_and_transaction_statements_name_file_and_line() {
    let folder = Folder::new(&[
        ("V1__create_notes.sql", V1),
        ("V2__CreateTags.sql", V2),
        ("V1__again.sql", "CREATE TABLE x (id INTEGER);\n"),
        ("V3__crlf.sql", "CREATE TABLE y (\r\n  id INTEGER\r\n);\r\n"),
        (
            "V4__pragma.sql",
            "CREATE TABLE z (id INTEGER);\n\nPRAGMA foreign_keys = OFF;\n",
        ),
        (
            "V5__begin.sql",
            "BEGIN;\nCREATE TABLE w (id INTEGER);\nCOMMIT;\n",
        ),
        ("notes.txt", "stray"),
    ]);
    let migrations = folder.migrations();
    let at = |name: &str| migrations.join(name).display().to_string();
    assert_fails(
        &folder,
        "files",
        &[
            &format!(
                "{}: not named V{{n}}__{{snake_case_name}}.sql",
                at("V2__CreateTags.sql")
            ),
            &format!(
                "{}: version 1 is also used by V1__again.sql",
                at("V1__create_notes.sql")
            ),
            &format!("{}:1: CRLF", at("V3__crlf.sql")),
            &format!("{}:3: `PRAGMA` statement", at("V4__pragma.sql")),
            &format!("{}:1: `BEGIN` statement", at("V5__begin.sql")),
            &format!("{}:3: `COMMIT` statement", at("V5__begin.sql")),
            &at("notes.txt"),
        ],
    );
}

#[test]
fn a_migration_that_fails_on_a_fresh_database_is_named() {
    let folder = Folder::new(&[
        ("V1__create_notes.sql", V1),
        ("V2__broken.sql", "ALTER TABLE nope ADD COLUMN x TEXT;\n"),
    ]);
    assert_fails(
        &folder,
        "fresh database",
        &["V2__broken.sql", "no such table: nope"],
    );
}

#[test]
fn schema_drift_prints_a_diff_and_the_bless_command() {
    let folder = Folder::new(&[("V1__create_notes.sql", V1)]);
    folder.bless();
    folder.write("V2__create_tags.sql", V2);
    assert_fails(
        &folder,
        "schema snapshot",
        &[
            "+CREATE TABLE tags (",
            "cargo xtask migrations check --bless",
        ],
    );
    folder.bless();
    assert!(folder.check().1);
}

#[test]
fn shipped_migrations_are_immutable() {
    let folder = Folder::new(&[("V1__create_notes.sql", V1), ("V2__create_tags.sql", V2)]);
    folder.bless();
    folder.release("v0.1.0");
    assert!(folder.check().1, "untouched after the tag");

    folder.write(
        "V2__create_tags.sql",
        &format!("{V2}CREATE INDEX tags_kind ON tags (kind);\n"),
    );
    folder.bless();
    assert_fails(
        &folder,
        "shipped immutable",
        &["V2__create_tags.sql: changed since it shipped in v0.1.0"],
    );

    folder.write("V2__create_tags.sql", V2);
    fs::remove_file(folder.migrations().join("V1__create_notes.sql")).unwrap();
    assert_fails(
        &folder,
        "shipped immutable",
        &["v0.1.0:V1__create_notes.sql: shipped in v0.1.0 but deleted"],
    );
}

#[test]
fn the_latest_tag_wins_by_semver_precedence() {
    let folder = Folder::new(&[("V1__create_notes.sql", V1)]);
    folder.bless();
    folder.release("v0.9.0");
    folder.write("V2__create_tags.sql", V2);
    folder.bless();
    folder.release("v0.10.0-rc.1");
    let (report, ok) = folder.check();
    assert!(ok, "{report:#}");
    assert!(
        verdict(&report, "shipped immutable")
            .1
            .contains("of v0.10.0-rc.1"),
        "{report:#}"
    );
    assert!(
        verdict(&report, "upgrade path")
            .1
            .contains("from v0.10.0-rc.1 with data"),
        "{report:#}"
    );
}

#[test]
fn a_release_upgrades_with_data_and_a_new_file_below_it_is_refused() {
    let folder = Folder::new(&[("V1__create_notes.sql", V1), ("V3__create_tags.sql", V2)]);
    folder.allow_gaps("[2]");
    folder.bless();
    folder.release("v1.0.0");
    folder.write("V4__archive_notes.sql", V3);
    folder.bless();
    let (report, ok) = folder.check();
    assert!(ok, "{report:#}");
    folder.write("V2__late.sql", "CREATE TABLE late (id INTEGER);\n");
    folder.bless();
    assert_fails(
        &folder,
        "shipped immutable",
        &["V2__late.sql: new since v1.0.0 but numbered below"],
    );
}

#[test]
fn losing_rows_fails_unless_the_migration_says_why() {
    let purge = "DELETE FROM tags WHERE kind = 'red';\n";
    let folder = Folder::new(&[
        ("V1__create_notes.sql", V1),
        ("V2__create_tags.sql", V2),
        ("V3__purge_red_tags.sql", purge),
    ]);
    folder.bless();
    assert_fails(
        &folder,
        "upgrade path",
        &[
            "table `tags` went from 3 to 0 row(s)",
            "-- deletes-rows: tags",
        ],
    );
    folder.write(
        "V3__purge_red_tags.sql",
        // The DELETE is also a contract change for the zero-downtime lint.
        &format!(
            "-- deletes-rows: tags red tags were retired in 2.0\n\
             -- contract: no release since 2.0 reads red tags\n{purge}"
        ),
    );
    assert!(folder.check().1);
}

#[test]
fn an_upgraded_database_that_ends_elsewhere_than_a_fresh_one_is_caught() {
    // The fixture rows of version 1 come with an index made by hand, as a
    // production database that drifted from its migrations would have.
    let folder = Folder::new(&[
        ("V1__create_notes.sql", V1),
        ("V2__create_tags.sql", V2),
        (
            "fixtures/V1.sql",
            "INSERT INTO notes (body, created_at) VALUES ('a', 'x');\nCREATE INDEX hand_made ON notes (body);\n",
        ),
    ]);
    folder.bless();
    assert_fails(
        &folder,
        "upgrade path",
        &[
            "upgrading from version 1 ends at a different schema",
            "+CREATE INDEX hand_made",
        ],
    );
}

#[test]
fn generated_rows_that_a_constraint_refuses_ask_for_a_fixture() {
    let strict =
        "CREATE TABLE codes (\n    code TEXT NOT NULL CHECK (code GLOB '[A-Z][A-Z][0-9]')\n);\n";
    // GLOB is SQLite's: Postgres needs a twin (the lint reads shared files as both).
    let folder = Folder::new(&[
        ("V1__create_codes.sql", strict),
        (
            "postgres/V1__create_codes.sql",
            "CREATE TABLE codes (\n    code TEXT NOT NULL CHECK (code ~ '^[A-Z][A-Z][0-9]$')\n);\n",
        ),
        ("V2__create_notes.sql", V1),
    ]);
    folder.bless();
    assert_fails(
        &folder,
        "upgrade path",
        &["table `codes`", "fixtures/V1.sql"],
    );
    folder.write(
        "fixtures/V1.sql",
        "INSERT INTO codes VALUES ('AB1'), ('CD2');\n",
    );
    let (report, ok) = folder.check();
    assert!(ok, "{report:#}");
}

#[test]
fn the_lint_reports_contract_changes_of_unreleased_migrations() {
    let folder = Folder::new(&[("V1__create_notes.sql", V1), ("V2__create_tags.sql", V2)]);
    folder.bless();
    folder.release("v0.1.0");
    folder.write(
        "V3__drop_tags.sql",
        "CREATE TABLE labels (id INTEGER PRIMARY KEY);\n\nDROP TABLE tags;\n",
    );
    folder.write(
        "V4__rename_body.sql",
        "ALTER TABLE notes RENAME COLUMN body TO text;\n",
    );
    folder.bless();
    let shown = |name: &str| folder.migrations().join(name).display().to_string();
    assert_fails(
        &folder,
        "zero-downtime lint",
        &[
            &format!(
                "{}:3: `DROP TABLE tags` — mixed-file",
                shown("V3__drop_tags.sql")
            ),
            &format!(
                "{}:3: `DROP TABLE tags` — drop-table breaks zero-downtime deploys: code of the previous release",
                shown("V3__drop_tags.sql")
            ),
            &format!(
                "{}:1: `ALTER TABLE notes RENAME COLUMN body TO text` — rename-column",
                shown("V4__rename_body.sql")
            ),
        ],
    );
    let (report, _) = folder.check();
    assert!(
        !verdict(&report, "zero-downtime lint").1.contains("V1__"),
        "released migrations are not linted"
    );

    folder.write(
        "V3__drop_tags.sql",
        "-- contract: tags unused since 0.1.0\nDROP TABLE tags;\n",
    );
    folder.write(
        "V4__rename_body.sql",
        "-- contract: 0.2 reads `text`\nALTER TABLE notes RENAME COLUMN body TO text;\n",
    );
    folder.write(
        "V5__create_labels.sql",
        "CREATE TABLE labels (id INTEGER PRIMARY KEY);\n",
    );
    folder.bless();
    let (report, ok) = folder.check();
    assert!(ok, "{report:#}");
}

/// This repository's migrations (twins too), released as v0.1.0.
fn released_project() -> Folder {
    let folder = Folder::new(&[]);
    test_support::copy_migrations_with_twins(&folder.migrations());
    folder.release("v0.1.0");
    folder
}

/// Writes the case's migration after the shipped ones (shared file and
/// optional twin), replacing the last case's.
fn write_case(folder: &Folder, shared: &str, twin: Option<&str>) -> PathBuf {
    let file = case_file();
    let twin_path = folder.migrations().join("postgres").join(&file);
    let _ = fs::remove_file(&twin_path);
    folder.write(&file, shared);
    match twin {
        Some(sql) => {
            folder.write(&format!("postgres/{file}"), sql);
            twin_path
        }
        None => folder.migrations().join(file),
    }
}

#[test]
fn the_lint_parses_both_dialects_and_refuses_every_case_with_file_line_and_rule() {
    let folder = released_project();
    let mut wrong = Vec::new();
    for case in CASES {
        let add_head = |sql: &str| format!("{HEAD}{sql}");
        let carrier = write_case(
            &folder,
            &if case.twin.is_some() {
                case.shared.to_owned()
            } else {
                add_head(case.shared)
            },
            case.twin
                .map(|sql| {
                    if sql.starts_with("--") {
                        sql.to_owned()
                    } else {
                        add_head(sql)
                    }
                })
                .as_deref(),
        );
        let (report, ok) = folder.check();
        let (verdict, problems) = verdict(&report, "zero-downtime lint");
        let at = format!("{}:{}:", carrier.display(), case.line);
        let found = problems.lines().map(str::trim_start).any(|l| {
            l.starts_with(&at)
                && (l.contains(&format!(" {} ", case.rule))
                    || l.contains(&format!(" {}:", case.rule)))
        });
        if ok || verdict != "failed" || !found {
            wrong.push(format!(
                "{}{}: expected `{at} … {}`, got {verdict}:\n{problems}",
                case.shared,
                case.twin.unwrap_or_default(),
                case.rule
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        CASES.len(),
        wrong.join("\n\n")
    );
}

#[test]
fn migrations_that_follow_a_recipe_or_carry_a_marker_pass_the_lint() {
    let folder = released_project();
    let mut wrong = Vec::new();
    for (shared, twin) in ALLOWED {
        write_case(&folder, shared, *twin);
        let (report, _) = folder.check();
        // The files check splits statements as the lint reads them: a
        // plpgsql `$$ BEGIN … END $$` body is no `END` statement.
        for check in ["zero-downtime lint", "files"] {
            let (verdict, problems) = verdict(&report, check);
            if verdict != "ok" {
                wrong.push(format!(
                    "{shared}{}: {check}: {verdict}:\n{problems}",
                    twin.unwrap_or_default()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn the_human_report_has_a_line_per_check_and_failures_in_full() {
    let folder = Folder::new(&[
        ("V1__create_notes.sql", V1),
        ("V2__drop.sql", "DROP TABLE notes;\n"),
    ]);
    folder.bless();
    let out = folder.xtask(&["migrations", "check"]);
    assert!(!out.status.success());
    let report = text(&out);
    assert!(report.contains("FAILED   zero-downtime lint"), "{report}");
    assert!(
        report.contains("zero-downtime lint failed:\n  "),
        "{report}"
    );
    assert!(
        report.contains("error: migrations check failed: zero-downtime lint"),
        "{report}"
    );
}

#[test]
fn a_missing_folder_is_a_clear_error() {
    let folder = Folder::new(&[]);
    fs::remove_dir(folder.migrations()).unwrap();
    let out = folder.xtask(&["migrations", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not exist: create it, or point --migrations"),
        "{}",
        text(&out)
    );
}

#[test]
fn new_creates_the_next_file_and_refuses_bad_names() {
    let folder = Folder::new(&[("V1__create_notes.sql", V1), ("V7__create_tags.sql", V2)]);
    folder.allow_gaps("[2, 3, 4, 5, 6]");
    let out = folder.xtask(&["migrations", "new", "add_note_owner"]);
    assert!(out.status.success(), "{}", text(&out));
    let created = folder.migrations().join("V8__add_note_owner.sql");
    assert!(
        fs::read_to_string(&created)
            .unwrap()
            .starts_with("-- add note owner\n")
    );
    for bad in ["AddOwner", "add-owner", "_x", "a__b", ""] {
        let out = folder.xtask(&["migrations", "new", bad]);
        assert!(!out.status.success(), "{bad}");
        assert!(text(&out).contains("snake_case"), "{bad}: {}", text(&out));
    }
    assert_eq!(fs::read_dir(folder.migrations()).unwrap().count(), 3);
}
