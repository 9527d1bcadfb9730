//! What an operator can get wrong, said first and plainly (#13, findings 6,
//! 13, 16 and 23): a missing database or one that is not a regular file is
//! refused before any lock or journal, a bad environment value is refused
//! naming the variable, and a closed stdout ends a command without a panic.
//! The real binary on real files.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{ffi::OsStr, fs, os::unix::ffi::OsStrExt, path::Path, process::Stdio};

use support::{
    Site, mig, next, release_repo, shipped, shipped_latest, sqlite_url, text, xtask_command,
};
use tempfile::TempDir;

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn first_error_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_owned()
}

/// `migrate adopt` on a database that is not there: the same sentence as
/// every other command, and no lock file or journal left behind.
#[test]
fn adopt_says_a_missing_database_first_and_creates_nothing() {
    let dir = TempDir::new().unwrap();
    let in_missing_folder = dir.path().join("no/such/x.db");
    let missing = dir.path().join("none.db");
    for dry in [false, true] {
        for db in [&in_missing_folder, &missing] {
            let mut cmd = xtask_command();
            cmd.env_remove("MIGRATE_BACKUP_DIR")
                .args(["migrate", "adopt", "--database-url", &sqlite_url(db)])
                .arg("--migrations")
                .arg(support::migrations_dir());
            if dry {
                cmd.arg("--dry-run");
            }
            let out = cmd.output().unwrap();
            assert!(!out.status.success(), "{}", text(&out));
            assert!(
                first_error_line(&out).starts_with(&format!(
                    "error: the database {} does not exist",
                    db.display()
                )),
                "{}",
                text(&out)
            );
            assert!(!text(&out).contains("[1/7]"), "{}", text(&out));
            assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{}", text(&out));
        }
    }
}

/// A FIFO where the database should be: named as not a regular file, before
/// any lock file or journal line.
#[test]
fn a_database_path_that_is_not_a_regular_file_is_refused_first() {
    let dir = TempDir::new().unwrap();
    let fifo = dir.path().join("fifo.db");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let folder = dir.path().join("folder.db");
    fs::create_dir(&folder).unwrap();
    for db in [&fifo, &folder] {
        for args in [
            &["migrate"][..],
            &["migrate", "status"],
            &["migrate", "adopt"],
        ] {
            let out = xtask_command()
                .env_remove("MIGRATE_BACKUP_DIR")
                .args(args)
                .args(["--database-url", &sqlite_url(db)])
                .arg("--migrations")
                .arg(support::migrations_dir())
                .output()
                .unwrap();
            assert!(!out.status.success(), "{args:?}: {}", text(&out));
            let said = first_error_line(&out);
            assert!(
                said.contains(&format!(
                    "the database {} is not a regular file",
                    db.display()
                )),
                "{args:?}: {}",
                text(&out)
            );
            assert!(
                said.contains("a FIFO") || said.contains("a folder"),
                "{said}"
            );
            assert_eq!(
                files_in(dir.path()),
                ["fifo.db", "folder.db"],
                "{args:?}: {}",
                text(&out)
            );
        }
    }
}

/// A value that is not UTF-8 is refused naming the variable, not taken as
/// unset (backups beside the database, 5 kept).
#[test]
fn a_non_utf8_environment_value_is_refused_naming_the_variable() {
    let site = Site::new();
    let bad = OsStr::from_bytes(b"/tmp/\xffbackups");
    for name in [
        "MIGRATE_BACKUP_DIR",
        "MIGRATE_KEEP_BACKUPS",
        "MIGRATE_HEALTH_URL",
    ] {
        let out = site
            .command(&["migrate", "--dry-run"], &[])
            .env(name, bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}: {}", text(&out));
        assert!(
            first_error_line(&out).contains(&format!("{name} is not valid UTF-8")),
            "{name}: {}",
            text(&out)
        );
    }
    assert_eq!(site.backups().len(), 0);
}

/// `version --json | head -1`: the reader went away; the command ends
/// without a panic message and with the shell's status for a closed pipe.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let repo = release_repo();
    // The reading end is closed before the command starts: every write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = xtask_command()
        .arg("--repo")
        .arg(repo.path())
        .args(["version", "--json"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// A token in the health URL's query string is never printed or journaled:
/// not in the dry run's plan, not in step 6's error, not in the journal.
#[test]
fn a_token_in_the_health_url_is_redacted_everywhere() {
    let site = Site::new();
    site.add_migration(&mig(next(), "created_at_index"), support::NEXT_INDEX);
    let url = "http://127.0.0.1:9/health?token=HPASS2&X-Amz-Signature=SIG3&v=1";
    let env = [
        ("MIGRATE_MAINTENANCE", "1"),
        ("MIGRATE_HEALTH_URL", url),
        ("MIGRATE_HEALTH_TIMEOUT_SECS", "1"),
    ];
    let dry = site.xtask(&["migrate", "--dry-run"], &env);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("http://127.0.0.1:9/health?token=***&X-Amz-Signature=***&v=1"),
        "{}",
        text(&dry)
    );
    let real = site.xtask(&["migrate"], &env);
    assert!(!real.status.success(), "{}", text(&real));
    assert!(text(&real).contains("[6/7]"), "{}", text(&real));
    for (what, said) in [
        ("dry run", text(&dry)),
        ("run", text(&real)),
        ("journal", site.journal()),
    ] {
        assert!(
            !said.contains("HPASS2") && !said.contains("SIG3"),
            "{what}: {said}"
        );
    }
    assert!(site.journal().contains("token=***"), "{}", site.journal());
}

/// A maintenance flag in a folder that does not exist: refused by the
/// preflight, before the service is touched, and no removal is claimed.
#[test]
fn a_maintenance_flag_in_a_missing_folder_is_refused_by_the_preflight() {
    let site = Site::new();
    site.add_migration(&mig(next(), "created_at_index"), support::NEXT_INDEX);
    let flag = site.dir.path().join("noflagdir/m.flag");
    let flag_env = flag.to_str().unwrap();
    for args in [&["migrate", "--dry-run"][..], &["migrate"]] {
        let out = site.xtask(
            args,
            &[
                ("MIGRATE_MAINTENANCE", "1"),
                ("SECRETS_MAINTENANCE_FLAG", flag_env),
            ],
        );
        let said = text(&out);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(said.contains("[2/7] preflight"), "{args:?}: {said}");
        assert!(
            said.contains(&format!(
                "the maintenance flag's folder {} does not exist",
                flag.parent().unwrap().display()
            )),
            "{args:?}: {said}"
        );
        assert!(!said.contains("[3/7]"), "{args:?}: {said}");
        assert!(
            !said.contains("removed maintenance flag"),
            "{args:?}: {said}"
        );
    }
    assert_eq!(site.versions(), shipped());
}

/// "banana" in every place is not a version, agreed or not.
#[test]
fn version_refuses_a_value_that_is_not_semver() {
    let repo = release_repo();
    let root = repo.path();
    let swap = |path: &str| {
        let file = root.join(path);
        let text = fs::read_to_string(&file)
            .unwrap()
            .replace("0.1.0", "banana");
        fs::write(file, text).unwrap();
    };
    for path in ["backend/Cargo.toml", "frontend/package.json", "VERSION.txt"] {
        swap(path);
    }
    let version = |args: &[&str]| {
        xtask_command()
            .arg("--repo")
            .arg(root)
            .args(args)
            .output()
            .unwrap()
    };
    let out = version(&["version"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("`banana` is not a SemVer version"),
        "{}",
        text(&out)
    );
    let out = version(&["version", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["agreed"], false, "{doc}");
    assert_eq!(doc["version"], serde_json::Value::Null, "{doc}");
}

/// A bad `[workspace.metadata.migrate]` points at where its keys are listed.
#[test]
fn a_bad_migrate_config_points_at_the_runbook() {
    let dir = TempDir::new().unwrap();
    fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nmembers = []\n\n[workspace.metadata.migrate]\nno-such-key = 1\n",
    )
    .unwrap();
    let out = xtask_command()
        .arg("--repo")
        .arg(dir.path())
        .args(["migrate", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("see docs/runbook.md (\"Settings\") for its keys"),
        "{}",
        text(&out)
    );
}

/// `migrate status --json` with a gap: the document says why it exits 1.
#[test]
fn status_json_names_a_gap_in_problems() {
    let site = Site::new();
    site.add_migration(&mig(next() + 1, "created_at_index"), support::NEXT_INDEX);
    let out = site.xtask(&["migrate", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = doc["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(problems.len(), 1, "{doc}");
    assert!(
        problems[0].as_str().unwrap().contains(&format!(
            "follows V{} — version {} is missing",
            shipped_latest(),
            next()
        )),
        "{doc}"
    );
    // Up to date and without a gap: no problems.
    let site = Site::new();
    let out = site.xtask(&["migrate", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["problems"], serde_json::json!([]), "{doc}");
}

fn help(args: &[&str]) -> String {
    let out = xtask_command().args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Each help names every variable its command reads, with its default, and
/// every exit status the command can give.
#[test]
fn help_names_what_each_command_reads_and_every_exit_status() {
    for args in [
        &["migrations", "new"][..],
        &["migrations", "check"],
        &["db", "copy"],
    ] {
        let said = help(args);
        assert!(said.contains("MIGRATE_ALLOW_GAPS"), "{args:?}: {said}");
        assert!(!said.contains("Environment: none"), "{args:?}: {said}");
    }
    for args in [&["release"][..], &["migrations", "check"]] {
        let said = help(args);
        let line = said
            .lines()
            .find(|l| l.trim_start().starts_with("DATABASE_URL"))
            .unwrap_or_else(|| panic!("{args:?}: {said}"));
        assert!(line.contains("[default: "), "{args:?}: {line}");
    }
    let said = help(&["migrate"]);
    let statuses = said.split("Exit status:").nth(1).unwrap_or_default();
    assert!(
        statuses.contains("130") && statuses.contains("143"),
        "{statuses}"
    );
}

/// A folder named with a newline: `migrate` prints every path on one line,
/// quoted ($'…\n…'), never the raw newline.
#[test]
fn a_newline_in_a_path_is_quoted_on_stdout() {
    let dir = TempDir::new().unwrap();
    let odd = dir.path().join("a\nb");
    fs::create_dir(&odd).unwrap();
    let migrations = odd.join("migrations");
    support::copy_migrations(&migrations, None);
    let db = odd.join("secrets.db");
    let out = xtask_command()
        .env_remove("MIGRATE_BACKUP_DIR")
        .args(["migrate", "--create", "--database-url", &sqlite_url(&db)])
        .arg("--migrations")
        .arg(&migrations)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("a\nb"), "{stdout}");
    assert!(stdout.contains("a\\nb"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("a\nb"), "{stderr}");
}

/// A history row edited by hand: the error leads with that row, not with
/// "is it corrupt?" (the file reads fine).
#[test]
fn an_edited_history_row_is_named_first() {
    let site = Site::new();
    rusqlite::Connection::open(&site.db)
        .unwrap()
        .execute_batch(
            "UPDATE refinery_schema_history SET applied_on = 'yesterday' WHERE version = 2",
        )
        .unwrap();
    for args in [
        &["migrate", "status"][..],
        &["migrate", "status", "--json"],
        &["migrate", "--dry-run"],
    ] {
        let out = site.xtask(args, &[]);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let said = first_error_line(&out);
        assert!(
            said.contains(&format!(
                "{}: the migration history (refinery_schema_history) has a row refinery cannot read: row for version 2",
                site.db.display()
            )),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!said.contains("is it corrupt"), "{args:?}: {said}");
    }
}
