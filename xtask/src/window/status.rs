//! `cargo xtask migrate status`: the database's history against the files,
//! one line per migration; exit 0 only when up to date and consistent.

use anyhow::bail;

use super::{open::open, settings::Settings};
use crate::history::{self, Comparison};

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    settings.require_database(
        "or run `cargo xtask migrate --create` for a first deploy",
        false,
    )?;
    let files = settings.migration_files()?;
    let applied = open(settings, false, "migrate status")?.applied_history(false)?;
    let comparison = history::compare(applied, &files)?;
    println!("{}: schema version {}", settings.url, comparison.current);
    print_lines(&comparison);
    if let Some(holder) = crate::run_lock::current_holder(&settings.lock_path()) {
        println!(
            "a run holds the migration lock right now: {holder}; this status may change when it ends"
        );
    }
    comparison.refuse_inconsistency()?;
    settings.refuse_gaps(&files)?;
    if !comparison.pending.is_empty() {
        bail!(
            "{} migration(s) pending: run `cargo xtask migrate`",
            comparison.pending.len()
        );
    }
    match comparison.ahead.len() {
        0 => println!("up to date"),
        n => println!(
            "up to date, and ahead by {n} (applied by a newer release, or their files were removed from this checkout)"
        ),
    }
    Ok(())
}

fn print_lines(comparison: &Comparison) {
    for m in &comparison.applied {
        let changed = comparison.changed.iter().any(|f| f.version == m.version());
        let missing = comparison
            .missing
            .iter()
            .any(|x| x.version() == m.version());
        let state = match (changed, missing) {
            (true, _) => "CHANGED",
            (_, true) => "MISSING",
            _ => "applied",
        };
        let when = m.applied_on().map(|t| t.to_string()).unwrap_or_default();
        println!("  {state:8} V{}__{}  {when}", m.version(), m.name());
    }
    for m in &comparison.ahead {
        println!(
            "  AHEAD    V{}__{}  (applied by a newer release, or its file was removed)",
            m.version(),
            m.name()
        );
    }
    for file in &comparison.skipped {
        println!("  SKIPPED  {} (below the database's version)", file.stem());
    }
    for file in &comparison.pending {
        println!("  pending  {}", file.stem());
    }
}
