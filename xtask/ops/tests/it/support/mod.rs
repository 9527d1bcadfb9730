//! Shared fixtures of the xtask's tests: the xtask binary, a site (a temp
//! folder with this repository's migrations and a database at the latest of
//! them holding two secrets), a real backend process. The shipped history
//! grows, so tests name their own migrations from `next()` on and assert
//! versions relative to `shipped_latest()`, never a literal number. What the backend's tests
//! use too (Postgres, the backend process, the HTTP client, the migrations)
//! comes from the `test-support` crate, re-exported here.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses its own subset

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use rusqlite::Connection;
use tempfile::TempDir;
#[allow(unused_imports)] // each test file uses its own subset
pub use test_support::{
    Backend, agent, agent_with_timeout, backend_command, copy_migrations, free_port,
    migrations_dir, repo_root, sqlite_url, status_of, stderr_lines, test_key_file, wait_for_health,
};

pub mod lint_cases;
#[macro_use]
pub mod pg;

/// An expand migration the backend (built for the shipped latest) keeps
/// working with.
pub const NEXT_INDEX: &str = "CREATE INDEX secrets_created_at ON secrets (created_at);\n";

/// The highest version among this repository's `migrations/V{n}__*.sql`,
/// read from the folder once per test binary.
pub fn shipped_latest() -> u32 {
    static LATEST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LATEST.get_or_init(|| {
        test_support::migration_files(&migrations_dir())
            .iter()
            .filter_map(|f| test_support::migration_version(f))
            .max()
            .expect("the repository's migrations/ folder holds no V{n}__*.sql file")
    })
}

/// The first version after the shipped history: a test's own migrations are
/// `next()`, `next() + 1`, …
pub fn next() -> u32 {
    shipped_latest() + 1
}

/// The migration `V{version}__{name}` as the xtask's messages name it.
pub fn mig_name(version: u32, name: &str) -> String {
    format!("V{version}__{name}")
}

/// The file name `V{version}__{name}.sql`.
pub fn mig(version: u32, name: &str) -> String {
    format!("{}.sql", mig_name(version, name))
}

/// Versions a history should hold, comparable with what either engine's
/// history reads (SQLite's `Vec<i64>`, Postgres' `Vec<i32>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Versions(pub Vec<i64>);

impl PartialEq<Versions> for Vec<i64> {
    fn eq(&self, expected: &Versions) -> bool {
        *self == expected.0
    }
}

impl PartialEq<Versions> for Vec<i32> {
    fn eq(&self, expected: &Versions) -> bool {
        self.iter()
            .map(|v| i64::from(*v))
            .eq(expected.0.iter().copied())
    }
}

/// The versions 1 to `last`, as a history records them.
pub fn versions_to(last: u32) -> Versions {
    Versions((1..=i64::from(last)).collect())
}

/// The versions a database migrated to the shipped latest records.
pub fn shipped() -> Versions {
    versions_to(shipped_latest())
}

/// `cargo xtask` as a checkout runs it: the xtask binary, which runs the
/// operations binary cargo built for these tests (`$SECRETS_OPS`), with
/// nothing set that would steer it from outside the test: no failpoint, no
/// `DATABASE_URL` (a developer's own database), no settings file. Every test
/// runs the xtask through this.
pub fn xtask_command() -> Command {
    let mut cmd = Command::new(workspace_binary("xtask"));
    let bench = Path::new(env!("CARGO_BIN_EXE_secrets-ops")).with_file_name("secrets-bench");
    if bench.is_file() {
        cmd.env("SECRETS_BENCH", bench);
    }
    cmd.env("SECRETS_OPS", env!("CARGO_BIN_EXE_secrets-ops"))
        .env_remove("XTASK_FAILPOINT")
        .env_remove("DATABASE_URL")
        .env_remove("SECRETS_OPS_CONFIG")
        .env_remove("SECRETS_OPS_AS");
    cmd
}

/// The operations binary as it ships (`secrets-ops`), with nothing set that
/// would steer it from outside the test.
pub fn ops_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secrets-ops"));
    cmd.env_remove("XTASK_FAILPOINT")
        .env_remove("DATABASE_URL")
        .env_remove("SECRETS_OPS_CONFIG")
        .env_remove("SECRETS_OPS_AS");
    cmd
}

/// A binary of another workspace crate, which `cargo test --workspace`
/// builds beside the operations binary (`make test-faults` builds the
/// xtask with its failpoints first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_secrets-ops")).with_file_name(name);
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (it builds every binary)",
        path.display()
    );
    path
}

/// The backend binary, which `cargo test --workspace` builds beside the xtask.
pub fn backend_binary() -> PathBuf {
    workspace_binary("backend")
}

/// A temp folder with this repository's migrations, a database migrated to
/// the latest of them holding two secrets, and a port for the backend.
pub struct Site {
    pub dir: TempDir,
    pub db: PathBuf,
    pub migrations: PathBuf,
    pub port: u16,
}

impl Site {
    pub fn new() -> Site {
        let site = Site::new_empty();
        let out = site.xtask(&["migrate", "--create"], &[]);
        assert!(out.status.success(), "{}", text(&out));
        for backup in site.backups() {
            fs::remove_file(backup).unwrap();
        }
        fs::remove_file(site.dir.path().join("migrate.journal")).unwrap();
        let conn = Connection::open(&site.db).unwrap();
        insert_sealed(&conn, "alpha", "one", "2026-01-01T00:00:00Z");
        insert_sealed(&conn, "beta", "two", "2026-01-02T00:00:00Z");
        site
    }

    /// The folder and the migrations; no database yet.
    pub fn new_empty() -> Site {
        let dir = TempDir::new().unwrap();
        let migrations = dir.path().join("migrations");
        copy_migrations(&migrations, None);
        Site {
            db: dir.path().join("secrets.db"),
            dir,
            migrations,
            port: free_port(),
        }
    }

    pub fn url(&self) -> String {
        sqlite_url(&self.db)
    }

    pub fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    pub fn add_migration(&self, name: &str, sql: &str) {
        fs::write(self.migrations.join(name), sql).unwrap();
    }

    pub fn xtask(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    /// The xtask command line for this site, not yet run.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = xtask_command();
        cmd.args(args)
            .arg("--database-url")
            .arg(self.url())
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", self.port))
            .env("SECRETS_KEY_FILE", test_key_file())
            .env("BACKEND", backend_binary())
            .env("SITE", self.dir.path());
        if args[0] == "migrate" {
            cmd.arg("--migrations").arg(&self.migrations);
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Maintenance mode and the health URL, as an operator would set them.
    pub fn maintenance_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MIGRATE_MAINTENANCE", "1".into()),
            ("MIGRATE_HEALTH_URL", self.health_url()),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "10".into()),
        ]
    }

    /// `Bearer <token>` for a new API token named `name` on this site's
    /// database, created by the real `backend token create`.
    pub fn bearer(&self, name: &str) -> String {
        format!(
            "Bearer {}",
            test_support::create_token(&backend_binary(), &self.url(), name)
        )
    }

    /// The real backend on this site's database and port, in its own process.
    pub fn start_backend(&self) -> Backend {
        let addr = format!("127.0.0.1:{}", self.port);
        Backend::start(backend_command(&backend_binary(), &self.url(), &addr))
    }

    pub fn versions(&self) -> Vec<i64> {
        versions_of(&self.db)
    }

    /// Every secret's name and value, opened with the test key.
    pub fn secrets(&self) -> Vec<(String, String)> {
        let conn = Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT name, key_id, sealed_value FROM secrets ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|row| {
                let (name, key_id, sealed): (String, String, Vec<u8>) = row.unwrap();
                let value = open_sealed(&name, &key_id, &sealed);
                (name, value)
            })
            .collect()
    }

    pub fn backups(&self) -> Vec<PathBuf> {
        backups_in(self.dir.path())
    }

    pub fn journal(&self) -> String {
        fs::read_to_string(self.dir.path().join("migrate.journal")).unwrap_or_default()
    }

    /// Writes `stop.sh` and `start.sh` that manage a backend through a pid file.
    pub fn service_scripts(&self, before_stop: &str) -> Vec<(&'static str, String)> {
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
    pub fn start_scripted(&self) {
        let status = Command::new("sh")
            .arg(self.dir.path().join("start.sh"))
            .env("BACKEND", backend_binary())
            .env("SITE", self.dir.path())
            .env("DATABASE_URL", self.url())
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", self.port))
            .env("SECRETS_KEY_FILE", test_key_file())
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

/// The keys of `test_key_file()`, read by the backend's own code.
pub fn test_keys() -> &'static backend::seal::Keyring {
    static KEYS: std::sync::OnceLock<backend::seal::Keyring> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| backend::seal::keyfile::read(&test_key_file()).unwrap())
}

/// `value` sealed for the secret `name` as the backend seals it: the
/// sealed bytes and the key id.
pub fn seal(name: &str, value: &str) -> (Vec<u8>, String) {
    let sealed = test_keys().seal(name, value).unwrap();
    (sealed.bytes, sealed.key_id)
}

/// The value of the secret `name`, sealed under `key_id`.
pub fn open_sealed(name: &str, key_id: &str, sealed: &[u8]) -> String {
    test_keys().open(name, key_id, sealed).unwrap()
}

/// A secret written as the current backend writes it, at the latest schema.
pub fn insert_sealed(conn: &Connection, name: &str, value: &str, created_at: &str) {
    let (sealed, key_id) = seal(name, value);
    conn.execute(
        "INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![name, sealed, key_id, created_at],
    )
    .unwrap();
}

/// The `.bak` files in `dir`, oldest first (their names carry the time).
pub fn backups_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    found.sort();
    found
}

pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A temporary git repository on `main` whose version (0.1.0) is written in
/// three files plus a changelog: `release 0.2.0` rewrites four files.
pub fn release_repo() -> TempDir {
    let dir = TempDir::new().unwrap();
    let files = [
        (
            "Cargo.toml",
            "[workspace]\nmembers = []\n\n[workspace.metadata.release]\nbranches = [\"main\"]\nfiles = [\n    { path = \"backend/Cargo.toml\", toml = \"package.version\" },\n    { path = \"frontend/package.json\", json = \"/version\" },\n    { path = \"VERSION.txt\", regex = 'v=(\\S+)' },\n]\n",
        ),
        (
            "backend/Cargo.toml",
            "[package]\nname = \"backend\"\nversion = \"0.1.0\"\n",
        ),
        (
            "frontend/package.json",
            "{\n  \"name\": \"ui\",\n  \"version\": \"0.1.0\"\n}\n",
        ),
        ("VERSION.txt", "v=0.1.0\n"),
        (
            "CHANGELOG.md",
            "# Changelog\n\n## [Unreleased]\n\n- things\n",
        ),
    ];
    for (path, text) in files {
        let abs = dir.path().join(path);
        fs::create_dir_all(abs.parent().unwrap()).unwrap();
        fs::write(abs, text).unwrap();
    }
    for args in [
        &["init", "--quiet", "--initial-branch=main"][..],
        &["config", "user.name", "Release Tester"],
        &["config", "user.email", "tester@example.test"],
        &["config", "commit.gpgsign", "false"],
        &["add", "--all"],
        &["commit", "--quiet", "-m", "initial"],
    ] {
        git(dir.path(), args);
    }
    dir
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// A site with a backup holding two secrets and a live database holding one.
pub fn restore_site() -> Site {
    let site = Site::new();
    assert!(site.xtask(&["backup"], &[]).status.success());
    Connection::open(&site.db)
        .unwrap()
        .execute("DELETE FROM secrets WHERE name = 'alpha'", [])
        .unwrap();
    site
}

/// The versions recorded in the SQLite database at `db`, in order.
#[allow(dead_code)] // each test file uses its own subset
pub fn versions_of(db: &Path) -> Vec<i64> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT version FROM refinery_schema_history ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
