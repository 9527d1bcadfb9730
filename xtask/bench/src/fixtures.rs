//! What the benchmarks build and run: sizes from the command line, databases
//! of this repository's schema filled to a size, scratch databases on a
//! Postgres server, and a timed run of the real `cargo xtask migrate`.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use secrets_contract::dburl::{DatabaseUrl, PgUrl};

use secrets_ops::{
    history::{self, Engine},
    pg::{self, Timeouts, scratch::ScratchDatabase},
};

pub(super) fn parse_size(size: &str) -> anyhow::Result<u64> {
    let lower = size.trim().to_ascii_lowercase();
    let (number, unit) = lower.split_at(
        lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len()),
    );
    let factor = match unit {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => bail!("size `{size}`: use a number with KiB, MiB or GiB, e.g. 1GiB"),
    };
    Ok(number
        .parse::<u64>()
        .with_context(|| format!("size `{size}` is not a number"))?
        * factor)
}

/// This repository's schema, `secrets` filled with 16 KiB values to `bytes`.
pub(super) fn fill_database(db: &Path, migrations: &Path, bytes: u64) -> anyhow::Result<()> {
    let files = secrets_ops::history::load(migrations)?;
    let mut conn = secrets_ops::sqlite::open(db, true)?;
    secrets_ops::sqlite::apply_pending(&mut conn, &files)?;
    // Stands in for a sealed value of the same size (nothing opens it here).
    let value: Vec<u8> = (0..16 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let rows = bytes / (16 * 1024 + 200);
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare("INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES (?1, ?2, 'bench', ?3)")?;
        for i in 0..rows {
            insert.execute(rusqlite::params![
                format!("secret-{i:09}"),
                value,
                format!("2026-01-01T00:00:{:02}Z", i % 60)
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

/// `--postgres`, else the test server's URL from the environment.
pub(super) fn server_url(postgres: Option<&str>, bench: &str) -> anyhow::Result<PgUrl> {
    let server = postgres
        .map(str::to_owned)
        .or_else(|| std::env::var("TEST_POSTGRES_URL").ok())
        .or_else(|| std::env::var(secrets_ops::migrations::parity::POSTGRES_ENV).ok())
        .filter(|v| !v.is_empty())
        .with_context(|| {
            format!(
                "{bench} needs a Postgres server: pass --postgres URL (or set TEST_POSTGRES_URL)"
            )
        })?;
    let DatabaseUrl::Postgres(server) = DatabaseUrl::parse(&server)? else {
        bail!("--postgres must be a postgres:// URL");
    };
    Ok(server)
}

pub(super) fn migrated_scratch(
    server: &PgUrl,
    migrations: &Path,
    label: &str,
) -> anyhow::Result<ScratchDatabase> {
    let scratch = ScratchDatabase::create(server, label)?;
    let files = history::load_for(migrations, Engine::Postgres)?;
    let mut client = pg::connect(&scratch.url, "bench copy")?;
    let timeouts = Timeouts {
        lock: Duration::from_secs(5),
        statement: Duration::from_secs(60),
    };
    pg::apply_pending(&mut client, &files, timeouts, &mut || Ok(()))?;
    Ok(scratch)
}

/// A key file for the benchmark's backend, made by the backend itself
/// (`backend key generate`) in the benchmark's work folder.
fn bench_key_file(backend_binary: &Path, work: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path = work.join("bench.key");
    if path.is_file() {
        return Ok(path);
    }
    let out = Command::new(backend_binary)
        .args(["key", "generate"])
        .arg(&path)
        .output()
        .context("running `backend key generate`")?;
    if !out.status.success() {
        bail!(
            "`backend key generate {}` failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(path)
}

/// Runs the real `cargo xtask migrate` binary (this one) on `url` with `env`
/// set; returns the downtime it reports, its peak RSS and whether a backend
/// was involved.
pub(super) fn time_window(
    repo: &Path,
    url: &str,
    migrations: &Path,
    work: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(Duration, Option<u64>, bool)> {
    let me = crate::ops_binary()?;
    let backend_binary = me.with_file_name("backend");
    let flag = work.join("bench.maintenance");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut backend = None;
    if backend_binary.is_file() {
        let key_file = bench_key_file(&backend_binary, work)?;
        let child = Command::new(&backend_binary)
            .env("DATABASE_URL", url)
            .env("SECRETS_KEY_FILE", &key_file)
            .env("SECRETS_MAINTENANCE_FLAG", &flag)
            .env("SECRETS_ADDR", format!("127.0.0.1:{port}"))
            .env("SECRETS_FRONTEND_DIR", work.join("no-ui"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting the backend")?;
        backend = Some(child);
        let health = format!("http://127.0.0.1:{port}/health");
        let ready = Instant::now();
        while ureq::get(&health).call().is_err() {
            if ready.elapsed() > Duration::from_secs(20) {
                bail!("the backend did not come up for the benchmark");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let time_file = work.join("peak-rss");
    let gnu_time = Path::new("/usr/bin/time");
    let mut cmd = if gnu_time.is_file() {
        let mut c = Command::new(gnu_time);
        c.arg("-f").arg("%M").arg("-o").arg(&time_file).arg(&me);
        c
    } else {
        Command::new(&me)
    };
    cmd.arg("--repo")
        .arg(repo)
        .args(["migrate", "--database-url", url, "--migrations"])
        .arg(migrations)
        .env("SECRETS_MAINTENANCE_FLAG", &flag)
        .env("MIGRATE_BACKUP_DIR", work)
        .envs(env.iter().copied());
    if backend.is_some() {
        cmd.env("MIGRATE_MAINTENANCE", "1").env(
            "MIGRATE_HEALTH_URL",
            format!("http://127.0.0.1:{port}/health"),
        );
    }
    let out = cmd.output().context("running cargo xtask migrate")?;
    if let Some(mut child) = backend {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the runbook failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in stdout.lines().filter(|l| l.starts_with('[')) {
        println!("  {line}");
    }
    let seconds: f64 = stdout
        .split("downtime ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .context("the runbook printed no downtime")?;
    let peak = std::fs::read_to_string(&time_file)
        .ok()
        .and_then(|t| t.trim().lines().last()?.parse().ok());
    Ok((
        Duration::from_secs_f64(seconds),
        peak,
        backend_binary.is_file(),
    ))
}
