//! NAME
//!     cargo xtask migrate adopt — bring a database whose schema another tool
//!     built under the migrations, once its schema is proven to be theirs
//!
//! SYNOPSIS
//!     cargo xtask migrate adopt [--version N] [--dry-run] [--database-url URL] [--migrations DIR]
//!
//! DESCRIPTION
//!     Records V1..VN as applied (refinery's own rows, their SQL not run)
//!     only after proving that the live schema equals the one the migrations
//!     produce at VN, in the schema model `migrations check` uses, with
//!     column types, CHECK constraints, views and triggers added (one engine
//!     on both sides), and what each engine keeps beyond it (SQLite's
//!     clauses, Postgres's server-rendered definitions; docs/runbook.md).
//!     Step 6 proves it again inside the transaction that writes the history.
//!     Flyway's `baseline` records a version without looking; this looks.
//!     Without `--version` it finds the N that matches, or names the closest.
//!     Tables of known migration tools (`alembic_version`, …) are listed and
//!     left alone; any other table the migrations do not make refuses the
//!     adoption, since it may hold data they know nothing about.
//!     Steps: the window's lock, the database read (no refinery history may
//!     exist), the proof, integrity checks, a verified backup, the history
//!     written, and read back. A refusal changes nothing; `--dry-run` stops
//!     after the proof and prints what would be recorded.

use crate::program::OPS;
use std::path::Path;

use anyhow::{Context, bail};

use super::{
    lock,
    open::open,
    rotation::{new_backup_path, rotate_backups},
    settings::Settings,
};
use crate::{
    engine::{backups, journal::Journal, roles::Engine, steps::Steps},
    failpoint,
    history::{self, MigrationFile},
    quote,
    schema::model::{Shape, shape_differences},
};

/// Tables in which other tools keep their own migration history: listed by
/// name and left as they are, never compared. (table, tool)
const OTHER_TOOLS: &[(&str, &str)] = &[
    ("alembic_version", "Alembic"),
    ("flyway_schema_history", "Flyway"),
    ("schema_migrations", "Rails, golang-migrate or dbmate"),
    ("schema_version", "Flyway (before 5)"),
    ("databasechangelog", "Liquibase"),
    ("databasechangeloglock", "Liquibase"),
    ("django_migrations", "Django"),
    ("knex_migrations", "Knex"),
    ("knex_migrations_lock", "Knex"),
    ("goose_db_version", "goose"),
    ("_sqlx_migrations", "sqlx"),
    ("__diesel_schema_migrations", "Diesel"),
    ("seaql_migrations", "SeaORM"),
];

/// The database as read in step 2: its own tables, and other tools' ones.
struct Live {
    schema: Shape,
    ignored: Vec<(String, &'static str)>,
}

pub fn run(settings: &Settings, version: Option<i32>, dry_run: bool) -> anyhow::Result<()> {
    // Before the lock file and the journal: adopt records an existing database.
    settings.require_database(
        &format!("or, for a new database, run `{OPS} migrate --create` (adopt records the history of an existing one)"),
        false,
    )?;
    let files = history::load_for(settings.migrations()?, settings.engine())?;
    settings.refuse_gaps(&files)?;
    if let Some(n) = version {
        version_exists(&files, n, settings.migrations()?);
    }
    let journal = Journal::new(&settings.backup_dir, "migrate adopt");
    let mut steps = Steps::new(&journal, dry_run);
    let mut engine = open(settings, false, "migrate adopt")?;
    let engine = engine.as_mut();
    let _lock = if dry_run {
        steps.skip("take the migration lock", "dry run: nothing will change");
        None
    } else {
        Some(steps.run("take the migration lock", || {
            let lock = lock::take(settings, engine, &format!("{OPS} migrate adopt"))?;
            let detail = quote::path(&lock.path);
            Ok((lock, detail))
        })?)
    };
    let live = steps.run("read the database", || read_unadopted(engine, settings))?;
    let target = steps.run("prove the schema", || {
        prove(engine, settings, &files, &live, version)
    })?;
    let adopted: Vec<MigrationFile> = files
        .iter()
        .filter(|f| f.version <= target)
        .cloned()
        .collect();
    steps.run("check integrity", || Ok(((), engine.check_integrity()?)))?;
    if dry_run {
        print_plan(settings, engine, &adopted, target);
        return Ok(());
    }
    let backup = steps.run("back up", || back_up(settings, engine))?;
    steps.run("record the history", || {
        failpoint::hit("adopt-before-record")?;
        engine.record_applied(&files, target, &mut |schema| still_proven(schema, &live))?;
        Ok((
            (),
            format!("{} recorded as applied", history::stems(&adopted)),
        ))
    })?;
    steps.run("read it back", || read_back(engine, &files, &live, target))?;
    println!(
        "adopted {} at schema version {target}: {} recorded as applied, their SQL not run; backup {}",
        quote::shell_line(&settings.url.to_string()),
        history::stems(&adopted),
        quote::path(&backup)
    );
    println!(
        "`{OPS} migrate status` now treats it as at V{target}; `{OPS} migrate` applies what follows"
    );
    println!("journal: {}", quote::path(journal.path()));
    Ok(())
}

/// A `--version` that names no migration is a usage error (exit status 2,
/// as clap's own for `--version 0`), before anything is opened or locked.
fn version_exists(files: &[MigrationFile], n: i32, dir: &Path) {
    if !files.iter().any(|f| f.version == n) {
        let message = format!(
            "--version {n}: there is no migration V{n}__*.sql in {} (versions there: {}); pass one of them, or \
             leave --version out to find the matching one\n",
            quote::path(dir),
            files
                .iter()
                .map(|f| f.version.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).exit();
    }
}

/// Step 2: a database that refinery already manages is not adopted again;
/// other tools' history tables are set aside by name and listed.
fn read_unadopted(engine: &mut dyn Engine, settings: &Settings) -> anyhow::Result<(Live, String)> {
    let (history, mut schema) = engine.read_for_adoption()?;
    if let Some(last) = history.last() {
        bail!(
            "{} already has a migration history ({} migration(s), up to V{}__{}): it is managed by the \
             migrations already, nothing to adopt; see `{OPS} migrate status`",
            quote::shell_line(&settings.url.to_string()),
            history.len(),
            last.version(),
            last.name()
        );
    }
    let mut ignored = Vec::new();
    for (table, tool) in OTHER_TOOLS {
        if schema.tables.remove(*table).is_some() {
            println!("  ignored: {table} — table of another tool ({tool}), left as it is");
            ignored.push(((*table).to_owned(), *tool));
        }
    }
    let mut detail = format!(
        "no migration history; {} table(s), {} view(s) and trigger(s)",
        schema.tables.len(),
        schema.objects.len()
    );
    if !ignored.is_empty() {
        let names: Vec<&str> = ignored.iter().map(|(t, _)| t.as_str()).collect();
        detail.push_str(&format!(
            "; ignored as tables of another tool: {}",
            names.join(", ")
        ));
    }
    Ok((Live { schema, ignored }, detail))
}

/// Step 3: the version whose schema the database has, or a refusal that
/// prints every difference from the one asked for (or the closest).
fn prove(
    engine: &mut dyn Engine,
    settings: &Settings,
    files: &[MigrationFile],
    live: &Live,
    version: Option<i32>,
) -> anyhow::Result<(i32, String)> {
    let schemas = engine
        .schema_at_each_version(files)
        .context("building the schema of each version from the migrations")?;
    let diffs: Vec<(i32, Vec<String>)> = schemas
        .iter()
        .map(|(v, expected)| {
            let name = format!("V{v}");
            (
                *v,
                shape_differences("the database", &live.schema, &name, expected),
            )
        })
        .collect();
    let empty_note = (live.schema == Shape::default()).then(|| {
        format!(
            "{} has no tables of its own: it is empty, there is nothing to adopt — `{OPS} migrate` \
             will simply create the schema in it",
            quote::shell_line(&settings.url.to_string())
        )
    });
    let chosen = match version {
        Some(n) => diffs.iter().find(|(v, _)| *v == n),
        // Empty: no version is closer than another; the newest is what
        // `migrate` would create.
        None if empty_note.is_some() => diffs.last(),
        None => match_or_closest(&diffs)?,
    };
    let Some((n, differences)) = chosen else {
        bail!(
            "the migrations folder {} holds no migration",
            quote::path(settings.migrations()?)
        );
    };
    if differences.is_empty() {
        return Ok((
            *n,
            format!(
                "the live schema matches V{n}'s in every table's columns, types, defaults, nullability, keys, \
                 checks, indexes and the clauses the engine keeps (their names aside), views and triggers: all \
                 that docs/runbook.md lists as compared"
            ),
        ));
    }
    let listed = format!(
        "The database differs from the schema the migrations produce at V{n}:\n  {}",
        differences.join("\n  ")
    );
    if let Some(note) = &empty_note {
        bail!("{note}; nothing was changed. {listed}");
    }
    let asked = match version {
        Some(_) => format!("at V{n}"),
        None => format!(
            "at any version; the closest is V{n}, with {} difference(s)",
            differences.len()
        ),
    };
    // The closest can hide the real difference (a changed ON DELETE counts
    // as much as a missing table): the newest's are printed too.
    let listed = match diffs.last() {
        Some((newest, against_newest)) if version.is_none() && newest != n => format!(
            "{listed}\nThe differences from the newest version, V{newest}:\n  {}",
            against_newest.join("\n  ")
        ),
        _ => listed,
    };
    bail!(
        "refused: the schema of {} is not the one the migrations produce {asked}; nothing was changed. Make \
         the schema equal (or pick the version it matches with --version), then run adopt again. {listed}",
        quote::shell_line(&settings.url.to_string())
    )
}

/// Without `--version`: the one version whose schema matches exactly, or
/// else the closest (fewest differences; the newest of equals). Two exact
/// matches differ in what the model does not see (rows, a partial index's WHERE):
/// the operator picks.
fn match_or_closest(diffs: &[(i32, Vec<String>)]) -> anyhow::Result<Option<&(i32, Vec<String>)>> {
    let exact: Vec<i32> = diffs
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(v, _)| *v)
        .collect();
    if exact.len() > 1 {
        bail!(
            "the schema matches several versions ({}): their migrations differ only in what the schema model \
             does not see (rows, a partial index's WHERE); say which one this database is with --version",
            exact
                .iter()
                .map(|v| format!("V{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(diffs.iter().rev().min_by_key(|(_, d)| d.len()))
}

/// Step 5: a verified backup of the database before its history is written.
fn back_up(
    settings: &Settings,
    engine: &mut dyn Engine,
) -> anyhow::Result<(std::path::PathBuf, String)> {
    backups::ensure_dir(&settings.backup_dir)?;
    backups::ensure_space(&settings.backup_dir, engine.database_bytes()?)?;
    let verified = engine.back_up_online(&new_backup_path(settings)?)?;
    let rotation = rotate_backups(settings, &verified.backup.path);
    let detail = format!(
        "{} ({}, {}); {rotation}",
        quote::path(&verified.backup.path),
        backups::human_size(verified.backup.bytes),
        verified.how
    );
    Ok((verified.backup.path, detail))
}

/// Step 6, inside the transaction that writes the history: the schema read
/// there is still the one proven in step 3, or nothing is recorded.
fn still_proven(mut now: Shape, live: &Live) -> anyhow::Result<()> {
    for (table, _) in &live.ignored {
        now.tables.remove(table);
    }
    let differences = shape_differences(
        "the database",
        &now,
        "the schema proven in step 3",
        &live.schema,
    );
    if !differences.is_empty() {
        bail!(
            "the schema changed after it was proven (another client altered it): nothing was recorded, the \
             transaction rolled back and the database is as that client left it. Find out what changes it, then \
             run adopt again. What changed:\n  {}",
            differences.join("\n  ")
        );
    }
    Ok(())
}

/// Step 7: the history reads back as exactly V1..VN of these files, and the
/// schema is still the proven one.
fn read_back(
    engine: &mut dyn Engine,
    files: &[MigrationFile],
    live: &Live,
    target: i32,
) -> anyhow::Result<((), String)> {
    let (applied, mut schema) = engine.read_for_adoption()?;
    for (table, _) in &live.ignored {
        schema.tables.remove(table);
    }
    let comparison = history::compare(applied, files)?;
    comparison.refuse_inconsistency()?;
    if comparison.current != target {
        bail!(
            "after recording V1..V{target}, the history reads as at version {}: restore the backup with \
             `{OPS} restore` and run adopt again",
            comparison.current
        );
    }
    if schema != live.schema {
        bail!(
            "the history was recorded on the proven schema, but the schema changed right after the commit \
             (another client altered it): it is no longer V{target}'s. Find out what changes it; `{OPS} \
             migrate status` and `migrate adopt --dry-run` show where it stands"
        );
    }
    Ok((
        (),
        format!(
            "history at V{target}, consistent with the files; {} pending",
            comparison.pending.len()
        ),
    ))
}

fn print_plan(settings: &Settings, engine: &dyn Engine, adopted: &[MigrationFile], target: i32) {
    println!("dry run: adopt would");
    println!("  lock      {}", engine.describe_lock());
    println!(
        "  back up   {}to {} (keep {})",
        engine.describe_backup(),
        quote::path(&settings.backup_dir),
        settings.keep_backups
    );
    println!(
        "  record    {} as applied (their SQL not run): schema version {target}",
        history::stems(adopted)
    );
    println!("dry run: nothing was changed");
}
