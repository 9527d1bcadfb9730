//! `cargo xtask migrate` as the maintenance-window runbook, and `migrate
//! status`, `backup`, `restore`: the real xtask binary, a real backend process
//! (built from this workspace) taken down through maintenance mode or through
//! stop/start scripts, real HTTP health checks, real SQLite files.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use rusqlite::Connection;
use tempfile::TempDir;

/// An expand migration the backend (built for V4) keeps working with.
const V5_INDEX: &str = "CREATE INDEX secrets_created_at ON secrets (created_at);\n";

fn backend_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_xtask")).with_file_name("backend");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (it builds the backend)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp folder with migrations V1–V4 of this repository, a database
/// migrated to V4 holding two secrets, and a port for the backend.
struct Site {
    dir: TempDir,
    db: PathBuf,
    migrations: PathBuf,
    port: u16,
}

impl Site {
    fn new() -> Site {
        let dir = TempDir::new().unwrap();
        let migrations = dir.path().join("migrations");
        fs::create_dir(&migrations).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        for entry in fs::read_dir(repo).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with('V') {
                fs::copy(&path, migrations.join(path.file_name().unwrap())).unwrap();
            }
        }
        let site = Site {
            db: dir.path().join("secrets.db"),
            dir,
            migrations,
            port: free_port(),
        };
        let out = site.xtask(&["migrate", "--create"], &[]);
        assert!(out.status.success(), "{}", text(&out));
        for backup in site.backups() {
            fs::remove_file(backup).unwrap();
        }
        fs::remove_file(site.dir.path().join("migrate.journal")).unwrap();
        let conn = Connection::open(&site.db).unwrap();
        conn.execute_batch(
            "INSERT INTO secrets (name, value, created_at) VALUES ('alpha', 'one', '2026-01-01T00:00:00Z'), ('beta', 'two', '2026-01-02T00:00:00Z');",
        )
        .unwrap();
        site
    }

    fn url(&self) -> String {
        format!("sqlite:///{}", self.db.display())
    }

    fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    fn add_migration(&self, name: &str, sql: &str) {
        fs::write(self.migrations.join(name), sql).unwrap();
    }

    fn xtask(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args)
            .arg("--database-url")
            .arg(self.url())
            .env_remove("DATABASE_URL")
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", self.port))
            .env("BACKEND", backend_binary())
            .env("SITE", self.dir.path());
        if args[0] == "migrate" {
            cmd.arg("--migrations").arg(&self.migrations);
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.output().unwrap()
    }

    /// Maintenance mode and the health URL, as an operator would set them.
    fn maintenance_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MIGRATE_MAINTENANCE", "1".into()),
            ("MIGRATE_HEALTH_URL", self.health_url()),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "10".into()),
        ]
    }

    fn start_backend(&self) -> Backend {
        Backend::start(self)
    }

    fn versions(&self) -> Vec<i64> {
        let conn = Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT version FROM refinery_schema_history ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn secrets(&self) -> Vec<(String, String)> {
        let conn = Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT name, value FROM secrets ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn backups(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".bak"))
            .collect();
        found.sort();
        found
    }

    fn journal(&self) -> String {
        fs::read_to_string(self.dir.path().join("migrate.journal")).unwrap_or_default()
    }

    /// Writes `stop.sh` and `start.sh` that manage a backend through a pid file.
    fn service_scripts(&self, before_stop: &str) -> Vec<(&'static str, String)> {
        let dir = self.dir.path();
        fs::write(
            dir.join("start.sh"),
            "#!/bin/sh\n\"$BACKEND\" >>\"$SITE/backend.log\" 2>&1 &\necho $! > \"$SITE/backend.pid\"\n",
        )
        .unwrap();
        fs::write(
            dir.join("stop.sh"),
            format!("#!/bin/sh\n{before_stop}\npid=$(cat \"$SITE/backend.pid\")\nkill \"$pid\"\nwhile kill -0 \"$pid\" 2>/dev/null; do sleep 0.05; done\n"),
        )
        .unwrap();
        vec![
            (
                "MIGRATE_STOP",
                format!("sh {}", dir.join("stop.sh").display()),
            ),
            (
                "MIGRATE_START",
                format!("sh {}", dir.join("start.sh").display()),
            ),
            ("MIGRATE_HEALTH_URL", self.health_url()),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "10".into()),
            ("DATABASE_URL", self.url()),
        ]
    }

    /// Starts the backend through the start script (so stop.sh can find it).
    fn start_scripted(&self) {
        let status = Command::new("sh")
            .arg(self.dir.path().join("start.sh"))
            .env("BACKEND", backend_binary())
            .env("SITE", self.dir.path())
            .env("DATABASE_URL", self.url())
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", self.port))
            .status()
            .unwrap();
        assert!(status.success());
        wait_for_health(&self.health_url(), 200);
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.dir.path().join("backend.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn status_of(url: &str) -> Option<u16> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    agent.get(url).call().ok().map(|r| r.status().as_u16())
}

fn wait_for_health(url: &str, wanted: u16) {
    for _ in 0..200 {
        if status_of(url) == Some(wanted) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} never answered {wanted}");
}

/// A backend process started by the test itself.
struct Backend {
    child: Child,
}

impl Backend {
    fn start(site: &Site) -> Backend {
        let mut child = Command::new(backend_binary())
            .env("DATABASE_URL", site.url())
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", site.port))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let backend = Backend { child };
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
            if line.contains("listening on") {
                return backend;
            }
        }
        panic!("the backend did not start");
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn maintenance_mode_window_migrates_backs_up_and_verifies_health() {
    let site = Site::new();
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    for step in [
        "[1/7] preflight",
        "[2/7] take the migration lock",
        "[3/7] take the service down",
        "[4/7] back up",
        "[5/7] migrate",
        "[6/7] bring the service up",
        "[7/7] done",
    ] {
        assert!(report.contains(step), "missing {step}:\n{report}");
    }
    assert!(
        report.contains("rehearsal V5__index_created_at"),
        "{report}"
    );
    assert!(report.contains("schema_version 5"), "{report}");
    assert_eq!(site.versions(), [1, 2, 3, 4, 5]);
    assert_eq!(
        site.secrets(),
        [
            ("alpha".into(), "one".into()),
            ("beta".into(), "two".into())
        ]
    );
    assert_eq!(
        status_of(&site.health_url()),
        Some(200),
        "the service serves again"
    );
    assert!(
        !site.db.with_extension("db.maintenance").exists(),
        "the flag is gone"
    );

    let backups = site.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(mode(&backups[0]), 0o600);
    let restored_view = Connection::open(&backups[0]).unwrap();
    let backed_up: i64 = restored_view
        .query_row(
            "SELECT MAX(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(backed_up, 4, "the backup holds the pre-migration database");
    assert_eq!(mode(&site.dir.path().join("migrate.journal")), 0o600);
    let journal = site.journal();
    assert!(
        journal.lines().count() >= 7
            && journal.contains("[5/7] migrate")
            && journal.contains("\tok\t"),
        "{journal}"
    );

    let again = site.xtask(&["migrate"], &env_refs(&env));
    assert!(
        again.status.success() && text(&again).contains("up to date"),
        "{}",
        text(&again)
    );
    assert_eq!(
        site.backups().len(),
        1,
        "nothing pending: no downtime, no backup"
    );
}

#[test]
fn stop_and_start_commands_window() {
    let site = Site::new();
    let env = site.service_scripts("");
    site.start_scripted();
    let pid_before = fs::read_to_string(site.dir.path().join("backend.pid")).unwrap();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let out = site.xtask(&["migrate"], &env_refs(&env));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ran `sh"), "{}", text(&out));
    assert_ne!(
        fs::read_to_string(site.dir.path().join("backend.pid")).unwrap(),
        pid_before,
        "the service was restarted"
    );
    assert_eq!(status_of(&site.health_url()), Some(200));
    assert_eq!(site.versions(), [1, 2, 3, 4, 5]);
}

#[test]
fn a_migration_failing_in_the_window_restores_the_backup_and_brings_the_service_back() {
    let site = Site::new();
    // Passes the rehearsal; fails on the row written after it (below).
    site.add_migration(
        "V5__unique_values.sql",
        "CREATE UNIQUE INDEX secrets_value_unique ON secrets (value);\n",
    );
    let write_duplicate = format!(
        "curl -sf -X POST -H 'content-type: application/json' -d '{{\"name\":\"gamma\",\"value\":\"one\"}}' http://127.0.0.1:{}/api/secrets >/dev/null || exit 9",
        site.port
    );
    let env = site.service_scripts(&write_duplicate);
    site.start_scripted();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("[5/7] migrate") && report.contains("UNIQUE constraint failed"),
        "{report}"
    );
    assert!(
        report.contains("was restored from") && report.contains("verified byte for byte"),
        "{report}"
    );
    assert_eq!(site.versions(), [1, 2, 3, 4], "back on the old schema");
    assert_eq!(
        site.secrets().len(),
        3,
        "the write made before the window survives the restore"
    );
    wait_for_health(&site.health_url(), 200);
    assert!(
        site.journal().contains("restore backup"),
        "{}",
        site.journal()
    );
}

#[test]
fn an_unhealthy_service_after_the_migration_is_not_restored_and_the_command_is_printed() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let nowhere = format!("http://127.0.0.1:{}/health", free_port());
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_HEALTH_URL", &nowhere),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "1"),
        ],
    );
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("NOT restored automatically") && report.contains("cargo xtask restore"),
        "{report}"
    );
    assert_eq!(site.versions(), [1, 2, 3, 4, 5], "the migration stays");
    assert_eq!(site.backups().len(), 1);
}

#[test]
fn a_service_that_keeps_the_database_locked_fails_the_window_and_changes_nothing() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let holder = Connection::open(&site.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = site.xtask(&["migrate"], &[("MIGRATE_LOCK_TIMEOUT_SECS", "1")]);
    let report = text(&out);
    assert!(!out.status.success());
    assert!(
        report.contains("still in use by another process"),
        "{report}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(site.versions(), [1, 2, 3, 4]);
    assert!(site.backups().is_empty());
}

#[test]
fn a_failing_stop_command_brings_the_service_back_and_changes_nothing() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let started = site.dir.path().join("started");
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_STOP", "false"),
            ("MIGRATE_START", &format!("touch {}", started.display())),
        ],
    );
    let report = text(&out);
    assert!(!out.status.success());
    assert!(
        report.contains("the stop command failed") && report.contains("`false` exited"),
        "{report}"
    );
    assert!(
        started.exists(),
        "the start command ran to bring the service back"
    );
    assert_eq!(site.versions(), [1, 2, 3, 4]);
}

#[test]
fn a_hanging_stop_command_times_out() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_STOP", "sleep 30"),
            ("MIGRATE_START", "true"),
            ("MIGRATE_COMMAND_TIMEOUT_SECS", "1"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("did not finish within 1 s"),
        "{}",
        text(&out)
    );
    assert_eq!(site.versions(), [1, 2, 3, 4]);
}

#[test]
fn preflight_failures_stop_before_any_downtime() {
    type BreakIt = Box<dyn Fn(&Site)>;
    let cases: Vec<(&str, BreakIt, &str)> = vec![
        (
            "sql error",
            Box::new(|s: &Site| {
                s.add_migration("V6__broken.sql", "ALTER TABLE nope ADD COLUMN x TEXT;\n")
            }),
            "rehearsal",
        ),
        (
            "edited applied",
            Box::new(|s: &Site| s.add_migration("V2__add_secret_expiry.sql", "-- edited\n")),
            "file changed since",
        ),
        (
            "duplicate version",
            Box::new(|s: &Site| s.add_migration("V4__again.sql", V5_INDEX)),
            "version 4 is also used by",
        ),
        (
            "stray file",
            Box::new(|s: &Site| s.add_migration("V5_missing_underscore.sql", V5_INDEX)),
            "refinery would skip it silently",
        ),
        ("corrupt database", Box::new(corrupt), "cargo xtask restore"),
    ];
    for (case, break_it, expected) in cases {
        let site = Site::new();
        site.add_migration("V5__index_created_at.sql", V5_INDEX);
        break_it(&site);
        let before = fs::read(&site.db).unwrap();
        let flag = PathBuf::from(format!("{}.maintenance", site.db.display()));
        let out = site.xtask(&["migrate"], &[("MIGRATE_MAINTENANCE", "1")]);
        let report = text(&out);
        assert!(!out.status.success(), "{case}: {report}");
        assert!(
            report.contains("[1/7] preflight") && report.contains(expected),
            "{case}: {report}"
        );
        assert!(
            !report.contains("[3/7]"),
            "{case}: the service must not go down:\n{report}"
        );
        assert!(!flag.exists(), "{case}");
        assert_eq!(
            fs::read(&site.db).unwrap(),
            before,
            "{case}: the database changed"
        );
        assert!(site.backups().is_empty(), "{case}");
    }
}

/// Flips bytes inside the secrets table's page (not the header).
fn corrupt(site: &Site) {
    let mut bytes = fs::read(&site.db).unwrap();
    for b in bytes.iter_mut().skip(4096).take(4096) {
        *b ^= 0x5a;
    }
    fs::write(&site.db, bytes).unwrap();
}

#[test]
fn bad_database_urls_and_files_are_refused() {
    let site = Site::new();
    let missing = site.dir.path().join("missing.db");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "migrate",
            "--database-url",
            &format!("sqlite:///{}", missing.display()),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("--create"),
        "{}",
        text(&out)
    );
    assert!(!missing.exists());
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["migrate", "--database-url", "mysql://x"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("sqlite:////absolute"),
        "{}",
        text(&out)
    );
    let not_sqlite = site.dir.path().join("notes.db");
    fs::write(&not_sqlite, "not a database at all\n".repeat(300)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "migrate",
            "--database-url",
            &format!("sqlite:///{}", not_sqlite.display()),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("not a usable SQLite database"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unwritable_backup_folder_stops_the_preflight() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let blocker = site.dir.path().join("not-a-folder");
    fs::write(&blocker, "x").unwrap();
    let out = site.xtask(
        &["migrate"],
        &[(
            "MIGRATE_BACKUP_DIR",
            blocker.join("backups").to_str().unwrap(),
        )],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("creating the backup folder")
            && text(&out).contains("MIGRATE_BACKUP_DIR"),
        "{}",
        text(&out)
    );
    assert_eq!(site.versions(), [1, 2, 3, 4]);
}

#[test]
fn a_created_backup_folder_is_private() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let backups = site.dir.path().join("vault/backups");
    let out = site.xtask(
        &["migrate"],
        &[("MIGRATE_BACKUP_DIR", backups.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&backups), 0o700);
    assert_eq!(
        fs::read_dir(&backups)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".bak"))
            .count(),
        1
    );
}

#[test]
fn a_second_run_fails_at_once_naming_the_holder_and_a_dead_holder_is_taken_over() {
    use std::io::Write;
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let lock_path = PathBuf::from(format!("{}.migrate.lock", site.db.display()));
    let mut held = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.write_all(b"cargo xtask migrate by pid 4242 on ops-host since 20260101T000000.000Z")
        .unwrap();
    held.lock().unwrap();
    let out = site.xtask(&["migrate"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("pid 4242 on ops-host since 20260101T000000.000Z"),
        "{}",
        text(&out)
    );
    assert_eq!(site.versions(), [1, 2, 3, 4]);

    held.unlock().unwrap();
    drop(held);
    let out = site.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "took over a migration lock left by a run that is gone (cargo xtask migrate by pid 4242"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn dry_run_rehearses_and_changes_nothing() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let before = fs::read(&site.db).unwrap();
    let out = site.xtask(&["migrate", "--dry-run"], &[("MIGRATE_MAINTENANCE", "1")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("apply     V5__index_created_at (rehearsal"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("nothing was changed"));
    assert_eq!(fs::read(&site.db).unwrap(), before);
    assert!(site.backups().is_empty() && site.journal().is_empty());
}

#[test]
fn status_is_a_deploy_gate() {
    let site = Site::new();
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        out.status.success() && text(&out).contains("up to date"),
        "{}",
        text(&out)
    );
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        !out.status.success() && text(&out).contains("pending  V5__index_created_at"),
        "{}",
        text(&out)
    );
    fs::remove_file(site.migrations.join("V5__index_created_at.sql")).unwrap();
    site.add_migration("V2__add_secret_expiry.sql", "-- edited\n");
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        !out.status.success() && text(&out).contains("CHANGED  V2__add_secret_expiry"),
        "{}",
        text(&out)
    );
}

#[test]
fn online_backups_are_verified_private_and_rotated() {
    let site = Site::new();
    let _backend = site.start_backend();
    for _ in 0..3 {
        let out = site.xtask(&["backup"], &[("MIGRATE_KEEP_BACKUPS", "2")]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("quick_check ok"));
        std::thread::sleep(Duration::from_millis(5));
    }
    let backups = site.backups();
    assert_eq!(backups.len(), 2, "rotated to the newest two: {backups:?}");
    for backup in &backups {
        assert_eq!(mode(backup), 0o600);
        let conn = Connection::open(backup).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}

#[test]
fn restore_refuses_a_database_in_use_then_restores_and_keeps_the_replaced_file() {
    let site = Site::new();
    assert!(site.xtask(&["backup"], &[]).status.success());
    Connection::open(&site.db)
        .unwrap()
        .execute("DELETE FROM secrets WHERE name = 'alpha'", [])
        .unwrap();
    {
        let _backend = site.start_backend();
        wait_for_health(&site.health_url(), 200);
        let out = site.xtask(&["restore"], &[]);
        assert!(
            !out.status.success() && text(&out).contains("refusing to restore a database in use"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(site.secrets().len(), 1);
    let out = site.xtask(&["restore"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("verified byte for byte")
            && text(&out).contains("the replaced database was kept as"),
        "{}",
        text(&out)
    );
    assert_eq!(site.secrets().len(), 2, "alpha is back");
    assert_eq!(
        site.backups().len(),
        2,
        "the replaced database became one more backup"
    );
    let out = site.xtask(&["restore", "/nonexistent/x.bak"], &[]);
    assert!(
        !out.status.success() && text(&out).contains("does not exist"),
        "{}",
        text(&out)
    );
}

/// A tmpfs of `kib` KiB mounted at `path` (the tests run as root, as CI does),
/// unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: PathBuf, kib: u64) -> SmallDisk {
        fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root: {}",
            text(&out)
        );
        SmallDisk { path }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_disk_that_fills_during_the_backup_leaves_no_partial_backup_and_the_database_unchanged() {
    let site = Site::new();
    site.add_migration("V5__index_created_at.sql", V5_INDEX);
    let disk = SmallDisk::mount(site.dir.path().join("backups"), 4096);
    let before = fs::read(&site.db).unwrap();
    // The preflight sees room; then, with the service going down, another
    // writer fills the disk to within 16 KiB, less than the database's size.
    let filler = disk.path.join("filler");
    let fill = format!(
        "dd if=/dev/zero of={} bs=1024 count={}",
        filler.display(),
        4096 - 16
    );
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_BACKUP_DIR", disk.path.to_str().unwrap()),
            ("MIGRATE_STOP", &fill),
            ("MIGRATE_START", "true"),
        ],
    );
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("[4/7] back up") && report.contains("No space left on device"),
        "{report}"
    );
    assert!(report.contains("the database was not changed"), "{report}");
    let left: Vec<String> = fs::read_dir(&disk.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["filler", "migrate.journal"],
        "nothing but the filler and the journal: {left:?}"
    );
    assert_eq!(site.versions(), [1, 2, 3, 4]);
    assert_eq!(
        fs::read(&site.db).unwrap(),
        before,
        "the database file is byte-identical"
    );
}
