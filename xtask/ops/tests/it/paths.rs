//! Settings that mean what they say (issue #13, items 7, 10 and 11), run as
//! the real binary on temp repositories: relative paths are taken from the
//! repository root whatever the current folder, a gap in the migration
//! versions is an error unless listed, and a database whose folder does not
//! exist is said to be missing before anything else happens.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use support::{
    copy_migrations, mig, next, shipped, shipped_latest, sqlite_url, text, versions_of as versions,
    xtask_command,
};
use tempfile::TempDir;

/// A temp repository: this repository's migrations, a `backend/`
/// folder to run from, and a `Cargo.toml` holding `migrate_toml` as
/// `[workspace.metadata.migrate]`.
fn repo(migrate_toml: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    copy_migrations(&dir.path().join("migrations"), None);
    fs::create_dir(dir.path().join("backend")).unwrap();
    fs::write(
        dir.path().join("Cargo.toml"),
        format!("[workspace]\nmembers = []\n\n[workspace.metadata.migrate]\n{migrate_toml}"),
    )
    .unwrap();
    dir
}

/// The xtask on `repo`, run from `repo/backend`, without a DATABASE_URL.
fn from_backend(repo: &Path, args: &[&str]) -> Command {
    let mut cmd = xtask_command();
    cmd.current_dir(repo.join("backend"))
        .env_remove("MIGRATE_BACKUP_DIR")
        .env_remove("MIGRATE_ALLOW_GAPS")
        .arg("--repo")
        .arg(repo)
        .args(args);
    cmd
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn from_the_backend_folder_the_default_database_is_the_repository_roots() {
    let repo = repo("backup-dir = \"backups\"\n");
    let root = repo.path();
    let out = from_backend(root, &["migrate", "--create"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let db = root.join("data/secrets.db");
    assert_eq!(versions(&db), shipped(), "{}", text(&out));
    assert!(
        !root.join("backend/data").exists(),
        "the xtask looked in backend/: {}",
        text(&out)
    );
    // backup-dir = "backups" is the repository's backups/, not backend/backups/.
    assert!(
        files_in(&root.join("backups"))
            .iter()
            .any(|f| f.ends_with(".bak")),
        "{}",
        text(&out)
    );
    assert!(!root.join("backend/backups").exists());
    let said = format!(
        "database: {} (relative paths are taken from the repository root {})",
        db.display(),
        root.display()
    );
    assert_eq!(
        text(&out).matches(&said).count(),
        1,
        "printed once: {said}\n{}",
        text(&out)
    );
    // An explicit relative URL and --migrations follow the same rule.
    let out = from_backend(
        root,
        &[
            "migrate",
            "status",
            "--database-url",
            "sqlite:///data/secrets.db",
            "--migrations",
            "migrations",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("up to date"), "{}", text(&out));
}

#[test]
fn a_relative_database_url_and_backup_folder_from_the_environment_follow_the_rule() {
    let repo = repo("");
    let root = repo.path();
    let out = from_backend(root, &["migrate", "--create"])
        .env("DATABASE_URL", "sqlite:///var/app.db")
        .env("MIGRATE_BACKUP_DIR", "var/backups")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(versions(&root.join("var/app.db")), shipped());
    let out = from_backend(root, &["backup"])
        .env("DATABASE_URL", "sqlite:///var/app.db")
        .env("MIGRATE_BACKUP_DIR", "var/backups")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        files_in(&root.join("var/backups"))
            .iter()
            .filter(|f| f.ends_with(".bak"))
            .count(),
        2,
        "{}",
        text(&out)
    );
    assert_eq!(files_in(&root.join("backend")), Vec::<String>::new());
}

/// What every command says first about a database in a folder that does not exist.
fn missing_folder_said(args: &[&str], hint: &str) {
    let dir = TempDir::new().unwrap();
    let folder = dir.path().join("no/such/dir");
    let db = folder.join("x.db");
    let url = sqlite_url(&db);
    let mut cmd = xtask_command();
    cmd.env_remove("MIGRATE_BACKUP_DIR")
        .args(args)
        .args(["--database-url", &url]);
    if args[0] == "migrate" {
        cmd.arg("--migrations").arg(support::migrations_dir());
    }
    let out: Output = cmd.output().unwrap();
    assert!(!out.status.success(), "{args:?}: {}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    let expected = format!(
        "error: the database {} does not exist (its folder {} does not exist either): check DATABASE_URL, {hint}",
        db.display(),
        folder.display()
    );
    assert_eq!(first, expected, "{args:?}: {}", text(&out));
    assert!(
        !text(&out).contains("journal") && !text(&out).contains("lock"),
        "{args:?}: no noise about the journal or the lock: {}",
        text(&out)
    );
    assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{args:?}");
}

#[test]
fn a_database_whose_folder_does_not_exist_is_said_first_by_every_command() {
    let first_deploy = "or pass --create for a first deploy";
    missing_folder_said(&["migrate"], first_deploy);
    missing_folder_said(&["migrate", "--dry-run"], first_deploy);
    missing_folder_said(
        &["migrate", "status"],
        "or run `cargo xtask migrate --create` for a first deploy",
    );
    missing_folder_said(&["backup"], "there is nothing to back up");
    missing_folder_said(
        &["restore"],
        "or create the folder (mkdir -m 700) to restore a backup into it",
    );
}

#[test]
fn a_missing_database_file_creates_nothing_beside_it() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("typo.db");
    for args in [&["migrate"][..], &["migrate", "status"], &["backup"]] {
        let mut cmd = xtask_command();
        cmd.args(args).args(["--database-url", &sqlite_url(&db)]);
        if args[0] == "migrate" {
            cmd.arg("--migrations").arg(support::migrations_dir());
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr
                .lines()
                .next()
                .unwrap_or_default()
                .starts_with(&format!(
                    "error: the database {} does not exist:",
                    db.display()
                )),
            "{args:?}: {}",
            text(&out)
        );
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{args:?}");
    }
}

/// A repository whose migrations skip the shipped latest version L: the
/// file of L moved to L + 1.
fn repo_with_gap(migrate_toml: &str) -> (TempDir, PathBuf) {
    let repo = repo(migrate_toml);
    let migrations = repo.path().join("migrations");
    let latest = format!("V{}__", shipped_latest());
    let last = test_support::migration_files(&migrations)
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&latest)
        })
        .unwrap();
    let moved = migrations.join(mig(next(), "audit_log"));
    fs::rename(&last, &moved).unwrap();
    (repo, moved)
}

fn gap_named(out: &Output, moved: &Path) {
    assert!(!out.status.success(), "{}", text(out));
    let said = text(out);
    let gap = shipped_latest();
    assert!(
        said.contains(&format!("{}: follows V{}", moved.display(), gap - 1))
            && said.contains(&format!("version {gap} is missing"))
            && said.contains(&format!("allow-gaps = [{gap}]")),
        "{said}"
    );
}

#[test]
fn a_gap_in_the_versions_fails_every_command_that_reads_the_history() {
    let (repo, moved) = repo_with_gap("");
    let root = repo.path();
    let db = root.join("data/secrets.db");
    for args in [
        &["migrate", "--create"][..],
        &["migrate", "--create", "--dry-run"],
        &["migrations", "new", "add_owner"],
    ] {
        let out = from_backend(root, args).output().unwrap();
        gap_named(&out, &moved);
        assert!(!db.exists(), "{args:?} created the database");
        assert!(!root.join("data").exists(), "{args:?} created data/");
    }
    assert!(
        !files_in(&root.join("migrations"))
            .iter()
            .any(|f| f.contains("add_owner")),
        "migrations new created a file"
    );
    let out = from_backend(root, &["migrations", "check"])
        .output()
        .unwrap();
    gap_named(&out, &moved);
    assert!(text(&out).contains("files"), "{}", text(&out));
}

#[test]
fn a_gap_listed_in_allow_gaps_passes_and_only_that_one() {
    let gap = shipped_latest();
    let (repo, _) = repo_with_gap(&format!("allow-gaps = [{gap}]\n"));
    let root = repo.path();
    let out = from_backend(root, &["migrate", "--create"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut expected = support::versions_to(gap - 1).0;
    expected.push(i64::from(next()));
    assert_eq!(versions(&root.join("data/secrets.db")), expected);
    let out = from_backend(root, &["migrations", "new", "add_owner"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        root.join("migrations")
            .join(mig(next() + 1, "add_owner"))
            .is_file()
    );
    // The environment may list them too; a version listed but present is stale.
    let (repo, _) = repo_with_gap("");
    let out = from_backend(repo.path(), &["migrate", "--create"])
        .env("MIGRATE_ALLOW_GAPS", gap.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (repo, _) = repo_with_gap(&format!("allow-gaps = [{}, {gap}]\n", gap - 1));
    let out = from_backend(repo.path(), &["migrate", "--create"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("allow-gaps lists version {}, but", gap - 1)),
        "{}",
        text(&out)
    );
}

#[test]
fn a_gap_fails_the_postgres_job_and_window_before_anything_changes() {
    let Some(server) =
        support::pg::server("a_gap_fails_the_postgres_job_and_window_before_anything_changes")
    else {
        return;
    };
    let site = support::pg::PgSite::new(&server);
    // The one after next after the shipped latest: next is missing.
    let after_next = mig(next() + 1, "secret_note");
    site.add_migration(&after_next, "ALTER TABLE secrets ADD COLUMN note TEXT;\n");
    let after_next = site.migrations.join(after_next);
    for args in [
        &["migrate", "--job"][..],
        &["migrate"],
        &["migrate", "--dry-run"],
    ] {
        let out = site.xtask(args, &[]);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "{}: follows V{}",
                after_next.display(),
                shipped_latest()
            )) && text(&out).contains(&format!("version {} is missing", next())),
            "{args:?}: {}",
            text(&out)
        );
        let applied: i32 = site
            .db
            .client()
            .query_one("SELECT max(version) FROM refinery_schema_history", &[])
            .unwrap()
            .get(0);
        assert_eq!(
            applied,
            i32::try_from(shipped_latest()).unwrap(),
            "{args:?}"
        );
    }
    let out = site.xtask(
        &["migrate", "--job"],
        &[("MIGRATE_ALLOW_GAPS", next().to_string().as_str())],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn db_copy_takes_a_relative_source_and_migrations_from_the_repository_root() {
    let Some(server) = support::pg::server(
        "db_copy_takes_a_relative_source_and_migrations_from_the_repository_root",
    ) else {
        return;
    };
    let repo = repo("");
    let root = repo.path();
    // The Postgres twins too: the copy compares both engines' histories.
    test_support::copy_migrations_with_twins(&root.join("migrations"));
    let out = from_backend(root, &["migrate", "--create"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let target = support::pg::PgSite::empty(&server);
    target.migrate_fully();
    let out = from_backend(
        root,
        &[
            "db",
            "copy",
            "--from",
            "sqlite:///data/secrets.db",
            "--migrations",
            "migrations",
            "--to",
            &target.db.url,
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "source: {} (relative paths are taken from the repository root {})",
            root.join("data/secrets.db").display(),
            root.display()
        )),
        "{}",
        text(&out)
    );
    assert!(!root.join("backend/data").exists());
}

#[test]
fn a_first_deploy_on_postgres_with_a_gap_creates_no_database() {
    let Some(server) =
        support::pg::server("a_first_deploy_on_postgres_with_a_gap_creates_no_database")
    else {
        return;
    };
    let site = support::pg::PgSite::empty(&server);
    site.add_migration(
        &mig(next() + 1, "secret_note"),
        "ALTER TABLE secrets ADD COLUMN note TEXT;\n",
    );
    let name = format!("{}_first", site.db.name);
    let url = test_support::with_database(&server, &name);
    let exists = || {
        site.db
            .client()
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .unwrap()
            .is_some()
    };
    let out = site.xtask(&["migrate", "--create"], &[("DATABASE_URL", &url)]);
    let created = exists();
    if created {
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        site.db.client().batch_execute(&drop).unwrap();
    }
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("version {} is missing", next())),
        "{}",
        text(&out)
    );
    assert!(!created, "a database was created for a history with a gap");
}
