//! Postgres fixtures: a database of its own on the test server
//! (`TEST_POSTGRES_URL`, set by `.ci/run`), dropped afterwards, and a site
//! (migrations, backup folder, backend port) that points at it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use postgres::{Client, NoTls};
use tempfile::TempDir;

use super::{backend_binary, free_port, stderr_lines, text};

/// The test server's URL; None (the test named as skipped on stderr) when
/// none is configured. With `REQUIRE_POSTGRES=1` (CI) its absence fails.
pub fn server(test: &str) -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("{test}: REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: it needs Postgres; set TEST_POSTGRES_URL=postgres://user@host/db"
            );
            None
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let cut = base.rfind('/').unwrap();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{name}{query}", &base[..cut])
}

/// A fresh, empty database on the test server, dropped on drop.
pub struct PgDatabase {
    server: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(server: &str) -> PgDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "xtask_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = Client::connect(server, NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        PgDatabase {
            server: server.to_owned(),
            url: with_database(server, &name),
            name,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap()
    }

    pub fn versions(&self) -> Vec<i32> {
        self.client()
            .query(
                "SELECT version FROM refinery_schema_history ORDER BY version",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.server, NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A temp folder holding this repository's migrations (Postgres twins
/// included), the backups, and a port for the backend; a Postgres database
/// migrated to V4 holding two secrets.
pub struct PgSite {
    pub dir: TempDir,
    pub migrations: PathBuf,
    pub port: u16,
    pub db: PgDatabase,
}

fn copy_migrations(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for sub in ["", "postgres"] {
        fs::create_dir_all(to.join(sub)).unwrap();
        for entry in fs::read_dir(repo.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && (name.starts_with('V') || name == "schema.sql") {
                fs::copy(&path, to.join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
}

impl PgSite {
    /// An empty database and the migrations, nothing applied.
    pub fn empty(server: &str) -> PgSite {
        let dir = TempDir::new().unwrap();
        let migrations = dir.path().join("migrations");
        copy_migrations(&migrations);
        PgSite {
            migrations,
            port: free_port(),
            db: PgDatabase::create(server),
            dir,
        }
    }

    /// Migrated to V4 (a first deploy: nothing runs yet, so the contract
    /// migration V3 may go through the job) with two secrets.
    pub fn new(server: &str) -> PgSite {
        let site = PgSite::empty(server);
        site.migrate_fully();
        site.db
            .client()
            .batch_execute(
                "INSERT INTO secrets (name, value, created_at) VALUES \
                 ('alpha', 'one', '2026-01-01T00:00:00Z'), ('beta', 'two', '2026-01-02T00:00:00Z')",
            )
            .unwrap();
        site
    }

    /// Every migration, through the job (a first deploy).
    pub fn migrate_fully(&self) {
        let out = self.xtask(&["migrate", "--job", "--allow-contract"], &[]);
        assert!(out.status.success(), "{}", text(&out));
    }

    pub fn add_migration(&self, name: &str, sql: &str) {
        fs::write(self.migrations.join(name), sql).unwrap();
    }

    pub fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    pub fn flag(&self) -> PathBuf {
        self.dir.path().join("maintenance")
    }

    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args)
            .env_remove("XTASK_FAILPOINT")
            .env("DATABASE_URL", &self.db.url)
            .env("MIGRATE_BACKUP_DIR", self.dir.path())
            .env("SECRETS_MAINTENANCE_FLAG", self.flag());
        if matches!(args[0], "migrate" | "migrations") {
            cmd.arg("--migrations").arg(&self.migrations);
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    pub fn xtask(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    /// `cargo xtask db copy` from a SQLite site into this database, with
    /// this site's migrations.
    pub fn copy_from(&self, source: &super::Site) -> Output {
        let migrations = self.migrations.display().to_string();
        let args = [
            "db",
            "copy",
            "--migrations",
            &migrations,
            "--from",
            &source.url(),
            "--to",
            &self.db.url,
        ];
        self.xtask(&args, &[])
    }

    /// Maintenance mode and the health URL, as an operator would set them.
    pub fn maintenance_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MIGRATE_MAINTENANCE", "1".into()),
            ("MIGRATE_HEALTH_URL", self.health_url()),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "10".into()),
        ]
    }

    pub fn secrets(&self) -> Vec<(String, String)> {
        self.db
            .client()
            .query("SELECT name, value FROM secrets ORDER BY name", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    pub fn backups(&self) -> Vec<PathBuf> {
        super::backups_in(self.dir.path())
    }

    /// The real backend on this database, in its own process.
    pub fn start_backend(&self) -> super::Backend {
        let mut child = Command::new(backend_binary())
            .env("DATABASE_URL", &self.db.url)
            .env("SECRETS_ADDR", format!("127.0.0.1:{}", self.port))
            .env("SECRETS_MAINTENANCE_FLAG", self.flag())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = stderr_lines(&mut child);
        let backend = super::Backend { child };
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
            if line.contains("listening on") {
                return backend;
            }
        }
        panic!("the backend did not start on Postgres");
    }
}
