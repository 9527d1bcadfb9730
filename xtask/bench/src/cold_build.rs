//! `cargo xtask bench build`: what a fresh clone pays before its first
//! `cargo xtask` command, and what every later one pays, each beside the
//! same for a crate with no dependency in the same run (the machine's floor).
//!
//! Cold: `cargo xtask version` in a fresh clone of HEAD with an empty target
//! folder (target <= 60 s on two cores). Warm: the same command again
//! (target <= 80 ms), beside `cargo run` of the empty crate.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

pub fn run(repo: &Path, runs: usize) -> anyhow::Result<()> {
    let temp = tempfile::TempDir::new().context("creating a temp folder")?;
    let clone = temp.path().join("repo");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--local"])
        .arg(repo)
        .arg(&clone)
        .status()
        .context("running git clone")?;
    if !status.success() {
        bail!(
            "git clone of {} failed: the benchmark needs a committed HEAD",
            repo.display()
        );
    }
    let empty = temp.path().join("nodep");
    let status = Command::new("cargo")
        .args(["new", "--quiet", "--bin", "--vcs", "none"])
        .arg(&empty)
        .status()
        .context("running cargo new")?;
    if !status.success() {
        bail!("cargo new {} failed", empty.display());
    }
    let xtask = |dir: &Path| timed(dir, &["xtask", "version"]);
    let nodep = |dir: &Path| timed(dir, &["run", "--quiet"]);
    let cold_nodep = nodep(&empty)?;
    let cold_xtask = xtask(&clone)?;
    println!(
        "cold cargo xtask version (fresh clone, empty target folder): {:.1} s ({} the <= 60 s target); \
         a crate with no dependency, cold: {:.1} s",
        cold_xtask.as_secs_f64(),
        verdict(cold_xtask, Duration::from_secs(60)),
        cold_nodep.as_secs_f64()
    );
    let warm_xtask = median(runs, || xtask(&clone))?;
    let warm_nodep = median(runs, || nodep(&empty))?;
    println!(
        "warm cargo xtask version: median {:.0} ms over {runs} runs ({} the <= 80 ms target); \
         cargo run of a crate with no dependency: median {:.0} ms",
        ms(warm_xtask),
        verdict(warm_xtask, Duration::from_millis(80)),
        ms(warm_nodep)
    );
    Ok(())
}

/// One `cargo <args>` in `dir`, offline, in a target folder of its own.
fn timed(dir: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new("cargo")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "cargo {} in {} failed:\n{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

fn median(
    runs: usize,
    mut once: impl FnMut() -> anyhow::Result<Duration>,
) -> anyhow::Result<Duration> {
    once()?;
    let mut times = (0..runs.max(1))
        .map(|_| once())
        .collect::<anyhow::Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(measured: Duration, target: Duration) -> &'static str {
    if measured <= target {
        "meets"
    } else {
        "MISSES"
    }
}
