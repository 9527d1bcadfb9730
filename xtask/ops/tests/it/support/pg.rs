//! Postgres fixtures: a site (migrations, backup folder, backend port) that
//! points at a database of its own on the test server (`server` and
//! `PgDatabase` come from the `test-support` crate).

use std::{
    fs,
    path::PathBuf,
    process::{Command, Output},
};

use tempfile::TempDir;
#[allow(unused_imports)] // each test file uses its own subset
pub use test_support::{PgDatabase, postgres_server as server};
use test_support::{backend_command, copy_migrations_with_twins};

use super::{Backend, backend_binary, free_port, text, xtask_command};

/// `server!("test name")`: the test server, or return from the test, which
/// was skipped (and said so). At the crate root, for every test file.
#[macro_export]
macro_rules! server {
    ($test:expr) => {
        match server($test) {
            Some(url) => url,
            None => return,
        }
    };
}

/// An expand migration whose SQL both engines accept: no twin needed. Tests
/// add it as `mig(next(), "secret_note")`.
#[allow(dead_code)] // each test file uses its own subset
pub const NEXT_EXPAND: &str = "ALTER TABLE secrets ADD COLUMN note TEXT;\n";

/// A temp folder holding this repository's migrations (Postgres twins
/// included), the backups, and a port for the backend; a Postgres database
/// migrated to the latest of them holding two secrets.
pub struct PgSite {
    pub dir: TempDir,
    pub migrations: PathBuf,
    pub port: u16,
    pub db: PgDatabase,
}

impl PgSite {
    /// An empty database and the migrations, nothing applied.
    pub fn empty(server: &str) -> PgSite {
        let dir = TempDir::new().unwrap();
        let migrations = dir.path().join("migrations");
        copy_migrations_with_twins(&migrations);
        PgSite {
            migrations,
            port: free_port(),
            db: PgDatabase::create(server),
            dir,
        }
    }

    /// Migrated to the shipped latest (a first deploy: nothing runs yet, so the contract
    /// migration V3 may go through the job) with two secrets.
    pub fn new(server: &str) -> PgSite {
        let site = PgSite::empty(server);
        site.migrate_fully();
        site.insert_sealed("alpha", "one", "2026-01-01T00:00:00Z");
        site.insert_sealed("beta", "two", "2026-01-02T00:00:00Z");
        site
    }

    /// A secret written as the current backend writes it, at the latest schema.
    pub fn insert_sealed(&self, name: &str, value: &str, created_at: &str) {
        let (sealed, key_id) = super::seal(name, value);
        self.db
            .client()
            .execute(
                "INSERT INTO secrets (name, sealed_value, key_id, created_at) \
                 VALUES ($1, $2, $3, $4::text::timestamptz)",
                &[&name, &sealed, &key_id, &created_at],
            )
            .unwrap();
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
        let mut cmd = xtask_command();
        cmd.args(args)
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
            .query(
                "SELECT name, key_id, sealed_value FROM secrets ORDER BY name",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                let value = super::open_sealed(&name, r.get(1), r.get(2));
                (name, value)
            })
            .collect()
    }

    pub fn backups(&self) -> Vec<PathBuf> {
        super::backups_in(self.dir.path())
    }

    /// `Bearer <token>` for a new API token named `name` on this database,
    /// created by the real `backend token create`.
    pub fn bearer(&self, name: &str) -> String {
        format!(
            "Bearer {}",
            test_support::create_token(&backend_binary(), &self.db.url, name)
        )
    }

    /// The real backend on this database, in its own process.
    pub fn start_backend(&self) -> Backend {
        let addr = format!("127.0.0.1:{}", self.port);
        let mut cmd = backend_command(&backend_binary(), &self.db.url, &addr);
        cmd.env("SECRETS_MAINTENANCE_FLAG", self.flag());
        Backend::start(cmd)
    }
}
