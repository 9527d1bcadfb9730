//! `cargo xtask bench backup [--size 200MiB] [--rate 100]`: the online
//! backup of a database of that size, idle and then under a writer
//! committing `rate` times a second, each through the real `cargo xtask
//! backup`. Goal: under load <= 2 x idle (a paged backup restarted on every
//! write and never finished).

use std::{
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

pub fn run(repo: &Path, size: &str, rate: u32) -> anyhow::Result<()> {
    let bytes = super::fixtures::parse_size(size)?;
    let work = tempfile::TempDir::new().context("creating a temp folder")?;
    let migrations = repo.join("migrations");
    let db = work.path().join("bench.db");
    super::fixtures::fill_database(&db, &migrations, bytes)?;
    let db_size = std::fs::metadata(&db)?.len();
    println!("built a {} MiB database", db_size >> 20);
    let idle = time_backup(repo, &db)?;
    let (loaded, commits) = under_writes(&db, rate, || time_backup(repo, &db))?;
    let ratio = loaded.as_secs_f64() / idle.as_secs_f64();
    println!(
        "backup, idle:                 {:>8.3} s",
        idle.as_secs_f64()
    );
    println!(
        "backup, {rate} writes/s:        {:>8.3} s  ({commits} commits meanwhile)",
        loaded.as_secs_f64()
    );
    println!(
        "ratio loaded / idle:          {ratio:>8.2}  (goal <= 2.00: {})",
        if ratio <= 2.0 { "met" } else { "MISSED" }
    );
    Ok(())
}

/// One `cargo xtask backup` (this binary), timed as a whole process.
fn time_backup(repo: &Path, db: &Path) -> anyhow::Result<Duration> {
    let me = crate::ops_binary()?;
    let start = Instant::now();
    let out = Command::new(me)
        .arg("--repo")
        .arg(repo)
        .args(["backup", "--database-url"])
        .arg(format!("sqlite:///{}", db.display()))
        .env("MIGRATE_KEEP_BACKUPS", "1")
        .output()
        .context("running cargo xtask backup")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "the backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

/// Runs `work` while a writer commits `rate` times a second to `db`.
fn under_writes<T>(
    db: &Path,
    rate: u32,
    work: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, commits) = (db.to_path_buf(), stop.clone(), commits.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let conn = rusqlite::Connection::open(&db)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            let pause = Duration::from_secs(1) / rate.max(1);
            while !stop.load(Ordering::Relaxed) {
                let n = commits.fetch_add(1, Ordering::Relaxed);
                conn.execute(
                    "INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES (?1, x'77', 'bench', '2026-01-01T00:00:00Z')",
                    [format!("load-{n}")],
                )?;
                std::thread::sleep(pause);
            }
            Ok(())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let result = work();
    stop.store(true, Ordering::Relaxed);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    Ok((result?, commits.load(Ordering::Relaxed)))
}
