//! `migrations check`: every check of the history, in order, into one
//! [`Report`]. `release` runs it before tagging, the benchmark times it.

use crate::program::OPS;
use std::path::Path;

use anyhow::Context;

use super::{
    parity::postgres_check,
    report::Outcome,
    shipped::{Shipped, immutable, latest_release},
    upgrade::{database_problems, upgrade_path},
};
use crate::{
    fsutil,
    history::{self, Engine, MigrationFile, lint},
    paths::Site,
    schema::dump as schema_dump,
    sqlite,
};

pub use super::report::Report;

/// The committed schema snapshot, in the migrations folder.
pub(super) const SNAPSHOT: &str = "schema.sql";

/// Runs every check on `dir`; `bless` rewrites the schema snapshot first.
pub fn check(site: &Site, dir: &Path, bless: bool, postgres: Option<&str>) -> Report {
    let mut report = Report::default();
    report.run("files", || files_check(site, dir));
    let files = match history::load(dir) {
        Ok(files) => files,
        Err(e) => {
            let why = format!("the migrations could not be loaded: {e:#}");
            for name in [
                "fresh database",
                "schema snapshot",
                "shipped immutable",
                "upgrade path",
                "zero-downtime lint",
                "postgres",
            ] {
                report.run(name, || Outcome::Skip(why.clone()));
            }
            return report;
        }
    };
    let mut fresh_schema = None;
    report.run("fresh database", || match fresh_database(&files) {
        Ok(schema) => {
            fresh_schema = Some(schema);
            Outcome::Pass(format!("{} migration(s) apply; integrity and foreign keys hold; a second run applies nothing", files.len()))
        }
        Err(problems) => Outcome::Fail(problems),
    });
    let Some(fresh_schema) = fresh_schema else {
        for name in [
            "schema snapshot",
            "shipped immutable",
            "upgrade path",
            "zero-downtime lint",
            "postgres",
        ] {
            report.run(name, || {
                Outcome::Skip("the migrations do not apply to a fresh database".into())
            });
        }
        return report;
    };
    report.run("schema snapshot", || {
        schema_snapshot(dir, &fresh_schema, bless)
    });
    let shipped = latest_release(site, dir);
    report.run("shipped immutable", || immutable(&shipped, &files, dir));
    report.run("upgrade path", || {
        upgrade_path(&shipped, &files, dir, &fresh_schema)
    });
    report.run("zero-downtime lint", || {
        zero_downtime(&shipped, &files, dir)
    });
    report.run("postgres", || postgres_check(dir, &files, postgres));
    report
}

/// Names, versions (gaps beyond `allow-gaps` included), line endings, statements.
pub(super) fn files_check(site: &Site, dir: &Path) -> Outcome {
    let allowed = match site.migrate_config() {
        Ok(config) => config.allow_gaps.unwrap_or_default(),
        Err(e) => return Outcome::Fail(vec![format!("{e:#}")]),
    };
    match history::name_problems(dir, &allowed) {
        Ok(problems) if problems.is_empty() => {
            Outcome::Pass("names, versions, line endings and statements are fine".into())
        }
        Ok(problems) => Outcome::Fail(problems),
        Err(e) => Outcome::Fail(vec![format!("{e:#}")]),
    }
}

/// Applies everything to a new database file exactly as `migrate` does and
/// returns its schema.
pub(super) fn fresh_database(files: &[MigrationFile]) -> Result<String, Vec<String>> {
    let fail = |e: anyhow::Error| vec![format!("{e:#}")];
    let temp = tempfile::TempDir::new()
        .context("creating a temp folder")
        .map_err(fail)?;
    let mut conn = sqlite::open(&temp.path().join("fresh.db"), true).map_err(fail)?;
    sqlite::apply_pending(&mut conn, files).map_err(fail)?;
    let mut problems = database_problems(&conn);
    match sqlite::apply_pending(&mut conn, files) {
        Ok(again) if again.is_empty() => {}
        Ok(again) => problems.push(format!(
            "a second run applied {} migration(s) again",
            again.len()
        )),
        Err(e) => problems.push(format!("a second run failed: {e:#}")),
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    schema_dump::dump(&conn).map_err(|e| vec![format!("reading the schema: {e}")])
}

pub(super) fn schema_snapshot(dir: &Path, fresh: &str, bless: bool) -> Outcome {
    let path = dir.join(SNAPSHOT);
    if bless {
        return match fsutil::write_atomic(&path, fresh.as_bytes()) {
            Ok(()) => Outcome::Pass(format!(
                "{} rewritten (--bless): review its diff",
                path.display()
            )),
            Err(e) => Outcome::Fail(vec![format!("{e:#}")]),
        };
    }
    let Ok(committed) = std::fs::read_to_string(&path) else {
        return Outcome::Fail(vec![format!(
            "{} is missing: create it with `{OPS} migrations check --bless` and commit it",
            path.display()
        )]);
    };
    if committed.replace("\r\n", "\n") == fresh {
        return Outcome::Pass(format!("matches {SNAPSHOT}"));
    }
    let diff = similar::TextDiff::from_lines(committed.as_str(), fresh)
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{SNAPSHOT} (committed)"),
            "schema after the migrations",
        )
        .to_string();
    Outcome::Fail(vec![format!(
        "{} differs from the schema the migrations produce:\n{diff}\nIf the change is intended, rewrite it with \
         `{OPS} migrations check --bless` and commit it with the migration.",
        path.display()
    )])
}

pub(super) fn zero_downtime(
    shipped: &Result<Option<Shipped>, String>,
    files: &[MigrationFile],
    dir: &Path,
) -> Outcome {
    let (released_up_to, scope) = match shipped {
        Ok(Some(s)) => (
            s.files.last().map_or(0, |f| f.version),
            format!("after {}", s.tag),
        ),
        Ok(None) => (0, "no release tag yet, so all".into()),
        Err(why) => (0, format!("{why}; treating all as unreleased:")),
    };
    // The twins are linted too, as Postgres reads them.
    let postgres = match history::load_for(dir, Engine::Postgres) {
        Ok(postgres) => postgres,
        Err(e) => return Outcome::Fail(vec![format!("{e:#}")]),
    };
    let twin_of = |f: &MigrationFile| {
        postgres
            .iter()
            .find(|t| t.version == f.version && t.is_postgres_twin())
    };
    let unreleased: Vec<&MigrationFile> = files
        .iter()
        .filter(|f| f.version > released_up_to)
        .collect();
    let findings: Vec<String> = unreleased
        .iter()
        .flat_map(|f| lint::lint_migration(f, twin_of(f)))
        .map(|f| f.to_string())
        .collect();
    if !findings.is_empty() {
        return Outcome::Fail(findings);
    }
    let twins = unreleased.iter().filter(|f| twin_of(f).is_some()).count();
    let contracts = unreleased
        .iter()
        .filter(|f| lint::declared_contract(f, twin_of(f)).is_some())
        .count();
    Outcome::Pass(format!(
        "{scope} {} unreleased migration(s) checked ({twins} with a Postgres twin); {contracts} declared contract",
        unreleased.len()
    ))
}
