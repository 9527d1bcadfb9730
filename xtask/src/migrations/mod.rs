//! NAME
//!     cargo xtask migrations — test the migration history; create the next migration
//!
//! SYNOPSIS
//!     cargo xtask migrations check [--migrations DIR] [--bless] [--json] [--postgres URL]
//!     cargo xtask migrations new <snake_case_name> [--migrations DIR]
//!
//! DESCRIPTION
//!     `check` runs, in order, and prints one line per check with its verdict
//!     and time (failures in full below; a check that cannot run says
//!     "skipped" and why — it never passes silently):
//!       1. files               names, unique versions, LF endings, no BEGIN/COMMIT/PRAGMA
//!       2. fresh database      everything applies to a new database exactly as
//!                              `migrate` does; integrity and foreign keys hold;
//!                              a second run applies nothing
//!       3. schema snapshot     the fresh schema equals `schema.sql` (`--bless` rewrites it)
//!       4. shipped immutable   files of the latest release tag are unchanged
//!       5. upgrade path        a database of the latest release (or of each
//!                              prefix of the history, before the first tag),
//!                              filled with rows, upgrades to the fresh schema
//!                              without losing rows
//!       6. zero-downtime lint  unreleased migrations: expand/contract rules
//!                              (see `zero_downtime.rs` and docs/migrations.md)
//!       7. postgres            the Postgres history (shared files, with the twins
//!                              of `postgres/` in their place) applies to a fresh
//!                              scratch database and ends at the same tables,
//!                              columns, nullability, keys and indexes as SQLite;
//!                              needs a server (`--postgres URL` or
//!                              MIGRATIONS_POSTGRES_URL), else "skipped"

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use backend::dburl::DatabaseUrl;
use rusqlite::Connection;
use serde_json::json;

use crate::{
    engine::pg,
    engine::sqlite,
    flags::{MigrationsArgs, MigrationsCommand},
    fsutil,
    git::Git,
    history::{self, Engine, MigrationFile},
    paths,
    release::bump,
    schema::dump as schema_dump,
    schema::model as schema_model,
    schema::sample_rows,
};

/// The committed schema snapshot, in the migrations folder.
const SNAPSHOT: &str = "schema.sql";

pub fn run(repo: &Path, args: &MigrationsArgs) -> anyhow::Result<()> {
    match &args.command {
        MigrationsCommand::Check(check_args) => {
            let dir = folder(repo, check_args.migrations.as_deref())?;
            let postgres = postgres_server(check_args.postgres.as_deref());
            let report = check(repo, &dir, check_args.bless, postgres.as_deref());
            if check_args.json {
                println!("{}", serde_json::to_string_pretty(&report.to_json(&dir))?);
            } else {
                report.print(&dir);
            }
            if report.failed() {
                bail!(
                    "migrations check failed: {}",
                    report.failed_names().join(", ")
                );
            }
            Ok(())
        }
        MigrationsCommand::New { name, migrations } => {
            new(&folder(repo, migrations.as_deref())?, name)
        }
        MigrationsCommand::Rules => {
            print!("{}", history::lint::rules_markdown());
            Ok(())
        }
    }
}

fn folder(repo: &Path, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = flag.map_or_else(|| paths::migrations_dir(repo), Path::to_path_buf);
    if !dir.is_dir() {
        bail!(
            "migrations folder {} does not exist: create it, or point --migrations at the right folder",
            dir.display()
        );
    }
    Ok(dir)
}

/// A check's verdict.
pub enum Outcome {
    Pass(String),
    Skip(String),
    Fail(Vec<String>),
}

pub struct CheckLine {
    name: &'static str,
    outcome: Outcome,
    elapsed: Duration,
}

#[derive(Default)]
pub struct Report {
    lines: Vec<CheckLine>,
}

impl Report {
    fn run(&mut self, name: &'static str, check: impl FnOnce() -> Outcome) {
        let start = Instant::now();
        let outcome = check();
        self.lines.push(CheckLine {
            name,
            outcome,
            elapsed: start.elapsed(),
        });
    }

    pub fn failed(&self) -> bool {
        self.lines
            .iter()
            .any(|l| matches!(l.outcome, Outcome::Fail(_)))
    }

    pub fn failed_names(&self) -> Vec<&'static str> {
        self.lines
            .iter()
            .filter(|l| matches!(l.outcome, Outcome::Fail(_)))
            .map(|l| l.name)
            .collect()
    }

    /// (check, verdict, time) per check, for the benchmark.
    pub fn timings(&self) -> Vec<(&'static str, &'static str, Duration)> {
        self.lines
            .iter()
            .map(|l| {
                let verdict = match l.outcome {
                    Outcome::Pass(_) => "ok",
                    Outcome::Skip(_) => "skipped",
                    Outcome::Fail(_) => "FAILED",
                };
                (l.name, verdict, l.elapsed)
            })
            .collect()
    }

    /// Every failure in full, one per line.
    pub fn problems(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match &l.outcome {
                Outcome::Fail(problems) => {
                    Some(problems.iter().map(move |p| format!("{}: {p}", l.name)))
                }
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn print(&self, dir: &Path) {
        println!("migrations check: {}", dir.display());
        for line in &self.lines {
            let (verdict, detail) = match &line.outcome {
                Outcome::Pass(detail) => ("ok", detail.clone()),
                Outcome::Skip(why) => ("skipped", why.clone()),
                Outcome::Fail(problems) => {
                    ("FAILED", format!("{} problem(s), below", problems.len()))
                }
            };
            println!(
                "  {verdict:8} {:20} {:>8.1} ms  {detail}",
                line.name,
                line.elapsed.as_secs_f64() * 1000.0
            );
        }
        for line in &self.lines {
            if let Outcome::Fail(problems) = &line.outcome {
                println!("\n{} failed:", line.name);
                for problem in problems {
                    println!("  {}", problem.replace('\n', "\n  "));
                }
            }
        }
    }

    fn to_json(&self, dir: &Path) -> serde_json::Value {
        let checks: Vec<_> = self
            .lines
            .iter()
            .map(|l| {
                let (verdict, detail, problems) = match &l.outcome {
                    Outcome::Pass(d) => ("ok", d.clone(), Vec::new()),
                    Outcome::Skip(d) => ("skipped", d.clone(), Vec::new()),
                    Outcome::Fail(p) => ("failed", String::new(), p.clone()),
                };
                json!({"name": l.name, "verdict": verdict, "ms": l.elapsed.as_secs_f64() * 1000.0, "detail": detail, "problems": problems})
            })
            .collect();
        json!({"migrations": dir.display().to_string(), "ok": !self.failed(), "checks": checks})
    }
}

/// Runs every check on `dir`; `bless` rewrites the schema snapshot first.
pub fn check(repo: &Path, dir: &Path, bless: bool, postgres: Option<&str>) -> Report {
    let mut report = Report::default();
    report.run("files", || files_check(dir));
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
    let shipped = latest_release(repo, dir);
    report.run("shipped immutable", || immutable(&shipped, &files, dir));
    report.run("upgrade path", || {
        upgrade_path(&shipped, &files, dir, &fresh_schema)
    });
    report.run("zero-downtime lint", || zero_downtime(&shipped, &files));
    report.run("postgres", || postgres_check(dir, &files, postgres));
    report
}

/// Where `migrations check` finds a Postgres server for its seventh check.
pub const POSTGRES_ENV: &str = "MIGRATIONS_POSTGRES_URL";

/// The server for the seventh check: `--postgres`, else
/// `MIGRATIONS_POSTGRES_URL`, else `DATABASE_URL` when it names Postgres (the
/// check works in a scratch database beside it and never touches it).
pub fn postgres_server(flag: Option<&str>) -> Option<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    flag.map(str::to_owned)
        .or_else(|| env(POSTGRES_ENV))
        .or_else(|| {
            env(backend::dburl::ENV)
                .filter(|url| matches!(DatabaseUrl::parse(url), Ok(DatabaseUrl::Postgres(_))))
        })
}

/// Check 7: the Postgres history (with its twins) applies to a fresh
/// database exactly as `migrate` does it, a second run applies nothing, and
/// the result has the same tables, columns, nullability, keys and indexes as
/// SQLite's fresh schema.
fn postgres_check(dir: &Path, sqlite_files: &[MigrationFile], server: Option<&str>) -> Outcome {
    let Some(server) = server else {
        return Outcome::Skip(format!(
            "no Postgres server: pass --postgres URL, or set {POSTGRES_ENV} (or a postgres:// DATABASE_URL), to prove the Postgres history"
        ));
    };
    match postgres_equivalent(dir, sqlite_files, server) {
        Ok(detail) => Outcome::Pass(detail),
        Err(problems) => Outcome::Fail(problems),
    }
}

fn postgres_equivalent(
    dir: &Path,
    sqlite_files: &[MigrationFile],
    server: &str,
) -> Result<String, Vec<String>> {
    let fail = |e: anyhow::Error| vec![format!("{e:#}")];
    let DatabaseUrl::Postgres(server) = DatabaseUrl::parse(server).map_err(|e| fail(e.into()))?
    else {
        return Err(vec![format!("{POSTGRES_ENV} must be a postgres:// URL")]);
    };
    let files = history::load_for(dir, Engine::Postgres).map_err(fail)?;
    let twins = files
        .iter()
        .filter(|f| {
            f.path
                .parent()
                .is_some_and(|p| p.ends_with(history::POSTGRES_DIR))
        })
        .count();
    let scratch = pg::ScratchDatabase::create(&server, "check").map_err(fail)?;
    let mut client = pg::connect(&scratch.url, "migrations check").map_err(fail)?;
    let timeouts = pg::Timeouts {
        lock: Duration::from_secs(5),
        statement: Duration::from_secs(60),
    };
    pg::apply_pending(&mut client, &files, timeouts, &mut || Ok(())).map_err(fail)?;
    let again = pg::apply_pending(&mut client, &files, timeouts, &mut || Ok(())).map_err(fail)?;
    if !again.is_empty() {
        return Err(vec![format!(
            "a second run applied {} migration(s) again",
            again.len()
        )]);
    }
    let pg_schema = schema_model::postgres(&mut client).map_err(fail)?;
    let temp = tempfile::TempDir::new()
        .context("creating a temp folder")
        .map_err(fail)?;
    let mut conn = sqlite::open(&temp.path().join("fresh.db"), true).map_err(fail)?;
    sqlite::apply_pending(&mut conn, sqlite_files).map_err(fail)?;
    let sqlite_schema = schema_model::sqlite(&conn).map_err(fail)?;
    let differences = schema_model::differences("SQLite", &sqlite_schema, "Postgres", &pg_schema);
    if !differences.is_empty() {
        return Err(differences
            .into_iter()
            .map(|d| {
                format!(
                    "{d} — the engines' histories diverge: fix the Postgres twin in {}/",
                    history::POSTGRES_DIR
                )
            })
            .collect());
    }
    Ok(format!(
        "{} migration(s) ({twins} Postgres twin(s)) apply to a fresh Postgres database; {} tables match SQLite's (columns, nullability, keys, indexes)",
        files.len(),
        pg_schema.len()
    ))
}

fn files_check(dir: &Path) -> Outcome {
    match history::name_problems(dir) {
        Ok(problems) if problems.is_empty() => {
            Outcome::Pass("names, versions, line endings and statements are fine".into())
        }
        Ok(problems) => Outcome::Fail(problems),
        Err(e) => Outcome::Fail(vec![format!("{e:#}")]),
    }
}

/// Applies everything to a new database file exactly as `migrate` does and
/// returns its schema.
fn fresh_database(files: &[MigrationFile]) -> Result<String, Vec<String>> {
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

/// Integrity and foreign key problems of a database.
fn database_problems(conn: &Connection) -> Vec<String> {
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

fn schema_snapshot(dir: &Path, fresh: &str, bless: bool) -> Outcome {
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
            "{} is missing: create it with `cargo xtask migrations check --bless` and commit it",
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
         `cargo xtask migrations check --bless` and commit it with the migration.",
        path.display()
    )])
}

/// The latest release tag and the migrations as they were there.
struct Shipped {
    tag: String,
    files: Vec<MigrationFile>,
    /// The Postgres twins as they shipped.
    twins: Vec<MigrationFile>,
}

/// Ok(None): no release tag yet. Err: git cannot say (why).
fn latest_release(repo: &Path, dir: &Path) -> Result<Option<Shipped>, String> {
    let git = Git::new(dir).map_err(|e| format!("{e:#}"))?;
    if !git.is_work_tree() {
        return Err(format!(
            "{} is not in a git work tree, so the release history cannot be read",
            dir.display()
        ));
    }
    let prefix = crate::config::release(repo)
        .map(|c| c.tag_prefix)
        .unwrap_or_else(|_| "v".into());
    let tags = git.tags(&prefix).map_err(|e| format!("{e:#}"))?;
    let latest = tags
        .iter()
        .filter_map(|t| bump::parse(t.strip_prefix(&prefix)?).ok().map(|v| (v, t)))
        .max_by(|a, b| a.0.cmp_precedence(&b.0));
    let Some((_, tag)) = latest else {
        return Ok(None);
    };
    Ok(Some(Shipped {
        tag: tag.clone(),
        files: shipped_files(&git, tag, ".")?,
        twins: shipped_files(&git, tag, &format!("{}/", history::POSTGRES_DIR))?,
    }))
}

/// The migration files of `folder` (relative to the migrations folder) at `tag`.
fn shipped_files(git: &Git, tag: &str, folder: &str) -> Result<Vec<MigrationFile>, String> {
    let mut files = Vec::new();
    for name in git.files_at(tag, folder).map_err(|e| format!("{e:#}"))? {
        let file_name = name.rsplit('/').next().unwrap_or(&name);
        let Some((version, stem)) = history::parse_file_name(file_name) else {
            continue;
        };
        let bytes = git.show_file(tag, &name).map_err(|e| format!("{e:#}"))?;
        files.push(MigrationFile {
            version,
            name: stem.to_owned(),
            path: PathBuf::from(format!("{tag}:{name}")),
            sql: String::from_utf8(bytes).map_err(|_| format!("{tag}:{name} is not UTF-8"))?,
        });
    }
    files.sort_by_key(|f| f.version);
    Ok(files)
}

fn immutable(
    shipped: &Result<Option<Shipped>, String>,
    files: &[MigrationFile],
    dir: &Path,
) -> Outcome {
    let shipped = match shipped {
        Err(why) => return Outcome::Skip(why.clone()),
        Ok(None) => return Outcome::Skip("no release tag yet: nothing has shipped".into()),
        Ok(Some(shipped)) => shipped,
    };
    let mut problems = Vec::new();
    let twins_dir = dir.join(history::POSTGRES_DIR);
    let twins = if twins_dir.is_dir() {
        match history::load(&twins_dir) {
            Ok(twins) => twins,
            Err(e) => return Outcome::Fail(vec![format!("{e:#}")]),
        }
    } else {
        Vec::new()
    };
    // A shipped twin may not change either; a new twin for a shipped
    // version would fork the engines' histories, so it counts as a change.
    unchanged(&shipped.twins, &twins, &shipped.tag, &mut problems);
    for twin in twins.iter().filter(|t| {
        shipped.files.iter().any(|f| f.version == t.version)
            && !shipped.twins.iter().any(|s| s.version == t.version)
    }) {
        problems.push(format!(
            "{}: a Postgres twin added for V{}, which shipped in {} without one — databases that ran the shared \
             file would refuse it; put the Postgres change in a new migration",
            twin.path.display(),
            twin.version,
            shipped.tag
        ));
    }
    unchanged(&shipped.files, files, &shipped.tag, &mut problems);
    let newest_shipped = shipped.files.last().map_or(0, |f| f.version);
    for file in files.iter().filter(|f| {
        f.version < newest_shipped && !shipped.files.iter().any(|s| s.version == f.version)
    }) {
        problems.push(format!(
            "{}: new since {} but numbered below its newest migration (V{newest_shipped}); refinery would refuse it on \
             upgraded databases — renumber it above {newest_shipped}",
            file.path.display(), shipped.tag
        ));
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{} file(s) and {} Postgres twin(s) of {} unchanged",
            shipped.files.len(),
            shipped.twins.len(),
            shipped.tag
        ))
    } else {
        Outcome::Fail(problems)
    }
}

/// Shipped files that were deleted or changed since `tag`.
fn unchanged(
    shipped: &[MigrationFile],
    now: &[MigrationFile],
    tag: &str,
    problems: &mut Vec<String>,
) {
    for old in shipped {
        match now.iter().find(|f| f.version == old.version) {
            None => problems.push(format!(
                "{}: shipped in {tag} but deleted — restore it (`git checkout {tag} -- <file>`); undo schema in a new migration",
                old.path.display()
            )),
            Some(file) if file.sql != old.sql || file.name != old.name => problems.push(format!(
                "{}: changed since it shipped in {tag} — databases that ran it will refuse the new file; \
                 restore it (`git checkout {tag} -- {}`) and put the change in a new migration",
                file.path.display(), file.path.display()
            )),
            Some(_) => {}
        }
    }
}

fn upgrade_path(
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
fn upgrade_from(
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
fn upgrade_from_each_prefix(
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

fn upgrade_filled(
    conn: &mut Connection,
    old: &[MigrationFile],
    head: &[MigrationFile],
    dir: &Path,
    fresh: &str,
) -> Result<(), Vec<String>> {
    let from = old.last().map_or(0, |f| f.version);
    fill(conn, dir, from).map_err(|e| vec![e])?;
    let before = sample_rows::counts(conn).map_err(|e| vec![e.to_string()])?;
    sqlite::apply_pending(conn, head)
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

/// Rows for the old schema at version `from`: the newest fixture
/// `fixtures/V{n}.sql` with n <= `from`, then generated rows for every table
/// it left empty.
fn fill(conn: &Connection, dir: &Path, from: i32) -> Result<(), String> {
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

fn fixture_for(dir: &Path, from: i32) -> Option<PathBuf> {
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
fn rows_excused(files: &[MigrationFile], from: i32) -> Vec<String> {
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

fn zero_downtime(shipped: &Result<Option<Shipped>, String>, files: &[MigrationFile]) -> Outcome {
    let (released_up_to, scope) = match shipped {
        Ok(Some(s)) => (
            s.files.last().map_or(0, |f| f.version),
            format!("after {}", s.tag),
        ),
        Ok(None) => (0, "no release tag yet, so all".into()),
        Err(why) => (0, format!("{why}; treating all as unreleased:")),
    };
    let unreleased: Vec<&MigrationFile> = files
        .iter()
        .filter(|f| f.version > released_up_to)
        .collect();
    let findings: Vec<String> = unreleased
        .iter()
        .flat_map(|f| history::lint::lint(f))
        .map(|f| f.to_string())
        .collect();
    if !findings.is_empty() {
        return Outcome::Fail(findings);
    }
    let contracts = unreleased
        .iter()
        .filter(|f| history::lint::contract_reason(f).is_some())
        .count();
    Outcome::Pass(format!(
        "{scope} {} unreleased migration(s) checked; {contracts} declared contract",
        unreleased.len()
    ))
}

/// `migrations new`: the next `V{n}__{name}.sql`.
fn new(dir: &Path, name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && history::parse_file_name(&format!("V1__{name}.sql")).is_some()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with('_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !valid {
        bail!(
            "`{name}` is not a snake_case name (lower-case letters, digits and single underscores), e.g. add_secret_owner"
        );
    }
    let files = history::load(dir)?;
    let next = files.last().map_or(1, |f| f.version + 1);
    let path = dir.join(format!("V{next}__{name}.sql"));
    let template = format!(
        "-- {}\n--\n-- Expand changes only (new tables, indexes, nullable or defaulted columns), or contract\n\
         -- changes alone with a `-- contract: <why it is safe now>` line: see docs/migrations.md.\n\n",
        name.replace('_', " ")
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, template.as_bytes()))
        .with_context(|| format!("creating {}", path.display()))?;
    println!("created {}", path.display());
    println!(
        "write the SQL, then run `cargo xtask migrations check --bless` and commit both files"
    );
    Ok(())
}
