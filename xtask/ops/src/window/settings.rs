//! Everything the runbook and its companion commands need to know about a
//! database and its service, resolved once: flag > environment > config.

use crate::program::OPS;
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::bail;
use secrets_contract::dburl::DatabaseUrl;

use crate::{
    engine::roles::Timeouts,
    history::{self, Engine, MigrationFile},
    paths::Site,
    pg::backups as pg_backups,
    window::service::{Mode, Service},
};

pub struct Settings {
    pub url: DatabaseUrl,
    /// What this database's backups are named after: the SQLite file, or
    /// Postgres's `pg::backups::backup_name`.
    pub backup_name: PathBuf,
    /// The local lock file of the migration lock.
    pub lock_path: PathBuf,
    /// The migrations folder; None for the commands that read none
    /// (`backup`, `restore`), which so never write out the embedded ones.
    pub migrations: Option<PathBuf>,
    pub backup_dir: PathBuf,
    pub keep_backups: usize,
    pub service: Service,
    pub health_url: Option<String>,
    pub health_timeout: Duration,
    pub lock_timeout: Duration,
    /// Postgres: lock_timeout and statement_timeout of the migration's transaction.
    pub pg_timeouts: Timeouts,
    /// `migrate --job`: how long to wait for another instance's run.
    pub job_lock_wait: Duration,
    /// `migrate --job`: how long to keep retrying after a `lock_timeout`.
    pub pg_lock_retry: Duration,
    /// The release the service must report after the window (see `release_version`).
    pub repo_version: Option<String>,
    /// Migration versions missing on purpose (`allow-gaps`).
    pub allowed_gaps: Vec<history::VersionRange>,
    /// `migrate --to N`: the files after V{N} are left for a later run.
    pub target: Option<i32>,
}

/// Whether a command reads the migration files.
pub enum Migrations<'a> {
    /// From `--migrations DIR` when given, else the checkout's or the built-in ones.
    Read(Option<&'a Path>),
    NotRead,
}

impl Settings {
    /// The migrations folder of a command that reads them.
    pub fn migrations(&self) -> anyhow::Result<&Path> {
        self.migrations.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "this command reads no migrations (a bug: report it with the command you ran)"
            )
        })
    }

    pub fn load(
        site: &Site,
        database_url: Option<&str>,
        migrations: Migrations,
    ) -> anyhow::Result<Settings> {
        let url = resolve_url(site, database_url)?;
        let config = site.migrate_config()?;
        let (backup_name, beside_db) = match &url {
            DatabaseUrl::Sqlite(path) => {
                let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
                (path.clone(), folder.unwrap_or(site.base()).to_path_buf())
            }
            // Postgres backups go to `data/` (where the default SQLite
            // database lives) unless configured.
            DatabaseUrl::Postgres(pg) => {
                (pg_backups::backup_name(pg), site.path(Path::new("data")))
            }
        };
        let in_repo = |path: String| site.path(Path::new(&path));
        let mode = match (
            &config.stop,
            &config.start,
            config.maintenance.unwrap_or(false),
        ) {
            (Some(stop), Some(start), _) if !stop.is_empty() && !start.is_empty() => {
                Mode::Commands {
                    stop: stop.clone(),
                    start: start.clone(),
                }
            }
            (Some(_), _, _) | (_, Some(_), _) => {
                bail!(
                    "set both a stop and a start command (MIGRATE_STOP and MIGRATE_START, or `stop`/`start` in [workspace.metadata.migrate]), or neither"
                )
            }
            (None, None, true) => Mode::Maintenance {
                flag: config
                    .maintenance_flag
                    .clone()
                    .map_or_else(|| site.path(&url.default_maintenance_flag()), in_repo),
            },
            (None, None, false) => Mode::Unmanaged,
        };
        check_health(config.health_url.as_deref(), config.health_timeout_secs)?;
        let backup_dir = config.backup_dir.map_or(beside_db, in_repo);
        Ok(Settings {
            migrations: match migrations {
                Migrations::Read(flag) => Some(site.migrations_dir(flag)?),
                Migrations::NotRead => None,
            },
            backup_dir: backup_dir.clone(),
            lock_path: lock_path(&url, &backup_dir, &backup_name),
            keep_backups: config.keep_backups.unwrap_or(5),
            service: Service {
                mode,
                command_timeout: Duration::from_secs(config.command_timeout_secs.unwrap_or(60)),
            },
            health_url: config.health_url,
            health_timeout: Duration::from_secs(config.health_timeout_secs.unwrap_or(30)),
            lock_timeout: Duration::from_secs(config.lock_timeout_secs.unwrap_or(10)),
            pg_timeouts: Timeouts {
                lock: Duration::from_secs(config.pg_lock_timeout_secs.unwrap_or(5)),
                statement: Duration::from_secs(config.pg_statement_timeout_secs.unwrap_or(300)),
            },
            job_lock_wait: Duration::from_secs(config.job_lock_wait_secs.unwrap_or(600)),
            pg_lock_retry: Duration::from_secs(config.pg_lock_retry_secs.unwrap_or(60)),
            repo_version: release_version(site),
            allowed_gaps: config.allow_gaps.unwrap_or_default(),
            target: None,
            url,
            backup_name,
        })
    }
}

impl Settings {
    /// The migrations as this engine runs them, read strictly. Gaps are
    /// refused by [`Settings::refuse_gaps`], after the database's history
    /// had its say: a file vanished from an applied history is better named
    /// by the history than as a gap.
    pub fn migration_files(&self) -> anyhow::Result<Vec<MigrationFile>> {
        history::load_up_to(self.migrations()?, self.engine(), self.target)
    }

    /// `--to N` on a database already past V{N}: migrations only go forward.
    pub fn refuse_past_target(&self, current: i32) -> anyhow::Result<()> {
        match self.target {
            Some(target) if current > target => bail!(
                "--to {target}: the database is at schema version {current} already, past {target}; migrations \
                 only go forward (to go back, restore the backup taken before the later migrations: `{OPS} \
                 restore`). Nothing was changed"
            ),
            _ => Ok(()),
        }
    }

    /// A version missing between 1 and the newest file is an error unless
    /// `allow-gaps` lists it.
    pub fn refuse_gaps(&self, files: &[MigrationFile]) -> anyhow::Result<()> {
        history::refuse_gaps(files, &self.allowed_gaps)
    }

    /// The gaps [`Settings::refuse_gaps`] refuses, one line each.
    pub fn gap_problems(&self, files: &[MigrationFile]) -> Vec<String> {
        history::gap_problems(files, &self.allowed_gaps)
    }

    /// Before anything is read, locked, journaled or created: a SQLite
    /// database that is not there is said to be missing (and its folder,
    /// when that is missing too), with `hint` saying what to do. With
    /// `folder_only` (restore, which may put a lost file back), only a
    /// missing folder is refused.
    pub fn require_database(&self, hint: &str, folder_only: bool) -> anyhow::Result<()> {
        let DatabaseUrl::Sqlite(path) = &self.url else {
            return Ok(());
        };
        if let Ok(meta) = std::fs::metadata(path) {
            return refuse_unless_regular(path, &meta);
        }
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        match folder {
            Some(folder) if !folder.exists() => bail!(
                "the database {} does not exist (its folder {} does not exist either): check DATABASE_URL, {hint}",
                path.display(),
                folder.display()
            ),
            _ if folder_only => Ok(()),
            _ => bail!(
                "the database {} does not exist: check DATABASE_URL, {hint}",
                path.display()
            ),
        }
    }

    /// Which engine `url` names: it picks the migration files.
    pub fn engine(&self) -> Engine {
        match self.url {
            DatabaseUrl::Sqlite(_) => Engine::Sqlite,
            DatabaseUrl::Postgres(_) => Engine::Postgres,
        }
    }
}

/// The local lock file of the migration lock: beside a SQLite file; for
/// Postgres in the backup folder (the server's advisory lock serializes
/// hosts; this file lets the next run on this host find a dead run's
/// leftovers: its maintenance flag, its temp files).
fn lock_path(url: &DatabaseUrl, backup_dir: &Path, backup_name: &Path) -> PathBuf {
    match url {
        DatabaseUrl::Sqlite(path) => crate::run_lock::path_for(path),
        DatabaseUrl::Postgres(_) => crate::run_lock::path_for(&backup_dir.join(backup_name)),
    }
}

/// SQLite on a FIFO, a folder or a device fails later with a bare "disk
/// I/O error", after the lock file and journal were written: say what it is.
fn refuse_unless_regular(path: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    bail!(
        "the database {} is not a regular file: it {}; point DATABASE_URL (or --database-url) at the SQLite database file",
        crate::quote::path(path),
        crate::fsutil::what_it_is(meta)
    )
}

/// The health settings are checked before anything goes down: a typo found
/// only after the migration committed would leave the service unverified.
fn check_health(url: Option<&str>, timeout_secs: Option<u64>) -> anyhow::Result<()> {
    if timeout_secs == Some(0) {
        bail!(
            "MIGRATE_HEALTH_TIMEOUT_SECS (health-timeout-secs) is 0: that leaves the service no time to answer; \
             use at least 1 (default 30)"
        );
    }
    let Some(url) = url else {
        return Ok(());
    };
    let parsed = url.parse::<ureq::http::Uri>().ok();
    let usable = parsed.as_ref().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|h| !h.is_empty())
    });
    if !usable {
        bail!(
            "MIGRATE_HEALTH_URL (health-url) `{}` is not an http:// or https:// URL with a host: set it to the \
             service's health endpoint, e.g. http://127.0.0.1:8000/health",
            crate::redact::redact(url)
        );
    }
    Ok(())
}

/// `--database-url`, else `$DATABASE_URL`, else the service's default; a
/// relative SQLite path taken from the repository root, and said so once.
/// clap fills the flag from `DATABASE_URL` (so `--help` shows it), and an
/// empty value is refused rather than taken to mean the default database.
fn resolve_url(site: &Site, flag: Option<&str>) -> anyhow::Result<DatabaseUrl> {
    let parsed = match flag {
        Some(url) if url.trim().is_empty() => bail!(
            "--database-url is empty, or DATABASE_URL is set but empty: give a URL, or unset DATABASE_URL \
             to use the default ({})",
            secrets_contract::dburl::DEFAULT
        ),
        Some(url) => DatabaseUrl::parse(url),
        None => DatabaseUrl::from_env(),
    }?;
    Ok(match parsed {
        DatabaseUrl::Sqlite(path) if path.is_relative() => {
            let path = site.path(&path);
            // On stderr: stdout may be a machine-readable document.
            eprintln!(
                "database: {} ({})",
                crate::quote::path(&path),
                site.relative_rule()
            );
            DatabaseUrl::Sqlite(path)
        }
        other => other,
    })
}

/// The release the service must report once it is back up: in a checkout,
/// the version its service crate declares (`cargo xtask version` keeps every
/// other place in step); on an installed host, this binary's own, as the
/// service and this tool ship in one bundle.
fn release_version(site: &Site) -> Option<String> {
    let Some(root) = site.repo() else {
        return Some(env!("CARGO_PKG_VERSION").to_owned());
    };
    let text = std::fs::read_to_string(root.join("backend/Cargo.toml")).ok()?;
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    Some(doc.get("package")?.get("version")?.as_str()?.to_owned())
}
