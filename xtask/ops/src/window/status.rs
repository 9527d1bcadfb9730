//! `cargo xtask migrate status`: the database's history against the files,
//! one line per migration (or one JSON document with `--json`); exit 0 only
//! when up to date and consistent.

use crate::program::OPS;
use anyhow::bail;
use serde::Serialize;

use super::{open::open, settings::Settings};
use crate::history::{self, Comparison};

/// `migrate status --json`: field names are documented in README.md
/// ("Machine-readable output") and stay stable.
#[derive(Serialize)]
struct Report {
    /// The URL, password redacted.
    database: String,
    engine: &'static str,
    schema_version: i32,
    up_to_date: bool,
    consistent: bool,
    pending: usize,
    ahead: usize,
    migrations: Vec<Row>,
    /// Who holds the migration lock right now, if anyone.
    lock_holder: Option<String>,
    /// What is wrong beyond the history (Postgres: INVALID indexes a failed
    /// concurrent build left), each with its fix; non-empty means exit 1.
    leftovers: Vec<String>,
    /// Why the history is refused (an inconsistency, a gap in the versions),
    /// each with its fix; non-empty means exit 1.
    problems: Vec<String>,
}

/// One migration, applied or not.
#[derive(Serialize)]
struct Row {
    version: i32,
    name: String,
    /// applied, changed, missing, ahead, skipped or pending.
    state: &'static str,
    /// When it was applied (UTC, RFC 3339); None when not applied.
    applied_on: Option<String>,
}

pub fn run(settings: &Settings, json: bool) -> anyhow::Result<()> {
    settings.require_database(
        &format!("or run `{OPS} migrate --create` for a first deploy"),
        false,
    )?;
    let files = settings.migration_files()?;
    let mut engine = open(settings, false, "migrate status")?;
    let applied = engine.applied_history(false)?;
    let leftovers = engine.leftovers()?;
    let comparison = history::compare(applied, &files)?;
    let holder = crate::run_lock::current_holder(&settings.lock_path);
    if json {
        let mut problems: Vec<String> = comparison
            .refuse_inconsistency()
            .err()
            .map(|e| format!("{e:#}"))
            .into_iter()
            .collect();
        problems.extend(settings.gap_problems(&files));
        print_json(settings, &comparison, holder, &leftovers, problems)?;
    } else {
        print_lines(settings, &comparison, holder.as_deref(), &leftovers);
    }
    // The same verdict, and so the same exit status, with or without --json.
    comparison.refuse_inconsistency()?;
    if !leftovers.is_empty() {
        bail!(
            "{} INVALID index(es) in the database (named above): drop each as shown, then run the migration again",
            leftovers.len()
        );
    }
    settings.refuse_gaps(&files)?;
    if !comparison.pending.is_empty() {
        bail!(
            "{} migration(s) pending: run `{OPS} migrate`",
            comparison.pending.len()
        );
    }
    if !json {
        match comparison.ahead.len() {
            0 => println!("up to date"),
            n => println!(
                "up to date, and ahead by {n} (applied by a newer release, or their files were removed from this checkout)"
            ),
        }
    }
    Ok(())
}

fn print_json(
    settings: &Settings,
    comparison: &Comparison,
    lock_holder: Option<String>,
    leftovers: &[String],
    problems: Vec<String>,
) -> anyhow::Result<()> {
    let consistent = comparison.changed.is_empty()
        && comparison.missing.is_empty()
        && comparison.skipped.is_empty();
    let report = Report {
        database: settings.url.to_string(),
        engine: settings.url.engine(),
        schema_version: comparison.current,
        up_to_date: consistent && comparison.pending.is_empty() && leftovers.is_empty(),
        consistent,
        pending: comparison.pending.len(),
        ahead: comparison.ahead.len(),
        migrations: rows(comparison),
        lock_holder,
        leftovers: leftovers.to_vec(),
        problems,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn print_lines(
    settings: &Settings,
    comparison: &Comparison,
    holder: Option<&str>,
    leftovers: &[String],
) {
    println!("{}: schema version {}", settings.url, comparison.current);
    for row in rows(comparison) {
        let state = match row.state {
            "applied" | "pending" => row.state.to_owned(),
            other => other.to_uppercase(),
        };
        let note = match row.state {
            "ahead" => "(applied by a newer release, or its file was removed)".to_owned(),
            "skipped" => "(below the database's version)".to_owned(),
            _ => row.applied_on.unwrap_or_default(),
        };
        let line = format!("  {state:8} V{}__{}  {note}", row.version, row.name);
        println!("{}", line.trim_end());
    }
    for leftover in leftovers {
        println!("  {leftover}");
    }
    if let Some(holder) = holder {
        println!(
            "a run holds the migration lock right now: {holder}; this status may change when it ends"
        );
    }
}

/// Every migration once, in the order the lines show them: applied (marked
/// changed, missing or ahead), skipped, pending.
fn rows(comparison: &Comparison) -> Vec<Row> {
    let mut rows = Vec::new();
    for m in &comparison.applied {
        let version = m.version();
        let ahead = comparison.ahead.iter().any(|x| x.version() == version);
        let state = if ahead {
            "ahead"
        } else if comparison.changed.iter().any(|f| f.version == version) {
            "changed"
        } else if comparison.missing.iter().any(|x| x.version() == version) {
            "missing"
        } else {
            "applied"
        };
        rows.push(Row {
            version,
            name: m.name().to_owned(),
            state,
            applied_on: m.applied_on().map(|t| crate::stamp::rfc3339(*t)),
        });
    }
    for (files, state) in [
        (&comparison.skipped, "skipped"),
        (&comparison.pending, "pending"),
    ] {
        rows.extend(files.iter().map(|f| Row {
            version: f.version,
            name: f.name.clone(),
            state,
            applied_on: None,
        }));
    }
    rows
}
