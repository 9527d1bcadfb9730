//! NAME
//!     cargo xtask migrate — the production maintenance window for SQLite
//!
//! SYNOPSIS
//!     cargo xtask migrate [--database-url URL] [--migrations DIR] [--create] [--dry-run]
//!     cargo xtask migrate status [--database-url URL] [--migrations DIR]
//!
//! DESCRIPTION
//!     The steps, printed as `[n/7] step … time`, each also appended to the
//!     journal in the backup folder:
//!       1. take the migration lock (runs are serialized; a lock left by a
//!          dead run is taken over and its leftovers cleaned up)
//!       2. preflight, while the service still runs: migration files, applied
//!          history, integrity and foreign keys and a rehearsal of the pending
//!          migrations on a snapshot, free space for the backup
//!       3. take the service down, then lock the database exclusively
//!       4. back up: checkpoint, verified copy (0600), rotate
//!       5. migrate, beside the backup: all pending migrations in one
//!          transaction, quick_check, committed only once the backup is verified
//!       6. bring the service up and wait until /health is healthy
//!       7. release the lock; print downtime, backup and migrations
//!     A failure in steps 3–5 restores the backup (if one was taken) and brings
//!     the service back on the old schema. An unhealthy service after a
//!     successful migration is not restored automatically: it may have taken
//!     writes already; the restore command is printed instead.

pub mod backup;
pub mod journal;
mod postgres;
pub mod recover;
pub mod restore;
pub mod service;
pub mod settings;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use backend::dburl::DatabaseUrl;
use refinery_core::Migration;
use rusqlite::Connection;

use crate::{
    engine::backups::{self, Backup},
    engine::pg,
    engine::sqlite,
    failpoint,
    flags::{MigrateAction, MigrateArgs},
    history::{self, MigrationFile},
    redact::redact,
    run_lock::MigrationLock,
};

use journal::Journal;
use postgres as migrate_pg;
use settings::Settings;

pub use postgres::{EXIT_REFUSED, Refused};

const STEPS: usize = 7;

pub fn run(repo: &Path, args: &MigrateArgs) -> anyhow::Result<()> {
    let settings = Settings::load(
        repo,
        args.database_url.as_deref(),
        args.migrations.as_deref(),
    )?;
    match (args.action.as_ref(), &settings.url) {
        (Some(MigrateAction::Status), _) => status(&settings),
        (None, DatabaseUrl::Postgres(pg)) if args.job => {
            migrate_pg::job(&settings, pg, args.allow_contract)
        }
        (None, DatabaseUrl::Sqlite(_)) if args.job => bail!(
            "--job needs Postgres: a SQLite database serves one instance, so its migrations run in the \
             maintenance window (`cargo xtask migrate` without --job)"
        ),
        (None, DatabaseUrl::Postgres(pg)) => {
            migrate_pg::runbook(&settings, pg, args.create, args.dry_run)
        }
        (None, DatabaseUrl::Sqlite(_)) => runbook(&settings, args.create, args.dry_run),
    }
}

/// `--database-url`, else `$DATABASE_URL`, else the service's default.
pub fn database_url(flag: Option<&str>) -> anyhow::Result<DatabaseUrl> {
    let parsed = match flag {
        Some(url) => DatabaseUrl::parse(url),
        None => DatabaseUrl::from_env(),
    };
    Ok(parsed?)
}

/// The runbook: the seven steps, in order.
fn runbook(settings: &Settings, create: bool, dry_run: bool) -> anyhow::Result<()> {
    println!(
        "migrate {} ({}; backups in {})",
        settings.url,
        settings.service.describe(),
        settings.backup_dir.display()
    );
    let journal = Journal::new(&settings.backup_dir, "migrate");
    let mut steps = Steps::new(&journal, dry_run);
    // The lock comes first so that two runs started together serialize on
    // it before either reads the database; a dry run changes nothing and
    // needs none.
    let _lock = if dry_run {
        steps.skip("take the migration lock", "dry run: nothing will change");
        None
    } else {
        Some(steps.run("take the migration lock", || take_lock(settings, create))?)
    };
    // A dry run changes nothing, not even by creating the database file.
    let plan = steps.run("preflight", || preflight(settings, create && !dry_run))?;
    if plan.pending.is_empty() {
        println!(
            "up to date at schema version {}: nothing to do, the service was not touched",
            plan.current
        );
        return Ok(());
    }
    if dry_run {
        print_plan(settings, &plan);
        return Ok(());
    }
    let window = Instant::now();
    let mut db = steps.run("take the service down", || take_service_down(settings))?;
    // Steps 4 and 5 run side by side: see `back_up_and_migrate`.
    let (backed_up, migrated) = back_up_and_migrate(&mut db, settings, &plan);
    let backup = match steps.report("back up", backed_up) {
        Ok(backup) => backup,
        Err(error) => return fail_before_traffic(settings, &mut steps, db, None, error),
    };
    if let Err(error) = steps.report("migrate (beside the backup)", migrated) {
        return fail_before_traffic(settings, &mut steps, db, Some(&backup), error);
    }
    drop(db);
    if let Err(error) = steps.run("bring the service up", || {
        bring_up_at(settings, plan.target())
    }) {
        return Err(unhealthy_after_migration(settings, error, &backup.path));
    }
    let downtime = window.elapsed();
    steps.record(
        "summary",
        downtime,
        "ok",
        &format!("downtime {downtime:.2?}; backup {}", backup.path.display()),
    );
    println!(
        "[7/7] done: {} migration(s) applied ({}); schema version {} -> {}; downtime {:.2} s; backup {}",
        plan.pending.len(),
        plan.pending
            .iter()
            .map(MigrationFile::stem)
            .collect::<Vec<_>>()
            .join(", "),
        plan.current,
        plan.target(),
        downtime.as_secs_f64(),
        backup.path.display()
    );
    println!("journal: {}", journal.path().display());
    Ok(())
}

/// What the window will do, settled while the service still runs.
struct Plan {
    files: Vec<MigrationFile>,
    pending: Vec<MigrationFile>,
    current: i32,
    rehearsal: Vec<(String, Duration)>,
}

impl Plan {
    fn target(&self) -> i32 {
        self.pending.last().map_or(self.current, |m| m.version)
    }
}

/// Step 1: everything that can fail before any downtime.
fn preflight(settings: &Settings, create: bool) -> anyhow::Result<(Plan, String)> {
    let files = history::load_for(&settings.migrations, settings.engine())?;
    if create && !settings.db.exists() {
        sqlite::open(&settings.db, true)?;
    }
    let conn = sqlite::open(&settings.db, false)?;
    let comparison = compare(&conn, &files).with_context(|| {
        format!(
            "{} cannot be read (is it corrupt?): nothing went down; check it with `PRAGMA integrity_check`, \
             or restore a backup with `cargo xtask restore`",
            settings.db.display()
        )
    })?;
    comparison.refuse_inconsistency()?;
    let pending: Vec<MigrationFile> = comparison.pending.into_iter().cloned().collect();
    let current = comparison.current;
    backups::ensure_dir(&settings.backup_dir)?;
    backups::ensure_space(&settings.backup_dir, settings.database_bytes())?;
    if pending.is_empty() {
        return Ok((
            Plan {
                files,
                pending,
                current,
                rehearsal: Vec::new(),
            },
            format!("up to date at version {current}"),
        ));
    }
    let rehearsal = rehearse(&conn, &files, &pending, &settings.backup_dir)?;
    let detail = format!(
        "{} pending; snapshot passes integrity and foreign key checks; rehearsal {}",
        pending.len(),
        rehearsal
            .iter()
            .map(|(m, t)| format!("{m} {:.1} ms", t.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((
        Plan {
            files,
            pending,
            current,
            rehearsal,
        },
        detail,
    ))
}

/// A consistent snapshot (online backup API), checked, then the pending
/// migrations applied to it one at a time through the same code as the real run.
fn rehearse(
    conn: &Connection,
    files: &[MigrationFile],
    pending: &[MigrationFile],
    dir: &Path,
) -> anyhow::Result<Vec<(String, Duration)>> {
    let snapshot_dir = tempfile::Builder::new()
        .prefix(".xtask-rehearsal-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a rehearsal folder in {}", dir.display()))?;
    let snapshot = snapshot_dir.path().join("snapshot.db");
    conn.backup(
        rusqlite::MAIN_DB,
        &snapshot,
        None::<fn(rusqlite::backup::Progress)>,
    )
    .context("taking a snapshot for the rehearsal")?;
    let mut copy = sqlite::open(&snapshot, false)?;
    let mut problems = sqlite::integrity_problems(&copy, "integrity_check")
        .context("integrity_check on the snapshot")?;
    problems.extend(
        sqlite::foreign_key_violations(&copy).context("foreign_key_check on the snapshot")?,
    );
    if !problems.is_empty() {
        bail!(
            "the database fails its integrity or foreign key checks, before any change: {}. Restore a good backup \
             (`cargo xtask restore`) and investigate; nothing went down",
            problems.join("; ")
        );
    }
    let mut timings = Vec::new();
    for migration in pending {
        let upto: Vec<MigrationFile> = files
            .iter()
            .filter(|f| f.version <= migration.version)
            .cloned()
            .collect();
        let start = Instant::now();
        sqlite::apply_pending(&mut copy, &upto)
            .context("the rehearsal on a snapshot failed; nothing went down")?;
        timings.push((migration.stem(), start.elapsed()));
    }
    Ok(timings)
}

fn print_plan(settings: &Settings, plan: &Plan) {
    println!("dry run: the window would");
    println!("  lock      {}", settings.lock_path().display());
    println!("  take down {}", settings.service.describe());
    println!(
        "  back up   to {} (keep {})",
        settings.backup_dir.display(),
        settings.keep_backups
    );
    for (migration, time) in &plan.rehearsal {
        println!(
            "  apply     {migration} (rehearsal {:.1} ms)",
            time.as_secs_f64() * 1000.0
        );
    }
    print_bring_up(settings, plan.target());
    println!("dry run: nothing was changed");
}

/// Step 1: the lock; a lock left by a run that died means its leftovers
/// (temp files, a service left down) are cleaned up first.
fn take_lock(settings: &Settings, create: bool) -> anyhow::Result<(MigrationLock, String)> {
    if create {
        let folder = settings.db.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(folder) = folder {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating the database folder {}", folder.display()))?;
        }
    }
    let lock = MigrationLock::acquire(&settings.lock_path(), "cargo xtask migrate")?;
    failpoint::hit("after-lock")?;
    let Some(holder) = lock.stale.clone() else {
        let detail = lock.path.display().to_string();
        return Ok((lock, detail));
    };
    eprintln!("warning: took over a migration lock left by a run that is gone ({holder})");
    let recovered = recover::leftovers(settings);
    for line in &recovered {
        eprintln!("recovered: {line}");
    }
    let detail = format!(
        "{} (took over a stale lock: {holder}; {})",
        lock.path.display(),
        recovered.join("; ")
    );
    Ok((lock, detail))
}

/// Step 3: service down, then prove nobody else holds the database.
fn take_service_down(settings: &Settings) -> anyhow::Result<(Connection, String)> {
    take_down_then(settings, || {
        failpoint::hit("after-service-down")?;
        let conn = lock_database(&settings.db, settings.lock_timeout)?;
        Ok((conn, "database locked exclusively"))
    })
}

/// Step 3 on either engine: the service goes down, then `prove_quiet` shows
/// the database is no longer in use. If either fails, the service is brought
/// back before the error is returned.
pub fn take_down_then<T>(
    settings: &Settings,
    prove_quiet: impl FnOnce() -> anyhow::Result<(T, &'static str)>,
) -> anyhow::Result<(T, String)> {
    let down = match settings.service.take_down() {
        Ok(detail) => detail,
        Err(error) => {
            let back = settings.service.bring_up();
            return Err(error.context(format!(
                "the service could not be taken down; tried to bring it back: {}",
                outcome(&back)
            )));
        }
    };
    match prove_quiet() {
        Ok((value, quiet)) => Ok((value, format!("{down}; {quiet}"))),
        Err(error) => {
            let back = settings.service.bring_up();
            Err(error.context(format!("brought the service back: {}", outcome(&back))))
        }
    }
}

/// Step 6 failed after a committed migration: the service is brought up once
/// more, and nothing is restored (it may have taken writes already); the
/// error says how to roll back by hand.
pub fn unhealthy_after_migration(
    settings: &Settings,
    error: anyhow::Error,
    backup: &Path,
) -> anyhow::Error {
    // Whatever failed, the migration stands: the service must not be left
    // down on it (bringing it up twice is harmless).
    let up = settings.service.bring_up();
    error.context(format!(
        "the migration succeeded but the service is not healthy (tried to bring it up once more: {}). It was NOT \
         restored automatically: it may already have taken writes that a restore would lose. Investigate; to roll \
         back, stop the service and run\n  cargo xtask restore {} --database-url '{}'",
        outcome(&up),
        backup.display(),
        settings.url
    ))
}

/// The dry run's last line of the plan.
pub fn print_bring_up(settings: &Settings, schema_version: i32) {
    match &settings.health_url {
        Some(url) => println!(
            "  bring up and wait for {} (schema_version {schema_version})",
            redact(url)
        ),
        None => println!("  bring up (no health URL configured: health not checked)"),
    }
}

pub fn outcome(result: &anyhow::Result<String>) -> String {
    match result {
        Ok(detail) => detail.clone(),
        Err(e) => format!("FAILED: {e:#}"),
    }
}

/// A connection holding SQLite's exclusive lock until it is dropped.
pub fn lock_database(db: &Path, timeout: Duration) -> anyhow::Result<Connection> {
    let conn = sqlite::open(db, false)?;
    conn.busy_timeout(timeout)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").map_err(|e| {
        anyhow::anyhow!(
            "{} is still in use by another process after {} s ({e}): the service (or another tool) keeps it open — \
             stop it, or raise MIGRATE_LOCK_TIMEOUT_SECS",
            db.display(),
            timeout.as_secs()
        )
    })?;
    Ok(conn)
}

/// A result and how long it took.
pub type Timed<T> = (anyhow::Result<T>, Duration);
/// A step's value and its detail line, timed.
type StepOutcome<T> = Timed<(T, String)>;

/// Steps 4 and 5 side by side, so the window costs about the larger of the
/// two instead of their sum. After a checkpoint, and with automatic
/// checkpoints off, the migration writes only the WAL and never the main
/// file, so the main file can be copied while the migration runs. The
/// migration's transaction commits only once `quick_check` passes and the
/// backup is verified: a failed backup means an unchanged database.
fn back_up_and_migrate(
    db: &mut Connection,
    settings: &Settings,
    plan: &Plan,
) -> (StepOutcome<Backup>, StepOutcome<()>) {
    if let Err(error) = freeze_main_file(db) {
        let not_started = anyhow::anyhow!("not started: the backup could not begin");
        return (
            (Err(error), Duration::ZERO),
            (Err(not_started), Duration::ZERO),
        );
    }
    let dest = settings.new_backup_path();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let db_path = &settings.db;
        let dest = &dest;
        s.spawn(move || {
            let start = Instant::now();
            let _ = tx.send((backups::copy_verified(db_path, dest), start.elapsed()));
        });
        let start = Instant::now();
        let mut backup: Option<Timed<Backup>> = None;
        let applied = {
            let mut gate = |conn: &Connection| -> Result<(), String> {
                failpoint::hit("mid-migration").map_err(|e| e.to_string())?;
                let problems = sqlite::integrity_problems(conn, "quick_check")
                    .map_err(|e| format!("quick_check: {e}"))?;
                if !problems.is_empty() {
                    return Err(format!(
                        "quick_check after the migration failed: {}",
                        problems.join("; ")
                    ));
                }
                let received = rx
                    .recv()
                    .map_err(|_| "the backup thread ended without a result".to_owned())?;
                let ok = received.0.is_ok();
                backup = Some(received);
                if ok {
                    Ok(())
                } else {
                    Err("the backup failed, so the migration was not committed".into())
                }
            };
            sqlite::apply_pending_gated(db, &plan.files, &mut gate)
        };
        let applied =
            applied.and_then(|applied| failpoint::hit("after-migration").map(|()| applied));
        let migrate_time = start.elapsed();
        let (backup, backup_time) = backup.unwrap_or_else(|| {
            rx.recv().unwrap_or_else(|_| {
                (
                    Err(anyhow::anyhow!("the backup thread ended without a result")),
                    Duration::ZERO,
                )
            })
        });
        let backed_up = backup.and_then(|backup| {
            let removed = settings.rotate_backups(&backup.path)?;
            let detail = format!(
                "{} ({} MiB, verified byte for byte); rotated away {}",
                backup.path.display(),
                backup.bytes / (1 << 20),
                removed
            );
            Ok((backup, detail))
        });
        let migrated = applied.map(|applied| {
            ((), format!("{} applied in one transaction; quick_check ok; committed once the backup was verified", applied.len()))
        });
        ((backed_up, backup_time), (migrated, migrate_time))
    })
}

/// Checkpoints the WAL into the main file and turns automatic checkpoints
/// off, so the main file holds the whole database and stays as it is.
fn freeze_main_file(db: &Connection) -> anyhow::Result<()> {
    let (busy, _, _): (i64, i64, i64) = db
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .context("checkpointing the WAL")?;
    if busy != 0 {
        bail!("the WAL checkpoint was blocked: another connection still reads the database");
    }
    db.pragma_update(None, "wal_autocheckpoint", 0)
        .context("turning automatic checkpoints off")?;
    Ok(())
}

/// Step 6.
/// Step 6, for either engine: up, then healthy at `schema_version`.
pub fn bring_up_at(settings: &Settings, schema_version: i32) -> anyhow::Result<((), String)> {
    failpoint::hit("before-service-up")?;
    let up = settings.service.bring_up()?;
    failpoint::hit("after-service-up")?;
    let health = match &settings.health_url {
        Some(url) => {
            let expected = service::Expected {
                schema_version,
                version: settings.repo_version.as_deref(),
            };
            service::wait_healthy(url, settings.health_timeout, &expected)?
        }
        None => "health not checked: no health URL configured (MIGRATE_HEALTH_URL)".into(),
    };
    Ok(((), format!("{up}; {health}")))
}

/// Steps 3–5 failed before the service took traffic: put the backup back
/// (when one was taken), bring the service up on the old schema, and fail.
fn fail_before_traffic(
    settings: &Settings,
    steps: &mut Steps,
    db: Connection,
    backup: Option<&Backup>,
    error: anyhow::Error,
) -> anyhow::Result<()> {
    drop(db);
    let restored = match backup {
        Some(backup) => {
            let start = Instant::now();
            let result = backups::restore_file(&backup.path, &settings.db);
            steps.record(
                "restore backup",
                start.elapsed(),
                if result.is_ok() { "ok" } else { "FAILED" },
                &backup.path.display().to_string(),
            );
            match result {
                Ok(()) => format!(
                    "the database was restored from {} (verified byte for byte)",
                    backup.path.display()
                ),
                Err(e) => format!(
                    "RESTORING {} FAILED: {e:#} — restore it by hand before starting the service",
                    backup.path.display()
                ),
            }
        }
        None => "the database was not changed".into(),
    };
    let start = Instant::now();
    let back = settings.service.bring_up();
    steps.record(
        "bring the service back",
        start.elapsed(),
        if back.is_ok() { "ok" } else { "FAILED" },
        &outcome(&back),
    );
    Err(error.context(format!(
        "the maintenance window failed; {restored}; service: {}",
        outcome(&back)
    )))
}

/// Numbered, timed steps, printed and journaled.
pub struct Steps<'a> {
    journal: &'a Journal,
    dry_run: bool,
    next: usize,
}

impl<'a> Steps<'a> {
    pub fn new(journal: &'a Journal, dry_run: bool) -> Self {
        Steps {
            journal,
            dry_run,
            next: 1,
        }
    }

    pub fn run<T>(
        &mut self,
        name: &str,
        step: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> anyhow::Result<T> {
        let start = Instant::now();
        let result = step();
        self.report(name, (result, start.elapsed()))
    }

    /// Prints and journals a step that was timed elsewhere.
    pub fn report<T>(
        &mut self,
        name: &str,
        (result, elapsed): Timed<(T, String)>,
    ) -> anyhow::Result<T> {
        let number = self.next;
        self.next += 1;
        let label = format!("[{number}/{STEPS}] {name}");
        match result {
            Ok((value, detail)) => {
                println!(
                    "{label} ... {:.2} s  {}",
                    elapsed.as_secs_f64(),
                    redact(&detail)
                );
                self.record(&label, elapsed, "ok", &detail);
                Ok(value)
            }
            Err(error) => {
                println!("{label} ... {:.2} s  FAILED", elapsed.as_secs_f64());
                self.record(&label, elapsed, "FAILED", &format!("{error:#}"));
                Err(error.context(format!("step {label} failed")))
            }
        }
    }

    pub fn skip(&mut self, name: &str, why: &str) {
        let label = format!("[{}/{STEPS}] {name}", self.next);
        self.next += 1;
        println!("{label} ... skipped: {why}");
    }

    pub fn record(&self, step: &str, elapsed: Duration, outcome: &str, detail: &str) {
        if !self.dry_run {
            self.journal.record(step, elapsed, outcome, &redact(detail));
        }
    }
}

/// The database's history against the files.
pub struct Comparison<'a> {
    pub current: i32,
    pub applied: Vec<Migration>,
    pub pending: Vec<&'a MigrationFile>,
    changed: Vec<&'a MigrationFile>,
    missing: Vec<Migration>,
    skipped: Vec<&'a MigrationFile>,
}

impl Comparison<'_> {
    fn consistent(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.skipped.is_empty()
    }

    pub fn refuse_inconsistency(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for file in &self.changed {
            problems.push(format!(
                "{}: applied to the database, but the file changed since — restore it from git and put the change in a new migration",
                file.path.display()
            ));
        }
        for m in &self.missing {
            problems.push(format!(
                "V{}__{}: applied to the database, but its file is missing — restore it from git",
                m.version(),
                m.name()
            ));
        }
        for file in &self.skipped {
            problems.push(format!(
                "{}: not applied, but the database is already at version {} — renumber it above {}",
                file.path.display(),
                self.current,
                self.current
            ));
        }
        if !problems.is_empty() {
            bail!(
                "the database's migration history does not match the files:\n  {}",
                problems.join("\n  ")
            );
        }
        Ok(())
    }
}

fn compare<'a>(conn: &Connection, files: &'a [MigrationFile]) -> anyhow::Result<Comparison<'a>> {
    let applied = sqlite::applied_history(conn).context("reading the migration history")?;
    compare_history(applied, files)
}

/// The recorded history (either engine) against the files.
pub fn compare_history(
    applied: Vec<Migration>,
    files: &[MigrationFile],
) -> anyhow::Result<Comparison<'_>> {
    let current = applied.last().map_or(0, Migration::version);
    let mut comparison = Comparison {
        current,
        applied: applied.clone(),
        pending: Vec::new(),
        changed: Vec::new(),
        missing: Vec::new(),
        skipped: Vec::new(),
    };
    for m in &applied {
        match files.iter().find(|f| f.version == m.version()) {
            None => comparison.missing.push(m.clone()),
            Some(file)
                if file.to_refinery()?.checksum() != m.checksum() || file.name != m.name() =>
            {
                comparison.changed.push(file)
            }
            Some(_) => {}
        }
    }
    for file in files
        .iter()
        .filter(|f| !applied.iter().any(|m| m.version() == f.version))
    {
        if file.version > current {
            comparison.pending.push(file);
        } else {
            comparison.skipped.push(file);
        }
    }
    Ok(comparison)
}

/// `migrate status`: exit 0 only when up to date and consistent.
fn status(settings: &Settings) -> anyhow::Result<()> {
    let files = history::load_for(&settings.migrations, settings.engine())?;
    let applied = match &settings.url {
        DatabaseUrl::Sqlite(path) => sqlite::applied_history(&sqlite::open(path, false)?)
            .context("reading the migration history")?,
        DatabaseUrl::Postgres(pg) => pg::applied_history(&mut pg::connect(pg, "migrate status")?)
            .context("reading the migration history")?,
    };
    let comparison = compare_history(applied, &files)?;
    println!("{}: schema version {}", settings.url, comparison.current);
    for m in &comparison.applied {
        let state = if comparison.changed.iter().any(|f| f.version == m.version()) {
            "CHANGED"
        } else if comparison
            .missing
            .iter()
            .any(|x| x.version() == m.version())
        {
            "MISSING"
        } else {
            "applied"
        };
        let when = m.applied_on().map(|t| t.to_string()).unwrap_or_default();
        println!("  {state:8} V{}__{}  {when}", m.version(), m.name());
    }
    for file in &comparison.skipped {
        println!("  SKIPPED  {} (below the database's version)", file.stem());
    }
    for file in &comparison.pending {
        println!("  pending  {}", file.stem());
    }
    comparison.refuse_inconsistency()?;
    if !comparison.pending.is_empty() {
        bail!(
            "{} migration(s) pending: run `cargo xtask migrate`",
            comparison.pending.len()
        );
    }
    if comparison.consistent() {
        println!("up to date");
    }
    Ok(())
}
