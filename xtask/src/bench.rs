//! NAME
//!     cargo xtask bench — measure the xtask's own speed targets
//!
//! SYNOPSIS
//!     cargo xtask bench release [--runs N]
//!     cargo xtask bench migrations [--count N] [--runs N]
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

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::flags::{BenchArgs, BenchCommand};

pub fn run(repo: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    match &args.command {
        BenchCommand::Release { runs } => release(repo, *runs),
        BenchCommand::Migrations { count, runs } => migrations(repo, *count, *runs),
    }
}

fn migrations(repo: &Path, count: usize, runs: usize) -> anyhow::Result<()> {
    let history = tempfile::TempDir::new().context("creating a temp folder")?;
    let hundred = tempfile::TempDir::new().context("creating a temp folder")?;
    synthetic_history(history.path(), count)?;
    synthetic_history(hundred.path(), count.min(100))?;
    crate::migrations::check(repo, hundred.path(), true);
    let fresh_100: Vec<Duration> = (0..runs.max(1))
        .map(|_| fresh_time(&crate::migrations::check(repo, hundred.path(), false)))
        .collect();
    println!(
        "fresh-database check, {} migrations, in-process: median {:.1} ms over {} runs (target < 50 ms)",
        count.min(100),
        median_ms(fresh_100),
        runs.max(1)
    );
    crate::migrations::check(repo, history.path(), true);
    let report = crate::migrations::check(repo, history.path(), false);
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

fn fresh_time(report: &crate::migrations::Report) -> Duration {
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

/// Expand-only migrations: a new table every tenth, else a column or an index.
fn synthetic_history(dir: &Path, count: usize) -> anyhow::Result<()> {
    for i in 1..=count {
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
