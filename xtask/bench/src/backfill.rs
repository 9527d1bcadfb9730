//! `cargo xtask bench backfill [--rows 100000] [--backend PATH] [--clients N]`:
//! the request latency while `backend seal` (the backfill of #14) seals the
//! rows the previous release wrote, under traffic.
//!
//! Fills a SQLite database at schema V5 with ROWS plaintext rows as the
//! previous release writes them (`value` set; `sealed_value` and `key_id`
//! NULL), starts the backend, keeps CLIENTS threads revealing those rows and
//! storing new 1 KiB secrets, and runs `PATH seal` meanwhile. Reports the
//! seal's duration, the p50 / p99 / worst latency of the requests that ran
//! during it against a few seconds before it, and that no row is left
//! unsealed. The binary must have the `seal` command (the sealing branch of
//! #14); the check runs before anything is built.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    load::{self, Api, Kind, Sample, Summary},
    service::{Binary, resolve_binary},
};

/// The schema the previous release's rows are written at: the expand
/// migration of #14, before any contract migration.
const EXPAND_VERSION: i32 = 5;
/// Traffic measured before the backfill starts, for comparison.
const BASELINE: Duration = Duration::from_secs(3);

pub fn run(repo: &Path, rows: u64, backend: Option<&Path>, clients: u64) -> anyhow::Result<()> {
    let work = tempfile::TempDir::new().context("creating a temp folder")?;
    let binary = Binary::probe(resolve_binary(backend)?, work.path())?;
    if !binary.has_command("seal")? {
        bail!(
            "{} has no `seal` command (`seal --help` did not exit 0): bench backfill needs a backend \
             with the backfill of #14; build that branch (`cargo build --release -p backend`) and \
             pass it with --backend PATH",
            binary.path.display()
        );
    }
    let db = work.path().join("bench.db");
    let filled = Instant::now();
    fill_unsealed(repo, &db, rows)?;
    println!(
        "bench backfill: {rows} unsealed rows at schema V{EXPAND_VERSION} in {:.1} s; {}",
        filled.elapsed().as_secs_f64(),
        binary.path.display()
    );
    let url = format!("sqlite:///{}", db.display());
    let token = binary.credentials(&url, "bench-backfill")?;
    let service = binary.serve(&url, token)?;
    println!(
        "backend version {}, {clients} client(s) revealing old rows and storing new ones",
        service.version
    );
    let (samples, sealing) =
        under_traffic(&Api::of(&service), rows, clients, || seal(&binary, &url))?;
    drop(service);
    report(&samples, sealing)?;
    let left = unsealed(&db)?;
    if left > 0 {
        bail!("`seal` exited 0 but {left} row(s) are still unsealed (sealed_value IS NULL)");
    }
    println!("unsealed rows left: 0");
    Ok(())
}

/// This repository's migrations up to V5, then `rows` rows as the previous
/// release inserts them: the plaintext in `value`, nothing sealed.
fn fill_unsealed(repo: &Path, db: &Path, rows: u64) -> anyhow::Result<()> {
    let files: Vec<_> = secrets_ops::history::load(&repo.join("migrations"))?
        .into_iter()
        .filter(|f| f.version <= EXPAND_VERSION)
        .collect();
    if files.last().map(|f| f.version) != Some(EXPAND_VERSION) {
        bail!("the repository's migrations stop before V{EXPAND_VERSION} (the expand of #14)");
    }
    let mut conn = secrets_ops::sqlite::open(db, true)?;
    secrets_ops::sqlite::apply_pending(&mut conn, &files)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO secrets (name, value, created_at) \
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
        )?;
        for i in 0..rows {
            insert.execute(rusqlite::params![old_name(i), load::value(i)])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

fn old_name(i: u64) -> String {
    format!("old-{i:09}")
}

/// Runs `work` while the clients alternate a reveal of a row spread over
/// the old ones and a store of a new secret; every sample, and when `work`
/// started and ended.
fn under_traffic(
    api: &Api,
    rows: u64,
    clients: u64,
    work: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<Sample>, (Instant, Instant))> {
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (api, stop) = (api.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            load::run_clients(clients, &stop, move |client, i| {
                if i % 2 == 0 {
                    // A stride coprime with most row counts walks the whole table.
                    let row = (client * 7919 + i * 104_729) % rows;
                    if api.reveal(&old_name(row))? != load::value(row) {
                        bail!(
                            "{} revealed another value than the previous release stored",
                            old_name(row)
                        );
                    }
                    Ok(Kind::Get)
                } else {
                    let name = format!("new-{client}-{i}");
                    api.store(&name, &load::value(i))?;
                    Ok(Kind::Post)
                }
            })
        })
    };
    std::thread::sleep(BASELINE);
    let start = Instant::now();
    let outcome = if stop.load(Ordering::Relaxed) {
        Ok(()) // the traffic already failed: its error is the one to report
    } else {
        work()
    };
    let end = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let samples = traffic
        .join()
        .map_err(|_| anyhow::anyhow!("the traffic thread panicked"))??;
    outcome?;
    Ok((samples.into_iter().flatten().collect(), (start, end)))
}

/// `PATH seal`, its progress passed through as it comes; fails on a
/// non-zero exit with what it said on stderr.
fn seal(binary: &Binary, url: &str) -> anyhow::Result<()> {
    let errors = binary.work.join("seal.stderr");
    let mut child = binary
        .command(url)
        .arg("seal")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(&errors)
                .with_context(|| format!("creating {}", errors.display()))?,
        )
        .spawn()
        .with_context(|| format!("running {} seal", binary.path.display()))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  seal: {line}");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let said = std::fs::read_to_string(&errors).unwrap_or_default();
        bail!(
            "`{} seal` failed ({status}): {}",
            binary.path.display(),
            said.trim()
        );
    }
    Ok(())
}

fn report(samples: &[Sample], (start, end): (Instant, Instant)) -> anyhow::Result<()> {
    let took = end - start;
    println!("seal took {:.2} s", took.as_secs_f64());
    let before: Vec<Sample> = samples
        .iter()
        .filter(|s| s.start < start)
        .copied()
        .collect();
    let during: Vec<Sample> = samples
        .iter()
        .filter(|s| s.start >= start && s.start <= end)
        .copied()
        .collect();
    if let Some(summary) = Summary::of(&before, BASELINE) {
        println!("{}", summary.line("before the backfill, all"));
    }
    let summary = Summary::of(&during, took).context("no request ran during the backfill")?;
    println!("{}", summary.line("during the backfill, all"));
    for (kind, label) in [
        (Kind::Get, "  of which GET (reveal)"),
        (Kind::Post, "  of which POST"),
    ] {
        let of_kind: Vec<Sample> = during.iter().filter(|s| s.kind == kind).copied().collect();
        if let Some(summary) = Summary::of(&of_kind, took) {
            println!("{}", summary.line(label));
        }
    }
    println!(
        "worst request during the backfill: {:.2} ms, p99 {:.2} ms",
        summary.max.as_secs_f64() * 1000.0,
        summary.p99.as_secs_f64() * 1000.0
    );
    Ok(())
}

fn unsealed(db: &Path) -> anyhow::Result<i64> {
    let conn = secrets_ops::sqlite::open_read_only(db)?;
    Ok(conn.query_row(
        "SELECT count(*) FROM secrets WHERE sealed_value IS NULL",
        [],
        |r| r.get(0),
    )?)
}
