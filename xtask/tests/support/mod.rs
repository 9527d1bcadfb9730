//! Shared fixtures of the runbook, fault and concurrency tests: a site (a
//! temp folder with this repository's migrations V1–V4 and a database at V4
//! holding two secrets), a real backend process, a blocking HTTP client.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses its own subset

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use rusqlite::Connection;
use tempfile::TempDir;

pub mod pg;

/// An expand migration the backend (built for V4) keeps working with.
pub const V5_INDEX: &str = "CREATE INDEX secrets_created_at ON secrets (created_at);\n";

pub fn backend_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_xtask")).with_file_name("backend");
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (it builds the backend)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp folder with migrations V1–V4 of this repository, a database
/// migrated to V4 holding two secrets, and a port for the backend.
pub struct Site {
    pub dir: TempDir,
    pub db: PathBuf,
    pub migrations: PathBuf,
    pub port: u16,
}

impl Site {
    pub fn new() -> Site {
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

    pub fn url(&self) -> String {
        format!("sqlite:///{}", self.db.display())
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args)
            .arg("--database-url")
            .arg(self.url())
            .env_remove("DATABASE_URL")
            .env_remove("XTASK_FAILPOINT")
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", self.port))
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

    pub fn start_backend(&self) -> Backend {
        Backend::start(self)
    }

    pub fn versions(&self) -> Vec<i64> {
        let conn = Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT version FROM refinery_schema_history ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn secrets(&self) -> Vec<(String, String)> {
        let conn = Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT name, value FROM secrets ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
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

/// An HTTP client that returns error statuses instead of failing on them.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

pub fn status_of(url: &str) -> Option<u16> {
    agent(Duration::from_secs(2))
        .get(url)
        .call()
        .ok()
        .map(|r| r.status().as_u16())
}

/// The child's stderr, line by line, read on a thread of its own. The thread
/// keeps draining after the receiver is gone: a full pipe would block the child.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

pub fn wait_for_health(url: &str, wanted: u16) {
    for _ in 0..200 {
        if status_of(url) == Some(wanted) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} never answered {wanted}");
}

/// A backend process started by the test itself.
pub struct Backend {
    pub child: Child,
}

impl Backend {
    pub fn start(site: &Site) -> Backend {
        let mut child = Command::new(backend_binary())
            .env("DATABASE_URL", site.url())
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", site.port))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = stderr_lines(&mut child);
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
