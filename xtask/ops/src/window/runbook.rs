//! The maintenance window, for both engines: the seven steps, in order,
//! each printed as `[n/7] step … time` and appended to the journal in the
//! backup folder. What differs between SQLite and Postgres is behind
//! [`Engine`]; no step is written twice.
//!
//!   1. take the migration lock (runs are serialized; a lock left by a dead
//!      run is taken over and its leftovers cleaned up; on Postgres also the
//!      server's advisory lock)
//!   2. preflight, while the service still runs: migration files, applied
//!      history, the engine's checks (SQLite: integrity and a rehearsal on a
//!      snapshot; Postgres: pg_dump's version), free space for the backup
//!   3. take the service down, then prove nobody else uses the database
//!   4. back up (verified, 0600), rotate
//!   5. migrate: all pending migrations in one transaction, committed only
//!      once the backup is verified
//!   6. bring the service up and wait until /health is healthy
//!   7. release the lock; print downtime, backup and migrations
//!
//! A failure in steps 3–5 undoes what it can (SQLite: restores the backup;
//! Postgres: the transaction rolled back) and brings the service back on the
//! old schema. An unhealthy service after a committed migration is not
//! restored automatically: it may have taken writes already; the restore
//! command is printed instead.

use std::{path::Path, time::Instant};

use super::rotation::{new_backup_path, rotate_backups};
use super::settings::Settings;
use super::{open::open, preconditions, recover, service, service::take_down_then};
use crate::engine::roles::{Engine, Plan, Verified};
use crate::engine::steps::{self, Steps, Timed, outcome};
use crate::engine::{backups, backups::Backup, journal::Journal};
use crate::{failpoint, history, program::OPS, quote, redact::redact, run_lock::MigrationLock};

/// What the operator asked of this window.
pub struct Options {
    /// A first deploy: create the database.
    pub create: bool,
    /// Preflight and plan only.
    pub dry_run: bool,
    /// VACUUM after the migration, before the service comes back.
    pub vacuum: bool,
}

pub fn run(settings: &Settings, options: Options) -> anyhow::Result<()> {
    let Options {
        create,
        dry_run,
        vacuum,
    } = options;
    // A stop command or a URL may carry credentials: the header is redacted
    // like every step line.
    println!(
        "{}",
        redact(&format!(
            "migrate {} ({}; backups in {})",
            quote::one_line(&settings.url.to_string()),
            settings.service.describe(),
            quote::path(&settings.backup_dir)
        ))
    );
    if !create {
        settings.require_database("or pass --create for a first deploy", false)?;
    }
    let journal = Journal::new(&settings.backup_dir, "migrate");
    let mut steps = Steps::new(&journal, dry_run);
    if create {
        // A first deploy creates things (a Postgres database, a SQLite
        // file's folder, the lock file, the journal): none for a history
        // with a gap, so it is refused first.
        settings.refuse_gaps(&settings.migration_files()?)?;
    }
    // A dry run changes nothing, not even by creating the database.
    let mut engine = open(settings, create && !dry_run, "migrate")?;
    let engine = engine.as_mut();
    if dry_run && create && !engine.exists() {
        return print_first_deploy(settings, engine);
    }
    // The lock comes first so that two runs started together serialize on
    // it before either reads the database; a dry run changes nothing and
    // needs none.
    let _lock = if dry_run {
        steps.skip("take the migration lock", "dry run: nothing will change");
        None
    } else {
        Some(steps.run("take the migration lock", || {
            take_lock(settings, engine, create)
        })?)
    };
    let plan = steps.run("preflight", || preflight(settings, engine, create, dry_run))?;
    if plan.pending.is_empty() && vacuum {
        anyhow::bail!("{}", vacuum_without_window(settings, plan.current));
    }
    if plan.pending.is_empty() {
        println!(
            "up to date at schema version {}: nothing to do, the service was not touched",
            plan.current
        );
        return Ok(());
    }
    if dry_run {
        print_plan(settings, engine, &plan, vacuum);
        return Ok(());
    }
    let window = Instant::now();
    steps.run("take the service down", || {
        take_service_down(settings, engine)
    })?;
    let (backed_up, migrated) = engine.back_up_and_migrate(&plan);
    let backup = match steps.report("back up", rotated(settings, backed_up)) {
        Ok(backup) => backup,
        Err(error) => return fail_before_traffic(settings, engine, &mut steps, &plan, None, error),
    };
    let migrated = match vacuum {
        true => vacuum_after(engine, migrated),
        false => migrated,
    };
    if let Err(error) = steps.report(engine.migrate_step(), migrated) {
        return fail_before_traffic(settings, engine, &mut steps, &plan, Some(&backup), error);
    }
    let healthy = steps.run("bring the service up", || {
        bring_up_at(settings, plan.target())
    });
    // The service is back: what it was down for ends here, before a
    // restore point is written to its file.
    let downtime = window.elapsed();
    let saved = finish_backup(settings, engine, &steps, &backup);
    if let Err(error) = healthy {
        return Err(unhealthy_after_migration(settings, error, &backup.path));
    }
    saved?;
    summary(&steps, &plan, &backup, downtime);
    if let Some(advice) = engine.free_space_advice() {
        println!("free pages: {advice}");
    }
    println!("journal: {}", quote::path(journal.path()));
    Ok(())
}

/// `--vacuum`, in step 5 once the migration committed, while the service is
/// still down; its time joins the step's. VACUUM is one transaction: when it
/// fails the database is as the migration left it, and the window goes on.
fn vacuum_after(engine: &mut dyn Engine, migrated: Timed<((), String)>) -> Timed<((), String)> {
    let (Ok(((), detail)), elapsed) = migrated else {
        return migrated;
    };
    let (vacuumed, took) = steps::timed(|| engine.vacuum());
    let detail = match vacuumed {
        Ok(line) => format!("{detail}; {line}"),
        Err(error) => {
            let warning = format!(
                "VACUUM FAILED after {:.2} s ({error:#}); the database is as the migration left it: run VACUUM \
                 later, outside the window",
                took.as_secs_f64()
            );
            eprintln!("warning: {warning}");
            format!("{detail}; {warning}")
        }
    };
    (Ok(((), detail)), elapsed + took)
}

/// Step 1: the lock file, then the engine's server-side lock; a lock left
/// by a run that died means its leftovers (temp files, a service left
/// down) are cleaned up first.
fn take_lock(
    settings: &Settings,
    engine: &mut dyn Engine,
    create: bool,
) -> anyhow::Result<(MigrationLock, String)> {
    engine.prepare_lock(create)?;
    let lock = MigrationLock::acquire(&settings.lock_path, &format!("{OPS} migrate"))?;
    failpoint::hit("after-lock")?;
    let mut detail = quote::path(&lock.path);
    if let Some(holder) = lock.stale.clone() {
        eprintln!("warning: took over a migration lock left by a run that is gone ({holder})");
        let recovered = recover::leftovers(settings);
        for line in &recovered {
            eprintln!("recovered: {line}");
        }
        detail.push_str(&format!(
            " (took over a stale lock: {holder}; {})",
            recovered.join("; ")
        ));
    }
    if let Some(server) = engine.hold_server()? {
        detail = format!("{server}, {detail}");
    }
    Ok((lock, detail))
}

/// Step 2: everything that can fail before any downtime.
fn preflight(
    settings: &Settings,
    engine: &mut dyn Engine,
    create: bool,
    dry_run: bool,
) -> anyhow::Result<(Plan, String)> {
    let files = settings.migration_files()?;
    let applied = engine.applied_history(create && !dry_run)?;
    let comparison = history::compare(applied, &files)?;
    comparison.refuse_inconsistency()?;
    settings.refuse_past_target(comparison.current)?;
    settings.refuse_gaps(&files)?;
    settings.service.refuse_unusable_flag()?;
    let ahead = match comparison.ahead.len() {
        0 => String::new(),
        n => format!(
            ", ahead of this release by {n} (applied by a newer release, or files removed here)"
        ),
    };
    let (pending, current) = (comparison.pending_files(), comparison.current);
    let mut plan = Plan {
        pending,
        current,
        files,
        rehearsal: Vec::new(),
    };
    // Nothing pending: no backup will be taken, so its folder and room are
    // no reason to fail a run that has nothing to do.
    if !plan.pending.is_empty() {
        check_backup_room(settings, engine.database_bytes()?, dry_run)?;
    }
    let checks = preconditions::refuse_unmet(&plan.pending, &mut |sql| engine.count_live(sql))?
        + &engine.check_before_downtime(&mut plan)?;
    let pending = match plan.pending.len() {
        0 => "none pending".to_owned(),
        n => format!("{n} pending ({})", history::stems(&plan.pending)),
    };
    let detail = format!("at version {}{ahead}, {pending}; {checks}", plan.current);
    Ok((plan, detail))
}

/// `--vacuum` rides on a window; with nothing pending there is none, and the
/// flag is refused rather than silently ignored.
fn vacuum_without_window(settings: &Settings, current: i32) -> String {
    let how = match &settings.url {
        secrets_contract::dburl::DatabaseUrl::Sqlite(path) => format!(
            "stop the service (or set its maintenance flag) and run `sqlite3 {} VACUUM`",
            path.display()
        ),
        _ => "run `VACUUM` on the database with psql at a quiet time".to_owned(),
    };
    format!(
        "up to date at schema version {current}: no migration is pending, so no window runs and --vacuum was \
         not done (nothing was changed). To reclaim free pages without a migration, {how}"
    )
}

/// The backup folder exists (0700) and has room. A dry run creates nothing:
/// it checks the folder's room only when the folder is already there.
fn check_backup_room(settings: &Settings, bytes: u64, dry_run: bool) -> anyhow::Result<()> {
    let dir = &settings.backup_dir;
    if dry_run && !dir.is_dir() {
        return Ok(());
    }
    if !dry_run {
        backups::ensure_dir(dir)?;
    }
    // Step 4's name can be had, before anything goes down.
    new_backup_path(settings)?;
    backups::ensure_space(dir, bytes)
}

fn print_plan(settings: &Settings, engine: &dyn Engine, plan: &Plan, vacuum: bool) {
    println!("dry run: the window would");
    print_hold_and_backup(settings, engine, "");
    for line in engine.describe_apply(plan) {
        println!("  apply     {line}");
    }
    if vacuum {
        println!("  vacuum    the database, after the migration and before the service comes back");
    }
    print_bring_up(settings, plan.target());
    println!("dry run: nothing was changed");
}

/// `migrate --create --dry-run` for a database that does not exist yet: what
/// the first deploy would do. Nothing is created, so there is nothing to read
/// or rehearse on.
fn print_first_deploy(settings: &Settings, engine: &dyn Engine) -> anyhow::Result<()> {
    let files = settings.migration_files()?;
    println!(
        "dry run: {} does not exist yet; `migrate --create` would",
        settings.url
    );
    println!("  create    it, 0600 (its folder 0700 if missing), at schema version 0");
    print_hold_and_backup(settings, engine, "the new, empty database ");
    println!("  apply     {} in one transaction", history::stems(&files));
    print_bring_up(settings, files.last().map_or(0, |f| f.version));
    println!("dry run: nothing was changed");
    Ok(())
}

/// The plan's lock, take-down and backup lines (steps 1, 3 and 4).
fn print_hold_and_backup(settings: &Settings, engine: &dyn Engine, what: &str) {
    println!("  lock      {}", engine.describe_lock());
    println!("  take down {}", redact(&settings.service.describe()));
    println!(
        "  back up   {what}{}to {} (keep {})",
        engine.describe_backup(),
        settings.backup_dir.display(),
        settings.keep_backups
    );
}

/// The dry run's last line of the plan.
fn print_bring_up(settings: &Settings, schema_version: i32) {
    match &settings.health_url {
        Some(url) => println!(
            "  bring up and wait for {} (schema_version {schema_version})",
            redact(url)
        ),
        None => println!("  bring up (no health URL configured: health not checked)"),
    }
}

/// Step 3: the service goes down, then the engine proves the database is
/// no longer in use; if either fails, the service is brought back.
fn take_service_down(settings: &Settings, engine: &mut dyn Engine) -> anyhow::Result<((), String)> {
    take_down_then(&settings.service, || {
        failpoint::hit("after-service-down")?;
        Ok(((), engine.prove_quiet()?))
    })
}

/// After step 6: a backup step 4 only prepared (a Postgres restore point)
/// is written to its file and old ones rotated; printed and journaled as an
/// unnumbered line.
fn finish_backup(
    settings: &Settings,
    engine: &mut dyn Engine,
    steps: &Steps,
    backup: &Backup,
) -> anyhow::Result<()> {
    let (result, elapsed) = steps::timed(|| engine.finish_backup(backup).transpose());
    let detail = match result {
        Ok(None) => return Ok(()),
        Ok(Some(saved)) => Ok(format!(
            "{saved}; {}",
            rotate_backups(settings, &backup.path)
        )),
        Err(e) => Err(e),
    };
    println!(
        "      save the restore point ... {:.2} s  {}",
        elapsed.as_secs_f64(),
        redact(&outcome(&detail))
    );
    let timed_detail = (detail, elapsed);
    steps.record_outcome("save the restore point", &timed_detail);
    timed_detail.0.map(drop).map_err(|e| {
        e.context(
            "the migration succeeded and the service is up, but its restore point was not saved",
        )
    })
}

/// Step 4's line: the verified backup, then the rotation of old ones (once
/// the file exists: a restore point is written to it after step 6).
fn rotated(settings: &Settings, (verified, elapsed): Timed<Verified>) -> Timed<(Backup, String)> {
    let result = verified.map(|Verified { backup, how }| {
        let rotation = if backup.path.exists() {
            rotate_backups(settings, &backup.path)
        } else {
            "old backups rotated once it is written".to_owned()
        };
        let detail = format!(
            "{} ({}, {how}); {rotation}",
            quote::path(&backup.path),
            backups::human_size(backup.bytes)
        );
        (backup, detail)
    });
    (result, elapsed)
}

/// Step 6: up, then healthy at `schema_version`.
fn bring_up_at(settings: &Settings, schema_version: i32) -> anyhow::Result<((), String)> {
    failpoint::hit("before-service-up")?;
    let up = settings.service.bring_up()?;
    failpoint::hit("after-service-up")?;
    let health = match &settings.health_url {
        _ if settings.service.kept_in_maintenance() => {
            "health not checked: the service stays in maintenance (a flag someone else set)".into()
        }
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

/// Steps 3–5 failed before the service took traffic: the engine undoes
/// what it can, the service comes back on the old schema, and the error
/// says what is true of the database now.
fn fail_before_traffic(
    settings: &Settings,
    engine: &mut dyn Engine,
    steps: &mut Steps,
    plan: &Plan,
    backup: Option<&Backup>,
    error: anyhow::Error,
) -> anyhow::Result<()> {
    let database = engine.undo(steps, plan, backup);
    if !database.service_may_start {
        // Saying "restore it by hand before starting the service" and then
        // starting it would be a lie and a risk: it stays down.
        steps.record_outcome(
            "service left down",
            &(Ok(database.said.clone()), Default::default()),
        );
        return Err(error.context(format!(
            "the maintenance window failed; {}; the service was left down",
            database.said
        )));
    }
    let back = steps::timed(|| settings.service.bring_up());
    steps.record_outcome("bring the service back", &back);
    Err(error.context(format!(
        "the maintenance window failed; {}; service: {}",
        database.said,
        outcome(&back.0)
    )))
}

/// Step 6 failed after a committed migration: the service is brought up once
/// more, and nothing is restored (it may have taken writes already); the
/// error says how to roll back by hand.
fn unhealthy_after_migration(
    settings: &Settings,
    error: anyhow::Error,
    backup: &Path,
) -> anyhow::Error {
    // Whatever failed, the migration stands: the service must not be left
    // down on it (bringing it up twice is harmless).
    let up = settings.service.bring_up();
    // On a line of its own, so that it can be pasted as it is.
    eprintln!(
        "to roll back, stop the service and run:\n  {}",
        restore_command(settings, backup)
    );
    error.context(format!(
        "the migration succeeded but the service is not healthy (tried to bring it up once more: {}). It was NOT \
         restored automatically: it may already have taken writes that a restore would lose. Investigate; to roll \
         back, stop the service and run the `{OPS} restore` command printed above",
        outcome(&up)
    ))
}

/// The command that rolls back to `backup`, safe to paste. A password in the
/// URL is never printed: the line then says to put it back.
fn restore_command(settings: &Settings, backup: &Path) -> String {
    let url = settings.url.to_string();
    let command = format!(
        "{OPS} restore {} --database-url {}",
        quote::shell(&backup.to_string_lossy()),
        quote::shell(&url)
    );
    if url.contains("***") {
        format!("{command}\n  (with the database password in place of ***)")
    } else {
        command
    }
}

/// Step 7.
fn summary(steps: &Steps, plan: &Plan, backup: &Backup, downtime: std::time::Duration) {
    steps.record(
        "summary",
        downtime,
        "ok",
        &format!(
            "downtime {downtime:.2?}; backup {}",
            quote::path(&backup.path)
        ),
    );
    println!(
        "[7/7] done: {} migration(s) applied ({}); schema version {} -> {}; downtime {:.2} s; backup {}",
        plan.pending.len(),
        history::stems(&plan.pending),
        plan.current,
        plan.target(),
        downtime.as_secs_f64(),
        quote::path(&backup.path)
    );
}
