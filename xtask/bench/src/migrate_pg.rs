//! `cargo xtask bench migrate-pg [--rows 1000000] [--postgres URL]`: the
//! Postgres window's downtime (service down → healthy again, as the runbook
//! prints it) on a scratch database of ROWS secrets, with a real backend in
//! maintenance mode and a trivial transactional migration (a nullable
//! column), run twice through the real `cargo xtask migrate`: with
//! `MIGRATE_PG_RESTORE_POINT=off` (`pg_dump` inside the window, the old
//! way) and with the restore point (a server-side copy inside the window,
//! dumped after). Then the building blocks alone: `pg_dump` custom format,
//! directory format with 2 jobs, and `CREATE DATABASE … TEMPLATE` with
//! each strategy. Goal: restore-point downtime <= 1.5 s on 1 M rows.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use secrets_contract::dburl::PgUrl;

use super::fixtures::{migrated_scratch, server_url, time_window};
use secrets_ops::pg;

pub fn run(repo: &Path, rows: u64, postgres: Option<&str>) -> anyhow::Result<()> {
    let server = server_url(postgres, "bench migrate-pg")?;
    let work = tempfile::TempDir::new().context("creating a temp folder")?;
    let migrations = work.path().join("migrations");
    copy_dir(&repo.join("migrations"), &migrations)?;
    let scratch = migrated_scratch(&server, &migrations, "bench_window")?;
    let start = Instant::now();
    fill(&scratch.url, rows)?;
    let mut client = pg::connect(&scratch.url, "bench migrate-pg")?;
    let bytes = secrets_ops::pg::backups::database_bytes(&mut client)?;
    drop(client);
    println!(
        "bench migrate-pg: {rows} rows in secrets, database {} MiB, filled in {:.1} s",
        bytes >> 20,
        start.elapsed().as_secs_f64()
    );
    let url = scratch.url.to_string();
    let mut next = next_version(&migrations)?;
    let mut window = |label: &str, env: &[(&str, &str)]| -> anyhow::Result<Duration> {
        add_trivial_migration(&migrations, next)?;
        next += 1;
        println!("{label}:");
        let (downtime, _, with_service) = time_window(repo, &url, &migrations, work.path(), env)?;
        if !with_service {
            bail!("no backend binary next to this one: build it (`cargo build -p backend`) first");
        }
        Ok(downtime)
    };
    let before = window(
        "window, pg_dump inside it",
        &[("MIGRATE_PG_RESTORE_POINT", "off")],
    )?;
    let after = window("window, restore point", &[])?;
    println!(
        "downtime, pg_dump inside the window: {:>7.3} s",
        before.as_secs_f64()
    );
    println!(
        "downtime, restore point:             {:>7.3} s  (goal <= 1.50: {})",
        after.as_secs_f64(),
        if after.as_secs_f64() <= 1.5 {
            "met"
        } else {
            "MISSED"
        }
    );
    alternatives(&scratch.url, work.path())
}

/// `rows` secrets of ~100 bytes each, in one statement.
fn fill(url: &PgUrl, rows: u64) -> anyhow::Result<()> {
    let mut client = pg::connect(url, "bench migrate-pg")?;
    let rows = i64::try_from(rows).context("--rows is too large")?;
    client.execute(
        "INSERT INTO secrets (name, sealed_value, key_id, created_at) \
         SELECT 'secret-' || lpad(i::text, 9, '0'), convert_to(repeat(md5(i::text), 3), 'UTF8'), 'bench', now() \
         FROM generate_series(1, $1::int8) AS i",
        &[&rows],
    )?;
    client.batch_execute("VACUUM ANALYZE secrets")?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

fn next_version(migrations: &Path) -> anyhow::Result<i32> {
    Ok(secrets_ops::history::load(migrations)?
        .last()
        .map_or(1, |f| f.version + 1))
}

/// A nullable column: instant on any size, so the window is all overhead.
fn add_trivial_migration(migrations: &Path, version: i32) -> anyhow::Result<()> {
    let path = migrations.join(format!("V{version}__bench_note_{version}.sql"));
    std::fs::write(
        &path,
        format!("ALTER TABLE secrets ADD COLUMN note_{version} TEXT;\n"),
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// The candidates for step 4, each timed alone on the same database.
fn alternatives(url: &PgUrl, work: &Path) -> anyhow::Result<()> {
    let dump = |args: &[&str], dest: &Path| -> anyhow::Result<Duration> {
        let start = Instant::now();
        let status = Command::new("pg_dump")
            .args(args)
            .arg("--file")
            .arg(dest)
            .arg("--dbname")
            .arg(url.without_password())
            .env(
                "PGPASSWORD",
                url.password()
                    .map(secrets_contract::dburl::percent_decode)
                    .unwrap_or_default(),
            )
            .status()
            .context("running pg_dump")?;
        if !status.success() {
            bail!("pg_dump {args:?} failed");
        }
        Ok(start.elapsed())
    };
    let custom = dump(&["--format=custom"], &work.join("alt.dump"))?;
    let directory = dump(&["--format=directory", "--jobs=2"], &work.join("alt.dir"))?;
    println!(
        "pg_dump --format=custom:               {:>7.3} s",
        custom.as_secs_f64()
    );
    println!(
        "pg_dump --format=directory --jobs=2:   {:>7.3} s",
        directory.as_secs_f64()
    );
    let mut admin = pg::connect(&url.with_database("postgres"), "bench migrate-pg")?;
    for strategy in ["WAL_LOG", "FILE_COPY"] {
        let copy = format!("{}_bench_copy", url.database());
        let start = Instant::now();
        admin.batch_execute(&format!(
            "CREATE DATABASE \"{copy}\" TEMPLATE \"{}\" STRATEGY {strategy}",
            url.database()
        ))?;
        let elapsed = start.elapsed();
        admin.batch_execute(&format!("DROP DATABASE \"{copy}\""))?;
        println!(
            "CREATE DATABASE … STRATEGY {strategy:9}: {:>7.3} s",
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
