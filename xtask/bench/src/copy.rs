//! NAME
//!     cargo xtask bench copy — `db copy` against pgloader and `psql \copy`
//!
//! SYNOPSIS
//!     cargo xtask bench copy [--rows 1000000] [--postgres URL]
//!
//! DESCRIPTION
//!     Generates a SQLite database at the latest schema holding ROWS rows
//!     (four fifths in `secrets`, one fifth in `secret_access_log`), then, in
//!     one run and each into its own freshly migrated scratch database on the
//!     server (URL, default $TEST_POSTGRES_URL or $MIGRATIONS_POSTGRES_URL):
//!       - `db copy`, in-process, as the command runs it (conversion, binary
//!         COPY, sequences, and the read-back verification included);
//!       - pgloader (Debian package `pgloader`), data only into the same
//!         migrated tables;
//!       - `psql \copy` of the same rows from CSV files written beforehand
//!         (writing them is not timed): the practical ceiling.
//!     Each load is checked by counting the rows it left. Reports rows/s.
//!     Goal: `db copy` >= 1.5 x pgloader and >= 0.5 x `\copy`.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rusqlite::Connection;
use secrets_contract::dburl::PgUrl;

use secrets_ops::{
    history::{self, Engine},
    pg, sqlite,
};

pub fn run(repo: &Path, rows: u64, postgres: Option<&str>) -> anyhow::Result<()> {
    let server = super::fixtures::server_url(postgres, "bench copy")?;
    let migrations = repo.join("migrations");
    let temp = tempfile::TempDir::new().context("creating a temp folder")?;
    let source = temp.path().join("source.db");
    let start = Instant::now();
    let (secrets, logs) = generate(&source, &migrations, rows)?;
    println!(
        "bench copy: {} rows ({secrets} secrets, {logs} access-log rows), SQLite {} MiB, generated in {:.1} s",
        secrets + logs,
        std::fs::metadata(&source)?.len() >> 20,
        start.elapsed().as_secs_f64()
    );
    let total = secrets + logs;

    let ours = {
        let target = super::fixtures::migrated_scratch(&server, &migrations, "bench_ours")?;
        let start = Instant::now();
        secrets_ops::copy::transfer::copy(&source, &target.url, &migrations, false)?;
        let elapsed = start.elapsed();
        expect_rows(&target.url, secrets, logs, "db copy")?;
        elapsed
    };
    report("db copy (binary COPY, verified)", total, ours);

    let pgloader = match Command::new("pgloader").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let target = super::fixtures::migrated_scratch(&server, &migrations, "bench_pgloader")?;
            let elapsed = run_pgloader(&source, &target.url, temp.path())?;
            expect_rows(&target.url, secrets, logs, "pgloader")?;
            report("pgloader (data only)", total, elapsed);
            Some(elapsed)
        }
        _ => {
            println!(
                "  pgloader                          not installed (Debian: apt-get install pgloader): not compared"
            );
            None
        }
    };

    let ceiling = {
        let csv = write_csvs(&source, temp.path())?;
        let target = super::fixtures::migrated_scratch(&server, &migrations, "bench_copy_csv")?;
        let elapsed = run_psql_copy(&target.url, &csv)?;
        expect_rows(&target.url, secrets, logs, "psql \\copy")?;
        elapsed
    };
    report("psql \\copy from CSV (ceiling)", total, ceiling);

    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    if let Some(pgloader) = pgloader {
        println!(
            "db copy / pgloader = {:.2}x (goal >= 1.5)",
            rate(ours) / rate(pgloader)
        );
    }
    println!(
        "db copy / \\copy ceiling = {:.2} (goal >= 0.5)",
        rate(ours) / rate(ceiling)
    );
    Ok(())
}

fn report(what: &str, rows: u64, elapsed: Duration) {
    println!(
        "  {what:34} {:>7.2} s  {:>10.0} rows/s",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
}

/// A SQLite database at the latest schema with `rows` rows, the way the
/// service writes them (RFC 3339 timestamps, every other secret expiring).
fn generate(path: &Path, migrations: &Path, rows: u64) -> anyhow::Result<(u64, u64)> {
    let files = history::load_for(migrations, Engine::Sqlite)?;
    let mut conn = sqlite::open(path, true)?;
    sqlite::apply_pending(&mut conn, &files)?;
    let secrets = rows - rows / 5;
    let logs = rows / 5;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO secrets (id, name, sealed_value, key_id, created_at, expires_at) VALUES (?1, ?2, ?3, 'bench', ?4, ?5)",
        )?;
        for i in 1..=secrets {
            let created = format!(
                "2026-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                1 + i % 12,
                1 + i % 28,
                i % 24,
                i % 60,
                (i / 60) % 60
            );
            let expires = (i % 2 == 0).then(|| "2099-12-31T23:59:59Z".to_owned());
            insert.execute(rusqlite::params![
                i as i64,
                format!("service-{i}.password"),
                // Stands in for a sealed value (the copy moves bytes, never opens them).
                format!(
                    "{:016x}{:016x}",
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    i ^ 0xdead_beef
                )
                .into_bytes(),
                created,
                expires
            ])?;
        }
        let mut log = tx.prepare(
            "INSERT INTO secret_access_log (secret_id, action, accessed_at) VALUES (?1, 'read', ?2)",
        )?;
        for i in 1..=logs {
            log.execute(rusqlite::params![
                (1 + i % secrets) as i64,
                "2026-11-24T00:00:00Z"
            ])?;
        }
    }
    tx.commit()?;
    Ok((secrets, logs))
}

fn expect_rows(url: &PgUrl, secrets: u64, logs: u64, who: &str) -> anyhow::Result<()> {
    let mut client = pg::connect(url, "bench copy")?;
    for (table, expected) in [("secrets", secrets), ("secret_access_log", logs)] {
        let found: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
            .get(0);
        if u64::try_from(found).unwrap_or(0) != expected {
            bail!("{who} left {found} rows in {table}, expected {expected}: its figure is void");
        }
    }
    Ok(())
}

fn run_pgloader(source: &Path, target: &PgUrl, dir: &Path) -> anyhow::Result<Duration> {
    let script = dir.join("load.pgloader");
    std::fs::write(
        &script,
        format!(
            "LOAD DATABASE\n  FROM sqlite://{}\n  INTO {}\n  WITH data only, reset sequences\n  \
             EXCLUDING TABLE NAMES LIKE '{}';\n",
            source.display(),
            target.connection_string(),
            sqlite::HISTORY_TABLE
        ),
    )?;
    let start = Instant::now();
    let out = Command::new("pgloader")
        .arg("--quiet")
        .arg(&script)
        .current_dir(dir)
        .output()
        .context("running pgloader")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "pgloader failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

/// The source's rows as CSV files, one per table (columns in table order).
fn write_csvs(source: &Path, dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let conn = Connection::open(source)?;
    let mut out = Vec::new();
    for table in ["secrets", "secret_access_log"] {
        let path = dir.join(format!("{table}.csv"));
        let mut file = BufWriter::new(File::create(&path)?);
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}"))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            for i in 0..columns {
                if i > 0 {
                    file.write_all(b",")?;
                }
                match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => {}
                    rusqlite::types::ValueRef::Integer(v) => write!(file, "{v}")?,
                    rusqlite::types::ValueRef::Real(v) => write!(file, "{v}")?,
                    rusqlite::types::ValueRef::Text(t) => {
                        write!(
                            file,
                            "\"{}\"",
                            String::from_utf8_lossy(t).replace('"', "\"\"")
                        )?;
                    }
                    rusqlite::types::ValueRef::Blob(_) => bail!("{table}: a blob cannot go to CSV"),
                }
            }
            file.write_all(b"\n")?;
        }
        file.flush()?;
        out.push((table.to_owned(), path));
    }
    Ok(out)
}

fn run_psql_copy(target: &PgUrl, csv: &[(String, PathBuf)]) -> anyhow::Result<Duration> {
    let mut args = vec![
        "--no-psqlrc".to_owned(),
        "--quiet".to_owned(),
        "--set=ON_ERROR_STOP=1".to_owned(),
    ];
    for (table, path) in csv {
        args.push("-c".into());
        args.push(format!(
            "\\copy {table} FROM '{}' WITH (FORMAT csv)",
            path.display()
        ));
    }
    let start = Instant::now();
    let out = Command::new("psql")
        .args(&args)
        .arg(target.connection_string())
        .output()
        .context("running psql")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "psql \\copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}
