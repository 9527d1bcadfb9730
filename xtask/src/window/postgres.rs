//! NAME
//!     cargo xtask migrate on Postgres — the maintenance window, and the
//!     one-off release job of a rolling deploy
//!
//! DESCRIPTION
//!     The window has the SQLite runbook's seven steps:
//!       1. take the migration advisory lock (`pg_advisory_lock`, held by this
//!          run's session: runs on several hosts serialize on the server)
//!       2. preflight, while the service still runs: migration files (with
//!          the Postgres twins), applied history, pg_dump's version, backup space
//!       3. take the service down, then wait until its sessions have left
//!       4. back up: `pg_dump --format=custom` (0600, verified), rotate
//!       5. migrate: every pending migration in one transaction, with
//!          `lock_timeout` and `statement_timeout` set so a blocked table lock
//!          fails fast and rolls back
//!       6. bring the service up and wait until /health is healthy
//!       7. release the lock; print downtime, backup and migrations
//!     A failure in steps 3–5 leaves the database as it was (the transaction
//!     rolled back) and brings the service back on the old schema.
//!
//!     `--job` runs step 5 alone under the same lock, for expand migrations
//!     while the old release keeps serving: no stop, no maintenance, and a
//!     refusal (exit 3) when a pending migration is a contract change.

use std::time::Instant;

use anyhow::{Context, bail};
use backend::dburl::PgUrl;
use postgres::Client;

use crate::{
    engine::pg,
    engine::pg_backups,
    failpoint,
    history::lint,
    history::{self, Engine, MigrationFile},
    run_lock::MigrationLock,
    window::journal::Journal,
    window::recover,
    window::settings::Settings,
    window::{self, Steps},
};

/// Exit status of `migrate --job` when it refuses a contract migration.
pub const EXIT_REFUSED: u8 = 3;

/// `migrate --job` refused to run: the orchestrator gets [`EXIT_REFUSED`].
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// What the window will do, settled while the service still runs.
struct Plan {
    files: Vec<MigrationFile>,
    pending: Vec<MigrationFile>,
    current: i32,
}

impl Plan {
    fn target(&self) -> i32 {
        self.pending.last().map_or(self.current, |m| m.version)
    }
}

/// The maintenance window on Postgres: the seven steps, in order.
pub fn runbook(
    settings: &Settings,
    url: &PgUrl,
    create: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    println!(
        "migrate {} ({}; backups in {})",
        settings.url,
        settings.service.describe(),
        settings.backup_dir.display()
    );
    let journal = Journal::new(&settings.backup_dir, "migrate");
    let mut steps = Steps::new(&journal, dry_run);
    if create && !dry_run {
        create_database(url)?;
    }
    let mut client = pg::connect(url, "migrate")?;
    let _local = if dry_run {
        steps.skip("take the migration lock", "dry run: nothing will change");
        None
    } else {
        Some(steps.run("take the migration lock", || {
            take_locks(settings, &mut client)
        })?)
    };
    let plan = steps.run("preflight", || preflight(settings, &mut client, dry_run))?;
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
    steps.run("take the service down", || {
        take_service_down(settings, &mut client)
    })?;
    let backup = match steps.run("back up", || back_up(settings, url)) {
        Ok(backup) => backup,
        Err(error) => return fail_before_traffic(settings, &mut steps, error),
    };
    if let Err(error) = steps.run("migrate", || apply(settings, &mut client, &plan)) {
        return fail_before_traffic(settings, &mut steps, error);
    }
    if let Err(error) = steps.run("bring the service up", || {
        window::bring_up_at(settings, plan.target())
    }) {
        return Err(window::unhealthy_after_migration(settings, error, &backup));
    }
    let downtime = window.elapsed();
    steps.record(
        "summary",
        downtime,
        "ok",
        &format!("downtime {downtime:.2?}; backup {}", backup.display()),
    );
    println!(
        "[7/7] done: {} migration(s) applied ({}); schema version {} -> {}; downtime {:.2} s; backup {}",
        plan.pending.len(),
        stems(&plan.pending),
        plan.current,
        plan.target(),
        downtime.as_secs_f64(),
        backup.display()
    );
    println!("journal: {}", journal.path().display());
    Ok(())
}

/// `migrate --job`: the pending migrations, exactly once however many
/// instances run it together, and only expand ones unless allowed.
pub fn job(settings: &Settings, url: &PgUrl, allow_contract: bool) -> anyhow::Result<()> {
    let files = history::load_for(&settings.migrations, Engine::Postgres)?;
    let mut client = pg::connect(url, "migrate --job")?;
    let waited = Instant::now();
    pg::lock(
        &mut client,
        settings.job_lock_wait,
        "MIGRATE_JOB_LOCK_WAIT_SECS",
    )?;
    // Read the history only under the lock: an instance that waited sees
    // what the one before it applied, and has nothing left to do.
    let applied = pg::applied_history(&mut client).context("reading the migration history")?;
    let comparison = window::compare_history(applied, &files)?;
    comparison.refuse_inconsistency()?;
    let current = comparison.current;
    let pending: Vec<MigrationFile> = comparison.pending.into_iter().cloned().collect();
    if pending.is_empty() {
        println!(
            "job: {} is up to date at schema version {current}; nothing to do (waited {:.2} s for the lock)",
            settings.url,
            waited.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let contracts = contract_migrations(settings, &pending)?;
    if !contracts.is_empty() && !allow_contract {
        return Err(Refused(format!(
            "refusing to run contract migration(s) as a rolling-deploy job: {}. Instances of the previous release \
             are still serving and may depend on what they remove or tighten. Run them in a maintenance window \
             (`cargo xtask migrate`), or once no running instance uses it, with `cargo xtask migrate --job \
             --allow-contract`. Nothing was changed",
            contracts.join("; ")
        ))
        .into());
    }
    let start = Instant::now();
    let applied = pg::apply_pending(&mut client, &files, settings.pg_timeouts, &mut || {
        failpoint::hit("mid-migration").map_err(|e| e.to_string())
    })
    .context("the job's migration failed and was rolled back: the schema is unchanged")?;
    println!(
        "job: applied {} migration(s) ({}) to {} in one transaction in {:.2} s; schema version {current} -> {}",
        applied.len(),
        stems(&pending),
        settings.url,
        start.elapsed().as_secs_f64(),
        pending.last().map_or(current, |m| m.version)
    );
    Ok(())
}

/// Pending migrations the zero-downtime lint calls contract changes, in
/// either engine's file (one logical migration).
fn contract_migrations(
    settings: &Settings,
    pending: &[MigrationFile],
) -> anyhow::Result<Vec<String>> {
    let shared = history::load(&settings.migrations)?;
    Ok(pending
        .iter()
        .filter_map(|file| {
            let twin = shared.iter().find(|f| f.version == file.version);
            let declared =
                lint::contract_reason(file).or_else(|| twin.and_then(lint::contract_reason));
            let findings = lint::lint(file).len() + twin.map_or(0, |t| lint::lint(t).len());
            match (declared, findings) {
                (Some(reason), _) => Some(format!("{} ({reason})", file.stem())),
                (None, n) if n > 0 => Some(format!(
                    "{} (the lint finds contract statements)",
                    file.stem()
                )),
                _ => None,
            }
        })
        .collect())
}

/// Step 1: this host's lock file (a dead run's leftovers are cleaned up
/// when it is found stale), then the server's advisory lock, which
/// serializes runs on every host.
fn take_locks(settings: &Settings, client: &mut Client) -> anyhow::Result<(MigrationLock, String)> {
    crate::engine::backups::ensure_dir(&settings.backup_dir)?;
    let local = MigrationLock::acquire(&settings.lock_path(), "cargo xtask migrate")?;
    failpoint::hit("after-lock")?;
    let mut detail = String::new();
    if let Some(holder) = local.stale.clone() {
        eprintln!("warning: took over a migration lock left by a run that is gone ({holder})");
        let recovered = recover::leftovers(settings);
        for line in &recovered {
            eprintln!("recovered: {line}");
        }
        detail = format!(
            " (took over a stale lock: {holder}; {})",
            recovered.join("; ")
        );
    }
    pg::lock(client, settings.lock_timeout, "MIGRATE_LOCK_TIMEOUT_SECS")?;
    Ok((
        local,
        format!(
            "advisory lock {:#x}, {}{detail}",
            pg::MIGRATION_LOCK_KEY,
            settings.lock_path().display()
        ),
    ))
}

/// `--create` on Postgres: the database itself, if it does not exist yet.
fn create_database(url: &PgUrl) -> anyhow::Result<()> {
    let mut admin = pg::connect(&url.with_database("postgres"), "migrate --create")?;
    let exists: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&url.database()],
        )?
        .get(0);
    if !exists {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{}\"",
                url.database().replace('"', "\"\"")
            ))
            .with_context(|| {
                format!(
                    "creating the database {} (the user needs CREATEDB)",
                    url.database()
                )
            })?;
        println!("created database {}", url.database());
    }
    Ok(())
}

/// Step 2: everything that can fail before any downtime.
fn preflight(
    settings: &Settings,
    client: &mut Client,
    dry_run: bool,
) -> anyhow::Result<(Plan, String)> {
    let files = history::load_for(&settings.migrations, Engine::Postgres)?;
    let applied = pg::applied_history(client).context("reading the migration history")?;
    let comparison = window::compare_history(applied, &files)?;
    comparison.refuse_inconsistency()?;
    let current = comparison.current;
    let pending: Vec<MigrationFile> = comparison.pending.into_iter().cloned().collect();
    let tools = pg_backups::check_tools(client)?;
    if !dry_run {
        crate::engine::backups::ensure_dir(&settings.backup_dir)?;
        crate::engine::backups::ensure_space(
            &settings.backup_dir,
            pg_backups::database_bytes(client)?,
        )?;
    }
    let detail = format!(
        "at version {current}, {} pending{}; {tools}",
        pending.len(),
        if pending.is_empty() {
            String::new()
        } else {
            format!(" ({})", stems(&pending))
        }
    );
    Ok((
        Plan {
            files,
            pending,
            current,
        },
        detail,
    ))
}

fn print_plan(settings: &Settings, plan: &Plan) {
    println!("dry run: the window would");
    println!(
        "  lock      advisory lock {:#x} on the server",
        pg::MIGRATION_LOCK_KEY
    );
    println!("  take down {}", settings.service.describe());
    println!(
        "  back up   with pg_dump --format=custom to {} (keep {})",
        settings.backup_dir.display(),
        settings.keep_backups
    );
    println!(
        "  apply     {} in one transaction (lock_timeout {} s, statement_timeout {} s)",
        stems(&plan.pending),
        settings.pg_timeouts.lock.as_secs(),
        settings.pg_timeouts.statement.as_secs()
    );
    window::print_bring_up(settings, plan.target());
    println!("dry run: nothing was changed");
}

/// Step 3: service down, then its sessions gone (the backend closes its
/// connection in maintenance). If they stay, the service comes back.
fn take_service_down(settings: &Settings, client: &mut Client) -> anyhow::Result<((), String)> {
    window::take_down_then(settings, || {
        failpoint::hit("after-service-down")?;
        wait_for_sessions_to_leave(settings, client)?;
        Ok(((), "no other sessions on the database"))
    })
}

fn wait_for_sessions_to_leave(settings: &Settings, client: &mut Client) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let sessions = pg_backups::other_sessions(client)?;
        if sessions.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= settings.lock_timeout {
            bail!(
                "the database is still in use after {} s by {}: the service (or another client) keeps a \
                 connection — stop it, or raise MIGRATE_LOCK_TIMEOUT_SECS",
                settings.lock_timeout.as_secs(),
                sessions.join(", ")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Step 4.
fn back_up(settings: &Settings, url: &PgUrl) -> anyhow::Result<(std::path::PathBuf, String)> {
    let backup = pg_backups::dump(url, &settings.new_backup_path())?;
    let removed = settings.rotate_backups(&backup.path)?;
    let detail = format!(
        "{} ({} KiB, pg_dump custom format, contents listed back); rotated away {removed}",
        backup.path.display(),
        backup.bytes / 1024
    );
    Ok((backup.path, detail))
}

/// Step 5.
fn apply(settings: &Settings, client: &mut Client, plan: &Plan) -> anyhow::Result<((), String)> {
    let applied = pg::apply_pending(client, &plan.files, settings.pg_timeouts, &mut || {
        failpoint::hit("mid-migration").map_err(|e| e.to_string())
    })?;
    failpoint::hit("after-migration")?;
    Ok((
        (),
        format!(
            "{} applied in one transaction (lock_timeout {} s, statement_timeout {} s)",
            applied.len(),
            settings.pg_timeouts.lock.as_secs(),
            settings.pg_timeouts.statement.as_secs()
        ),
    ))
}

/// Steps 3–5 failed before the service took traffic: the transaction rolled
/// back, so the database is as it was; bring the service back and fail.
fn fail_before_traffic(
    settings: &Settings,
    steps: &mut Steps,
    error: anyhow::Error,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let back = settings.service.bring_up();
    steps.record(
        "bring the service back",
        start.elapsed(),
        if back.is_ok() { "ok" } else { "FAILED" },
        &window::outcome(&back),
    );
    Err(error.context(format!(
        "the maintenance window failed; the database was not changed (its transaction rolled back); service: {}",
        window::outcome(&back)
    )))
}

fn stems(files: &[MigrationFile]) -> String {
    files
        .iter()
        .map(MigrationFile::stem)
        .collect::<Vec<_>>()
        .join(", ")
}
