//! Check 5: a database of the latest release (or of each prefix of the
//! history), filled with rows, upgrades to the fresh schema losing none.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use rusqlite::Connection;

use super::{report::Outcome, shipped::Shipped};
use crate::{
    history::{MigrationFile, precondition},
    schema::dump as schema_dump,
    schema::sample_rows,
    sqlite,
};

pub(super) fn upgrade_path(
    shipped: &Result<Option<Shipped>, String>,
    files: &[MigrationFile],
    dir: &Path,
    fresh: &str,
) -> Outcome {
    // Without a release to start from, every prefix of the history is a
    // database that may exist somewhere; the detail says which was done.
    let result = match shipped {
        Ok(Some(shipped)) => upgrade_from(&shipped.files, files, dir, fresh)
            .map(|()| format!("from {} with data", shipped.tag)),
        Ok(None) => upgrade_from_each_prefix(files, dir, fresh).map(|n| {
            format!("no release tag yet: from each of {n} prefix(es) of the history, with data")
        }),
        Err(why) => upgrade_from_each_prefix(files, dir, fresh).map(|n| {
            format!("{why}: from each of {n} prefix(es) of the history instead, with data")
        }),
    };
    match result {
        Ok(detail) => Outcome::Pass(detail),
        Err(problems) => Outcome::Fail(problems),
    }
}

/// Builds the old history, fills it, upgrades with the head files and checks.
pub(super) fn upgrade_from(
    old: &[MigrationFile],
    head: &[MigrationFile],
    dir: &Path,
    fresh: &str,
) -> Result<(), Vec<String>> {
    let mut conn = Connection::open_in_memory().map_err(|e| vec![e.to_string()])?;
    sqlite::apply_pending(&mut conn, old)
        .map_err(|e| vec![format!("building the old schema: {e:#}")])?;
    upgrade_filled(&mut conn, old, head, dir, fresh)
}

/// The history before the first release: every prefix is a possible database.
pub(super) fn upgrade_from_each_prefix(
    files: &[MigrationFile],
    dir: &Path,
    fresh: &str,
) -> Result<usize, Vec<String>> {
    let mut base = Connection::open_in_memory().map_err(|e| vec![e.to_string()])?;
    for k in 1..=files.len() {
        let prefix = &files[..k];
        sqlite::apply_pending(&mut base, prefix)
            .map_err(|e| vec![format!("building version {}: {e:#}", files[k - 1].version)])?;
        let mut conn = Connection::open_in_memory().map_err(|e| vec![e.to_string()])?;
        rusqlite::backup::Backup::new(&base, &mut conn)
            .and_then(|b| b.run_to_completion(i32::MAX, Duration::ZERO, None))
            .map_err(|e| vec![format!("copying version {}: {e}", files[k - 1].version)])?;
        upgrade_filled(&mut conn, prefix, files, dir, fresh)?;
    }
    Ok(files.len())
}

pub(super) fn upgrade_filled(
    conn: &mut Connection,
    old: &[MigrationFile],
    head: &[MigrationFile],
    dir: &Path,
    fresh: &str,
) -> Result<(), Vec<String>> {
    let from = old.last().map_or(0, |f| f.version);
    fill(conn, dir, from).map_err(|e| vec![e])?;
    let before = sample_rows::counts(conn).map_err(|e| vec![e.to_string()])?;
    apply_with_stand_ins(conn, head, from)
        .map_err(|e| vec![format!("upgrading from version {from}: {e:#}")])?;
    let mut problems: Vec<String> = database_problems(conn)
        .into_iter()
        .map(|p| format!("after upgrading from version {from}: {p}"))
        .collect();
    match schema_dump::dump(conn) {
        Ok(upgraded) if upgraded == fresh => {}
        Ok(upgraded) => problems.push(format!(
            "upgrading from version {from} ends at a different schema than a fresh install:\n{}",
            similar::TextDiff::from_lines(fresh, upgraded.as_str())
                .unified_diff()
                .header("fresh", "upgraded")
        )),
        Err(e) => problems.push(e.to_string()),
    }
    let after = sample_rows::counts(conn).map_err(|e| vec![e.to_string()])?;
    let excused = rows_excused(head, from);
    for (table, rows) in &before {
        if let Some(now) = after.get(table)
            && now < rows
            && !excused.contains(table)
        {
            problems.push(format!(
                "upgrading from version {from}: table `{table}` went from {rows} to {now} row(s); if a migration deletes \
                 rows on purpose, say so in it with `-- deletes-rows: {table} <why>`"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `head` applied to a filled database, as an operator would: up to each
/// migration with a `-- xtask: refuse-unless-zero:` precondition, then its
/// `-- xtask: check-backfill:` statement in the place of the application's
/// backfill (which this check cannot run), then on. The runner counts the
/// precondition itself, so a stand-in that leaves rows in the way fails here.
fn apply_with_stand_ins(
    conn: &mut Connection,
    head: &[MigrationFile],
    from: i32,
) -> anyhow::Result<()> {
    for (k, file) in head.iter().enumerate().filter(|(_, f)| f.version > from) {
        let Some(precondition) = precondition::of(file)? else {
            continue;
        };
        sqlite::apply_pending(conn, &head[..k])?;
        if let Some(stand_in) = &precondition.check_backfill {
            conn.execute_batch(stand_in).with_context(|| {
                format!(
                    "{}: its `-- xtask: check-backfill:` statement failed",
                    file.path.display()
                )
            })?;
        }
    }
    sqlite::apply_pending(conn, head)?;
    Ok(())
}

/// Rows for the old schema at version `from`: the newest fixture
/// `fixtures/V{n}.sql` with n <= `from`, then generated rows for every table
/// it left empty.
pub(super) fn fill(conn: &Connection, dir: &Path, from: i32) -> Result<(), String> {
    if let Some(fixture) = fixture_for(dir, from) {
        let sql =
            std::fs::read_to_string(&fixture).map_err(|e| format!("{}: {e}", fixture.display()))?;
        conn.execute_batch(&sql)
            .map_err(|e| format!("{} (used at version {from}): {e}", fixture.display()))?;
    }
    sample_rows::fill(conn).map_err(|e| {
        format!(
            "at version {from}, {e}: write rows for it in {} (INSERTs valid at that version)",
            dir.join("fixtures").join(format!("V{from}.sql")).display()
        )
    })
}

pub(super) fn fixture_for(dir: &Path, from: i32) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir.join("fixtures")).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version: i32 = name.strip_prefix('V')?.strip_suffix(".sql")?.parse().ok()?;
            (version <= from).then(|| (version, e.path()))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, path)| path)
}

/// Tables whose rows the migrations after `from` delete on purpose.
pub(super) fn rows_excused(files: &[MigrationFile], from: i32) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.version > from)
        .flat_map(|f| crate::history::sql_text::split(&f.sql).1)
        .filter_map(|c| {
            let rest = c.text.strip_prefix("deletes-rows:")?.trim();
            let (table, why) = rest.split_once(char::is_whitespace)?;
            (!why.trim().is_empty()).then(|| table.to_owned())
        })
        .collect()
}

/// Integrity and foreign key problems of a database.
pub(super) fn database_problems(conn: &Connection) -> Vec<String> {
    let mut problems = Vec::new();
    match sqlite::integrity_problems(conn, "integrity_check") {
        Ok(found) => problems.extend(found.into_iter().map(|p| format!("integrity_check: {p}"))),
        Err(e) => problems.push(format!("integrity_check failed to run: {e}")),
    }
    match sqlite::foreign_key_violations(conn) {
        Ok(found) => problems.extend(found.into_iter().map(|p| format!("foreign_key_check: {p}"))),
        Err(e) => problems.push(format!("foreign_key_check failed to run: {e}")),
    }
    problems
}
