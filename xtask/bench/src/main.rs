//! NAME
//!     cargo xtask bench — measure the speed targets of the xtask and the operations tool
//!
//! `secrets-bench`, a program of its own (xtask/bench) that `cargo xtask
//! bench` runs, so that neither shipped binary carries the benchmarks.
//!
//! SYNOPSIS
//!     cargo xtask bench release [--runs N]
//!     cargo xtask bench migrations [--count N] [--runs N]
//!     cargo xtask bench migrate [--size 1GiB]
//!     cargo xtask bench backup [--size 200MiB] [--rate 100]      (see backup.rs)
//!     cargo xtask bench copy [--rows 1000000] [--postgres URL]   (see copy.rs)
//!     cargo xtask bench migrate-pg [--rows 1000000] [--postgres URL]  (see migrate_pg.rs)
//!     cargo xtask bench api [--backend PATH] [--seconds N] [--clients N] [--database-url URL]  (see api.rs)
//!     cargo xtask bench backfill [--rows 100000] [--backend PATH] [--clients N]  (see backfill.rs)
//!
//! DESCRIPTION
//!     `release` times, wall clock and including cargo's own start-up on a
//!     warm build, `cargo xtask version` (target < 150 ms) and
//!     `cargo xtask release patch --dry-run` (target < 400 ms). The dry run
//!     works on a fresh clone of HEAD in a temp folder, so a dirty work tree
//!     does not fail its preflight. Prints min / median / max per command.
//!
//!     `migrations` generates a synthetic expand-only history of N migrations
//!     (default 500) and reports, in-process, the time of every check of
//!     `migrations check` on it; the fresh-database check on the first 100
//!     (target < 50 ms); and, through cargo, the whole `cargo xtask
//!     migrations check` on this repository's migrations (target < 300 ms).
//!
//!     `migrate` builds a database of the given size (this repository's
//!     migrations, `secrets` filled with 16 KiB values) and a migration that
//!     adds an index to that table, then measures in one run: the runbook's
//!     service-down window (step 3 to a healthy step 6, through maintenance
//!     mode and a real backend when its binary is built), a plain `cp` of the
//!     database file, and the migration's SQL run alone. Goal: window <=
//!     1.3 x (cp + SQL). It also reports the xtask's peak memory (GNU time).

mod api;
mod backfill;
mod backup;
mod cold_build;
mod copy;
mod fixtures;
mod flags;
mod load;
mod migrate_pg;
mod service;

use fixtures::{fill_database, parse_size};

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use clap::Parser;
use flags::{BenchArgs, BenchCommand};
use secrets_ops::paths::Site;

fn main() -> std::process::ExitCode {
    let cli = flags::Cli::parse();
    let repo = match cli.repo {
        Some(repo) => std::path::absolute(&repo).unwrap_or(repo),
        None => {
            eprintln!(
                "error: give the checkout to measure with --repo DIR (`cargo xtask bench` does)"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match run(&repo, &cli.bench) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "error: {}",
                secrets_contract::dburl::redact(&format!("{error:#}"))
            );
            std::process::ExitCode::FAILURE
        }
    }
}

/// The operations binary beside this one (`make bench` builds both).
pub(crate) fn ops_binary() -> anyhow::Result<std::path::PathBuf> {
    let me = std::env::current_exe().context("finding the bench binary")?;
    let ops = me.with_file_name("secrets-ops");
    if !ops.is_file() {
        bail!(
            "{} is not built: run `cargo build -p secrets-ops -p backend` first (`make bench` does)",
            ops.display()
        );
    }
    Ok(ops)
}

pub fn run(repo: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    match &args.command {
        BenchCommand::Release { runs } => release(repo, *runs),
        BenchCommand::Build { runs } => cold_build::run(repo, *runs),
        BenchCommand::Migrations { count, runs } => migrations(repo, *count, *runs),
        BenchCommand::Migrate { size } => migrate_window(repo, size),
        BenchCommand::Backup { size, rate } => backup::run(repo, size, *rate),
        BenchCommand::Copy { rows, postgres } => copy::run(repo, *rows, postgres.as_deref()),
        BenchCommand::MigratePg { rows, postgres } => {
            migrate_pg::run(repo, *rows, postgres.as_deref())
        }
        BenchCommand::Api {
            backend,
            seconds,
            clients,
            database_url,
            to,
        } => api::run(
            repo,
            &api::Options {
                backend: backend.as_deref(),
                seconds: *seconds,
                clients: *clients,
                database_url: database_url.as_deref(),
                to: *to,
            },
        ),
        BenchCommand::Backfill {
            rows,
            backend,
            clients,
        } => backfill::run(repo, *rows, backend.as_deref(), *clients),
    }
}

const INDEX_SQL: &str = "CREATE INDEX secrets_created_name ON secrets (created_at, name);\n";

fn migrate_window(repo: &Path, size: &str) -> anyhow::Result<()> {
    let bytes = parse_size(size)?;
    let work = tempfile::TempDir::new().context("creating a temp folder")?;
    let migrations = work.path().join("migrations");
    std::fs::create_dir(&migrations)?;
    for file in secrets_ops::history::load(&repo.join("migrations"))? {
        std::fs::write(migrations.join(format!("{}.sql", file.stem())), &file.sql)?;
    }
    let db = work.path().join("bench.db");
    let build = Instant::now();
    fill_database(&db, &migrations, bytes)?;
    let next = secrets_ops::history::load(&migrations)?
        .last()
        .map_or(1, |f| f.version + 1);
    std::fs::write(
        migrations.join(format!("V{next}__bench_index.sql")),
        INDEX_SQL,
    )?;
    let db_size = std::fs::metadata(&db)?.len();
    println!(
        "built a {} MiB database in {:.1} s",
        db_size >> 20,
        build.elapsed().as_secs_f64()
    );

    let cp = time_cp(&db, &work.path().join("cp-copy.db"))?;
    let durable = time_durable_copy(&db, &work.path().join("durable-copy.db"))?;
    let sql = time_sql_alone(&db, &work.path().join("sql-copy.db"))?;
    let url = format!("sqlite:///{}", db.display());
    let (window, peak_kib, with_service) =
        fixtures::time_window(repo, &url, &migrations, work.path(), &[])?;
    let ratio = window.as_secs_f64() / (cp + sql).as_secs_f64();
    let durable_ratio = window.as_secs_f64() / (durable + sql).as_secs_f64();
    println!("cp of the database:        {:>8.3} s", cp.as_secs_f64());
    println!(
        "copy + fsync (durable):    {:>8.3} s",
        durable.as_secs_f64()
    );
    println!("migration SQL alone:       {:>8.3} s", sql.as_secs_f64());
    println!(
        "service-down window:       {:>8.3} s  ({})",
        window.as_secs_f64(),
        if with_service {
            "maintenance mode, real backend, health verified"
        } else {
            "no backend binary built: no service to take down"
        }
    );
    // A plain `cp` on a warm page cache is not durable, so this ratio swings
    // with the cache; the durable copy is the floor for a verified backup.
    println!("ratio window / (cp + SQL): {ratio:>8.2}  (cp alone is not durable: for reference)");
    println!(
        "ratio window / (durable copy + SQL): {durable_ratio:>5.2}  (goal <= 1.30: {})",
        if durable_ratio <= 1.3 {
            "met"
        } else {
            "MISSED"
        }
    );
    match peak_kib {
        Some(kib) => println!(
            "xtask peak memory:         {:>8} MiB (database {} MiB)",
            kib / 1024,
            db_size >> 20
        ),
        None => {
            println!("xtask peak memory:         not measured (GNU time is not at /usr/bin/time)")
        }
    }
    Ok(())
}

fn time_cp(db: &Path, to: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new("cp")
        .arg(db)
        .arg(to)
        .status()
        .context("running cp")?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("cp failed");
    }
    std::fs::remove_file(to)?;
    Ok(elapsed)
}

/// Copy and fsync: what a backup must at least cost to survive a crash.
fn time_durable_copy(db: &Path, to: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    std::fs::copy(db, to).with_context(|| format!("copying to {}", to.display()))?;
    std::fs::File::open(to)?
        .sync_all()
        .context("fsync of the copy")?;
    let elapsed = start.elapsed();
    std::fs::remove_file(to)?;
    Ok(elapsed)
}

fn time_sql_alone(db: &Path, copy: &Path) -> anyhow::Result<Duration> {
    std::fs::copy(db, copy)?;
    let conn = rusqlite::Connection::open(copy)?;
    let start = Instant::now();
    conn.execute_batch(INDEX_SQL)?;
    let elapsed = start.elapsed();
    drop(conn);
    std::fs::remove_file(copy)?;
    Ok(elapsed)
}

fn migrations(repo: &Path, count: usize, runs: usize) -> anyhow::Result<()> {
    let site = Site::checkout(repo)?;
    let history = tempfile::TempDir::new().context("creating a temp folder")?;
    let hundred = tempfile::TempDir::new().context("creating a temp folder")?;
    synthetic_history(history.path(), count)?;
    synthetic_history(hundred.path(), count.min(100))?;
    secrets_ops::migrations::check::check(&site, hundred.path(), true, None);
    let fresh_100: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            fresh_time(&secrets_ops::migrations::check::check(
                &site,
                hundred.path(),
                false,
                None,
            ))
        })
        .collect();
    println!(
        "fresh-database check, {} migrations, in-process: median {:.1} ms over {} runs (target < 50 ms)",
        count.min(100),
        median_ms(fresh_100),
        runs.max(1)
    );
    secrets_ops::migrations::check::check(&site, history.path(), true, None);
    let report = secrets_ops::migrations::check::check(&site, history.path(), false, None);
    println!(
        "migrations check on a synthetic history of {count} migrations, in-process, per check:"
    );
    for (name, verdict, elapsed) in report.timings() {
        println!(
            "  {name:20} {verdict:8} {:>10.1} ms",
            elapsed.as_secs_f64() * 1000.0
        );
    }
    if report.failed() {
        bail!(
            "the synthetic history should pass every check: {}",
            report.problems().join("; ")
        );
    }
    measure(
        repo,
        "cargo xtask migrations check",
        &["migrations", "check"],
        runs,
        300,
    )
}

fn fresh_time(report: &secrets_ops::migrations::check::Report) -> Duration {
    report
        .timings()
        .into_iter()
        .find(|(name, _, _)| *name == "fresh database")
        .map_or(Duration::ZERO, |(_, _, t)| t)
}

fn median_ms(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

/// Expand-only migrations: a new table every tenth, else a column or an
/// index (with the Postgres twin the lint asks for: built CONCURRENTLY, alone
/// in a no-transaction file).
fn synthetic_history(dir: &Path, count: usize) -> anyhow::Result<()> {
    let twins = dir.join(secrets_ops::history::POSTGRES_DIR);
    std::fs::create_dir_all(&twins).with_context(|| format!("creating {}", twins.display()))?;
    for i in 1..=count {
        let table = (i - 1) / 10;
        if i % 10 == 5 {
            let twin = twins.join(format!("V{i}__step_{i}.sql"));
            let sql = format!(
                "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY t{table}_name ON t{table} (name);\n"
            );
            std::fs::write(&twin, sql).with_context(|| format!("writing {}", twin.display()))?;
        }
        let table = (i - 1) / 10;
        let sql = match i % 10 {
            1 if table == 0 => "CREATE TABLE t0 (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);\n".to_owned(),
            1 => format!(
                "CREATE TABLE t{table} (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES t{} (id), name TEXT NOT NULL);\n",
                table - 1
            ),
            5 => format!("CREATE INDEX t{table}_name ON t{table} (name);\n"),
            n => format!("ALTER TABLE t{table} ADD COLUMN c{n} TEXT;\n"),
        };
        let path = dir.join(format!("V{i}__step_{i}.sql"));
        std::fs::write(&path, sql).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn release(repo: &Path, runs: usize) -> anyhow::Result<()> {
    let clone = tempfile::TempDir::new().context("creating a temp folder for the clone")?;
    let clone_dir = clone.path().join("repo");
    let cloned = Command::new("git")
        .args(["clone", "--quiet", "--local"])
        .arg(repo)
        .arg(&clone_dir)
        .status()
        .context("running git clone")?;
    if !cloned.success() {
        bail!(
            "git clone of {} failed: the benchmark needs a committed HEAD",
            repo.display()
        );
    }
    let clone_arg = clone_dir.to_string_lossy().into_owned();
    measure(repo, "cargo xtask version", &["version"], runs, 150)?;
    measure(
        repo,
        "cargo xtask release patch --dry-run",
        &["--repo", &clone_arg, "release", "patch", "--dry-run"],
        runs,
        400,
    )
}

/// Runs `cargo xtask <args>` once to warm up, then `runs` times, timing each.
fn measure(
    repo: &Path,
    label: &str,
    args: &[&str],
    runs: usize,
    target_ms: u128,
) -> anyhow::Result<()> {
    let once = || -> anyhow::Result<Duration> {
        let start = Instant::now();
        let out = Command::new("cargo")
            .arg("xtask")
            .args(args)
            .current_dir(repo)
            .output()
            .with_context(|| format!("running {label}"))?;
        let elapsed = start.elapsed();
        if !out.status.success() {
            bail!("{label} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(elapsed)
    };
    once()?;
    let mut times = (0..runs.max(1))
        .map(|_| once())
        .collect::<anyhow::Result<Vec<_>>>()?;
    times.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let median = &times[times.len() / 2];
    let verdict = if median.as_millis() < target_ms {
        "meets"
    } else {
        "MISSES"
    };
    println!(
        "{label}: min {:.0} ms, median {:.0} ms, max {:.0} ms over {} runs ({verdict} the < {target_ms} ms target)",
        ms(&times[0]),
        ms(median),
        ms(&times[times.len() - 1]),
        times.len()
    );
    Ok(())
}
