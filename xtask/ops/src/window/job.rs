//! `cargo xtask migrate --job` on Postgres: the one-off release job of a
//! rolling deploy. It runs step 5 of the window alone, under the same
//! advisory lock, while the previous release keeps serving: no stop, no
//! maintenance, exactly once however many instances run it together, and a
//! refusal (exit 3) when a pending migration is a contract change.

use crate::program::OPS;
use std::time::Instant;

use anyhow::Context;
use secrets_contract::dburl::PgUrl;

use super::settings::Settings;
use crate::{
    history::{self, MigrationFile, lint, no_transaction::is_no_transaction},
    pg::{self, indexes as pg_indexes, job_apply},
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

/// `migrate --job`: the pending migrations, exactly once however many
/// instances run it together, and only expand ones unless allowed.
pub fn run(
    settings: &Settings,
    url: &PgUrl,
    allow_contract: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let files = settings.migration_files()?;
    settings.refuse_gaps(&files)?;
    let mut client = pg::connect(url, "migrate --job")?;
    println!(
        "job: statement_timeout {} s, lock_timeout {} s, retry budget {} s",
        settings.pg_timeouts.statement.as_secs(),
        settings.pg_timeouts.lock.as_secs(),
        settings.pg_lock_retry.as_secs()
    );
    let waited = Instant::now();
    // A dry run takes no lock either: it reads, prints the plan and leaves.
    if !dry_run {
        pg::lock(
            &mut client,
            settings.job_lock_wait,
            "MIGRATE_JOB_LOCK_WAIT_SECS",
        )?;
    }
    // Read the history only under the lock: an instance that waited sees
    // what the one before it applied, and has nothing left to do.
    let applied = pg::applied_history(&mut client).context("reading the migration history")?;
    let comparison = history::compare(applied, &files)?;
    comparison.refuse_inconsistency()?;
    settings.refuse_past_target(comparison.current)?;
    let current = comparison.current;
    let pending = comparison.pending_files();
    for warning in pg_indexes::refuse_rebuilding_invalid(&mut client, &pending)? {
        eprintln!("warning: {warning}");
    }
    if pending.is_empty() {
        let ahead = match comparison.ahead.len() {
            0 => String::new(),
            n => format!(
                ", ahead of this release by {n} (applied by a newer release, or files removed here)"
            ),
        };
        println!(
            "job: {} is up to date at schema version {current}{ahead}; nothing to do (waited {:.2} s for the lock)",
            settings.url,
            waited.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let contracts = contract_migrations(settings, &pending)?;
    if dry_run {
        print_plan(&pending, &contracts, allow_contract, current);
        return Ok(());
    }
    if !contracts.is_empty() && !allow_contract {
        return Err(Refused(format!(
            "refusing to run contract or locking migration(s) as a rolling-deploy job: {}. Instances of the previous \
             release are still serving and may depend on what they remove or tighten, or stall behind the table locks they take. Run them in a maintenance window \
             (`{OPS} migrate`), or once no running instance uses it, with `{OPS} migrate --job \
             --allow-contract`. Nothing was changed",
            contracts.join("; ")
        ))
        .into());
    }
    // A contract allowed through still waits for its backfill: refused
    // (exit 3) before anything runs, as the window refuses it.
    let mut count_live = |sql: &str| -> anyhow::Result<i64> {
        let mut reading = client.build_transaction().read_only(true).start()?;
        pg::count_one(&mut reading, sql).map_err(anyhow::Error::msg)
    };
    if let Err(unmet) = super::preconditions::refuse_unmet(&pending, &mut count_live) {
        return Err(Refused(format!("{unmet:#}")).into());
    }
    let start = Instant::now();
    let applied = job_apply::apply_with_retries(
        settings.pg_timeouts,
        settings.pg_lock_retry,
        url,
        &mut client,
        &files,
        current,
    )?;
    println!("job: {}", how_applied(&pending));
    println!(
        "job: applied {} migration(s) ({}) to {} in {:.2} s; schema version {current} -> {}",
        applied.len(),
        history::stems(&pending),
        settings.url,
        start.elapsed().as_secs_f64(),
        applied.last().map_or(current, |m| m.version())
    );
    Ok(())
}

/// `V5__a applied (transaction), V6__b applied (no transaction)`.
fn how_applied(pending: &[MigrationFile]) -> String {
    pending
        .iter()
        .map(|file| {
            let how = match is_no_transaction(file) {
                true => "no transaction",
                false => "transaction",
            };
            format!("{} applied ({how})", file.stem())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--job --dry-run`: what the job would apply, how the lint classifies it,
/// and whether the job would refuse.
fn print_plan(pending: &[MigrationFile], contracts: &[String], allow_contract: bool, current: i32) {
    println!("dry run: the job would, at schema version {current}:");
    for file in pending {
        let contract = contracts.iter().find(|c| c.starts_with(&file.stem()));
        let alone = match is_no_transaction(file) {
            true => " (no transaction: alone, after the ones before it commit)",
            false => "",
        };
        match contract {
            Some(why) => println!("  contract  {why}{alone}"),
            None => println!("  expand    {}{alone}", file.stem()),
        }
    }
    match (contracts.is_empty(), allow_contract) {
        (true, _) => println!("  apply them in order, each transaction's together (exit 0)"),
        (false, true) => {
            println!("  apply them in order, each transaction's together (--allow-contract)")
        }
        (false, false) => {
            println!("  refuse (exit 3): contract migrations need a window or --allow-contract")
        }
    }
    println!("dry run: nothing was changed");
}

/// Pending migrations the zero-downtime lint refuses (contract, locking or
/// unknown statements, read in each engine's dialect) or that declare
/// themselves contract, in either engine's file (one logical migration).
fn contract_migrations(
    settings: &Settings,
    pending: &[MigrationFile],
) -> anyhow::Result<Vec<String>> {
    let shared = history::load(settings.migrations()?)?;
    let mut refused = Vec::new();
    for file in pending {
        let (shared, twin) = if file.is_postgres_twin() {
            let Some(shared) = shared.iter().find(|f| f.version == file.version) else {
                anyhow::bail!(
                    "{}: no shared migration of version {} beside the postgres folder: add it (one history serves both engines)",
                    file.path.display(),
                    file.version
                );
            };
            (shared, Some(file))
        } else {
            (file, None)
        };
        let findings = lint::lint_migration(shared, twin);
        match (lint::declared_contract(shared, twin), findings.is_empty()) {
            (Some(reason), _) => refused.push(format!("{} ({reason})", file.stem())),
            (None, false) => refused.push(format!("{} ({})", file.stem(), summary(&findings))),
            (None, true) => {}
        }
    }
    Ok(refused)
}

/// `drop-column at V5__x.sql:2, …`: the rules, and where to look.
fn summary(findings: &[lint::Finding]) -> String {
    let each: Vec<String> = findings
        .iter()
        .map(|f| format!("{} at {}:{}", f.rule, f.file, f.line))
        .collect();
    format!(
        "the lint finds {}; `{OPS} migrations check` explains each",
        each.join(", ")
    )
}
