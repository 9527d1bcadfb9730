//! NAME
//!     cargo xtask bench — measure the xtask's own speed targets
//!
//! SYNOPSIS
//!     cargo xtask bench release [--runs N]
//!
//! DESCRIPTION
//!     `release` times, wall clock and including cargo's own start-up on a
//!     warm build, `cargo xtask version` (target < 150 ms) and
//!     `cargo xtask release patch --dry-run` (target < 400 ms). The dry run
//!     works on a fresh clone of HEAD in a temp folder, so a dirty work tree
//!     does not fail its preflight. Prints min / median / max per command.

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
    }
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
