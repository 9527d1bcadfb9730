//! The operations tool as it ships: its binary alone on a host with no
//! toolchain and no checkout, and the xtask of one checkout run in another.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use rusqlite::Connection;
use tempfile::TempDir;

use crate::support::{self, shipped_latest, text, versions_of, workspace_binary, xtask_command};

/// Runs `command` to its end. A binary this process has just copied can
/// fail to start with ETXTBSY while another test's fork still holds the copy's
/// write descriptor (until that child's exec closes it): tried again then.
fn output(command: &mut Command) -> Output {
    for _ in 0..100 {
        match command.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result.unwrap(),
        }
    }
    panic!("{command:?} stayed busy (ETXTBSY) for a second");
}

/// The binary copied alone into `<host>/bin`, run from `<host>/work` (no
/// checkout above it) with a PATH of the system's folders only: no cargo,
/// no rustc.
struct Host {
    dir: TempDir,
    binary: PathBuf,
}

impl Host {
    fn new() -> Host {
        let dir = TempDir::new().unwrap();
        let binary = dir.path().join("bin/secrets-ops");
        fs::create_dir_all(binary.parent().unwrap()).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_secrets-ops"), &binary).unwrap();
        fs::create_dir_all(dir.path().join("work")).unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        Host { dir, binary }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn run(&self, args: &[&str]) -> Output {
        output(
            Command::new(&self.binary)
                .args(args)
                .current_dir(self.path("work"))
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", self.dir.path())
                .env("SECRETS_OPS_CONFIG", self.path("etc/secrets-ops.toml"))
                .env("DATABASE_URL", "sqlite:///data/secrets.db"),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}:\n{}", text(&out));
        let all = text(&out);
        assert!(
            !all.contains("cargo xtask"),
            "the installed binary's advice names a command the host cannot run:\n{all}"
        );
        all
    }
}

#[test]
fn the_binary_alone_migrates_reports_backs_up_and_restores_with_its_settings_file() {
    let host = Host::new();
    for tool in ["cargo", "rustc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        assert!(!found.status.success(), "{tool} is on the host's PATH");
    }
    // Relative paths in the settings file and DATABASE_URL are taken from
    // the settings file's folder, not the working directory.
    fs::write(
        host.path("etc/secrets-ops.toml"),
        "backup-dir = \"backups\"\nkeep-backups = 3\n",
    )
    .unwrap();

    let created = host.ok(&["migrate", "--create"]);
    let db = host.path("etc/data/secrets.db");
    assert!(db.is_file(), "no database at {}:\n{created}", db.display());
    assert!(
        created.contains("relative paths are taken from the settings file's folder"),
        "{created}"
    );
    let expected: Vec<i64> = (1..=i64::from(shipped_latest())).collect();
    assert_eq!(
        versions_of(&db),
        expected,
        "the embedded history, all of it"
    );
    assert!(
        !host.path("work/data").exists(),
        "nothing under the working directory"
    );

    host.ok(&["migrate", "status"]);
    let status = host.run(&["migrate", "status", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        report["schema_version"],
        i64::from(shipped_latest()),
        "{report}"
    );
    assert_eq!(report["up_to_date"], true, "{report}");

    let before = support::backups_in(&host.path("etc/backups")).len();
    host.ok(&["backup"]);
    let after = support::backups_in(&host.path("etc/backups")).len();
    assert_eq!(after, before + 1, "the backup is in the configured folder");

    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE after_backup (id INTEGER)")
        .unwrap();
    drop(conn);
    let restored = host.ok(&["restore"]);
    let conn = Connection::open(&db).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'after_backup'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the restore put the backup back:\n{restored}");
    assert_eq!(versions_of(&db), expected);
}

#[test]
fn the_installed_binary_names_itself_in_its_advice() {
    let host = Host::new();
    fs::write(host.path("etc/secrets-ops.toml"), "").unwrap();
    let out = host.run(&["migrate", "status"]);
    assert!(!out.status.success());
    let all = text(&out);
    assert!(all.contains("secrets-ops migrate --create"), "{all}");
    assert!(!all.contains("cargo xtask"), "{all}");
}

/// A settings path that is a folder is named for what it is, and an empty
/// `SECRETS_OPS_CONFIG` means no settings file, as an empty variable means
/// its default everywhere else.
#[test]
fn a_settings_path_that_is_a_folder_or_empty_is_said_as_such() {
    let host = Host::new();
    let out = host.run(&[
        "--config",
        host.path("etc").to_str().unwrap(),
        "migrate",
        "status",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("etc is not a file"), "{}", text(&out));
    let out = output(
        Command::new(&host.binary)
            .args(["migrate", "--create"])
            .current_dir(host.path("work"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SECRETS_OPS_CONFIG", "")
            .env("DATABASE_URL", "sqlite:///data/secrets.db"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        host.path("work/data/secrets.db").is_file(),
        "{}",
        text(&out)
    );
}

#[test]
fn a_missing_settings_file_is_named() {
    let host = Host::new();
    let out = host.run(&["migrate", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("etc/secrets-ops.toml does not exist") && all.contains("--config FILE"),
        "{all}"
    );
}

/// A checkout's skeleton: what the xtask needs to know it is one, and the
/// repository's migrations.
fn checkout() -> TempDir {
    let dir = TempDir::new().unwrap();
    fs::create_dir_all(dir.path().join("xtask")).unwrap();
    fs::write(dir.path().join("Cargo.toml"), "[workspace]\n").unwrap();
    fs::write(
        dir.path().join("xtask/Cargo.toml"),
        "[package]\nname = \"xtask\"\n",
    )
    .unwrap();
    support::copy_migrations(&dir.path().join("migrations"), None);
    dir
}

fn listing(dir: &Path) -> Vec<String> {
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
fn an_xtask_built_in_one_checkout_and_run_in_another_never_touches_the_first() {
    // The binaries of this checkout (A) run in checkout B, as with a shared
    // CARGO_TARGET_DIR: `cargo xtask` there sets CARGO_MANIFEST_DIR to B's
    // xtask folder; a binary run by hand only has its working directory.
    let a_data = support::repo_root().join("data");
    let before = listing(&a_data);
    let b = checkout();
    let sub = b.path().join("migrations");

    let through_cargo = xtask_command()
        .args(["migrate", "--create"])
        .env("CARGO_MANIFEST_DIR", b.path().join("xtask"))
        .current_dir(support::repo_root().join("backend"))
        .output()
        .unwrap();
    assert!(through_cargo.status.success(), "{}", text(&through_cargo));
    assert!(
        b.path().join("data/secrets.db").is_file(),
        "{}",
        text(&through_cargo)
    );
    fs::remove_file(b.path().join("data/secrets.db")).unwrap();

    let by_hand = Command::new(workspace_binary("xtask"))
        .args(["migrate", "--create"])
        .env("SECRETS_OPS", env!("CARGO_BIN_EXE_secrets-ops"))
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("DATABASE_URL")
        .current_dir(&sub)
        .output()
        .unwrap();
    assert!(by_hand.status.success(), "{}", text(&by_hand));
    assert!(
        b.path().join("data/secrets.db").is_file(),
        "{}",
        text(&by_hand)
    );

    assert_eq!(listing(&a_data), before, "checkout A's data/ changed");
}

/// The built-in migrations are read, never written: `migrations new` and
/// `--bless` are refused; `migrations check` names them for what they are.
#[test]
fn the_built_in_migrations_are_named_for_what_they_are_and_never_written() {
    let host = Host::new();
    fs::write(host.path("etc/secrets-ops.toml"), "").unwrap();
    for args in [
        &["migrations", "new", "add_owner"][..],
        &["migrations", "check", "--bless"],
    ] {
        let out = host.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("built into it") && said.contains("--migrations DIR"),
            "{said}"
        );
    }
    let out = host.run(&["migrations", "check"]);
    let said = text(&out);
    assert!(
        said.contains("migrations check: the migrations built into secrets-ops"),
        "{said}"
    );
    assert!(
        !said.contains("secrets-ops-migrations."),
        "a temp folder named:\n{said}"
    );
}

/// `backup` and `restore` read no migrations: a temp folder that cannot be
/// written does not stop the recovery commands.
#[test]
fn backup_and_restore_need_no_temp_folder() {
    let host = Host::new();
    fs::write(
        host.path("etc/secrets-ops.toml"),
        "backup-dir = \"backups\"\n",
    )
    .unwrap();
    host.ok(&["migrate", "--create"]);
    let run = |args: &[&str]| {
        output(
            Command::new(&host.binary)
                .args(args)
                .current_dir(host.path("work"))
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("TMPDIR", host.path("no-such-folder"))
                .env("SECRETS_OPS_CONFIG", host.path("etc/secrets-ops.toml"))
                .env("DATABASE_URL", "sqlite:///data/secrets.db"),
        )
    };
    for args in [&["backup"][..], &["backup", "--list"], &["restore"]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let out = run(&["migrate", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(
        said.contains("no-such-folder") && said.contains("TMPDIR"),
        "{said}"
    );
}

/// A run that was killed leaves its private folder; the next run removes
/// the folders of processes that are gone, and only those.
#[test]
fn the_folders_of_killed_runs_are_removed() {
    let host = Host::new();
    fs::write(host.path("etc/secrets-ops.toml"), "").unwrap();
    let tmp = host.path("tmp");
    let dead = tmp.join("secrets-ops-migrations.999999999.abc");
    let alive = tmp.join(format!("secrets-ops-migrations.{}.abc", std::process::id()));
    let stranger = tmp.join("secrets-ops-migrations-notes");
    for dir in [&dead, &alive, &stranger] {
        fs::create_dir_all(dir).unwrap();
    }
    let out = output(
        Command::new(&host.binary)
            .args(["migrations", "check"])
            .current_dir(host.path("work"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TMPDIR", &tmp)
            .env("SECRETS_OPS_CONFIG", host.path("etc/secrets-ops.toml")),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dead.exists(), "a dead run's folder is still there");
    assert!(
        alive.exists() && stranger.exists(),
        "a folder that is not a dead run's was removed"
    );
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "this run's own folder outlived it: {left:?}");
}

/// A migration's precondition hint is written for a checkout; the installed
/// binary says it with its own name.
#[test]
fn a_precondition_hint_names_the_installed_binary() {
    let host = Host::new();
    fs::write(host.path("etc/secrets-ops.toml"), "").unwrap();
    host.ok(&["migrate", "--create", "--to", "5"]);
    let conn = Connection::open(host.path("etc/data/secrets.db")).unwrap();
    conn.execute(
        "INSERT INTO secrets (name, value, created_at) VALUES ('a', 'p', '2024-01-01T00:00:00Z')",
        [],
    )
    .unwrap();
    drop(conn);
    let out = host.run(&["migrate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("refuses to run") && said.contains("`secrets-ops migrate`"),
        "{said}"
    );
    assert!(!said.contains("cargo xtask"), "{said}");
}
