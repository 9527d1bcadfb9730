//! `cargo xtask bench api [--backend PATH] [--seconds N] [--clients N]
//! [--database-url URL] [--to N]`: the API's throughput and latency for a 1 KiB
//! secret (#14: sealing and authentication may cost at most 10 %).
//!
//! Starts the backend binary on a fresh SQLite database migrated with this
//! repository's migrations (and, with `--database-url`, on that empty
//! Postgres database, migrated the same way); CLIENTS threads POST 1 KiB
//! secrets for SECONDS, then GET (reveal) what they stored for SECONDS.
//! Prints requests/s and p50 / p99 / max latency of each, and the version
//! the binary reports. A binary with authentication (it has `token`) gets a
//! key file and a token made with its own commands; an older one needs
//! neither; `--to N` migrates only as far as an older binary's schema (a
//! binary from before #14 writes the plaintext column V6 drops: `--to 4`).
//! Measure "before" and "after" on the same machine, back to back:
//! on a shared machine the spread between runs is the noise floor.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use secrets_contract::dburl::{DatabaseUrl, PgUrl};

use super::{
    load::{self, Api, Kind, Sample, Summary},
    service::{Binary, resolve_binary},
};
use secrets_ops::{
    history::{self, Engine},
    pg::{self, Timeouts},
};

pub struct Options<'a> {
    pub backend: Option<&'a Path>,
    pub seconds: u64,
    pub clients: u64,
    pub database_url: Option<&'a str>,
    /// Migrate only up to this version: the schema an older binary was built for.
    pub to: Option<i32>,
}

pub fn run(repo: &Path, options: &Options) -> anyhow::Result<()> {
    // Checked before anything is built or started.
    let postgres = options.database_url.map(postgres_url).transpose()?;
    let work = tempfile::TempDir::new().context("creating a temp folder")?;
    let binary = Binary::probe(resolve_binary(options.backend)?, work.path())?;
    println!(
        "bench api: {} ({}), {} client(s), {} s of POSTs then {} s of GETs, 1 KiB values",
        binary.path.display(),
        if binary.auth {
            "bearer token required: key and token made with its own commands"
        } else {
            "no authentication"
        },
        options.clients,
        options.seconds,
        options.seconds
    );
    // A database that is not empty is refused before anything is measured.
    if let Some(url) = &postgres {
        migrate_empty_postgres(repo, url, options.to)?;
    }
    let db = work.path().join("bench.db");
    migrate_sqlite(repo, &db, options.to)?;
    measure(
        &binary,
        &format!("sqlite:///{}", db.display()),
        "SQLite",
        options,
    )?;
    if let Some(url) = postgres {
        measure(&binary, url.connection_string(), "Postgres", options)?;
    }
    Ok(())
}

/// `--database-url` must name a Postgres database (SQLite is always measured).
fn postgres_url(url: &str) -> anyhow::Result<PgUrl> {
    match DatabaseUrl::parse(url)? {
        DatabaseUrl::Postgres(url) => Ok(url),
        _ => bail!(
            "--database-url must be a postgres:// URL of an empty database (SQLite is always \
             measured, in a temp folder): create one with `createdb NAME` and pass \
             postgres://USER@HOST:5432/NAME"
        ),
    }
}

fn migrate_sqlite(repo: &Path, db: &Path, to: Option<i32>) -> anyhow::Result<()> {
    let files = history::load_up_to(&repo.join("migrations"), Engine::Sqlite, to)?;
    let mut conn = secrets_ops::sqlite::open(db, true)?;
    secrets_ops::sqlite::apply_pending(&mut conn, &files)?;
    Ok(())
}

/// Migrates `url`, refusing a database that holds any table: the bench
/// writes rows and a token, which have no place in a real one.
fn migrate_empty_postgres(repo: &Path, url: &PgUrl, to: Option<i32>) -> anyhow::Result<()> {
    let mut client = pg::connect(url, "bench api")?;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )?
        .get(0);
    if tables > 0 {
        bail!(
            "{url} holds {tables} table(s): bench api writes secrets and a token, so it needs an \
             empty database: create one (`createdb NAME`), pass it, and drop it afterwards"
        );
    }
    let files = history::load_up_to(&repo.join("migrations"), Engine::Postgres, to)?;
    let timeouts = Timeouts {
        lock: Duration::from_secs(5),
        statement: Duration::from_secs(60),
    };
    pg::apply_pending(&mut client, &files, timeouts, &mut || Ok(()))
        .with_context(|| format!("migrating {url}"))?;
    Ok(())
}

/// One engine: the service started, POSTs, then GETs of what was stored.
fn measure(
    binary: &Binary,
    database_url: &str,
    engine: &str,
    options: &Options,
) -> anyhow::Result<()> {
    let token = binary.credentials(database_url, &format!("bench-{}", run_tag()))?;
    let service = binary.serve(database_url, token)?;
    println!("{engine}: backend version {}", service.version);
    let api = Api::of(&service);
    let seconds = Duration::from_secs(options.seconds);
    let tag = run_tag();
    let name = move |client: u64, i: u64| format!("bench-{tag}-{client}-{i}");
    let poster = api.clone();
    let (posted, wall) = load::run_for(options.clients, seconds, move |client, i| {
        poster.store(&name(client, i), &load::value(client << 32 | i))?;
        Ok(Kind::Post)
    })?;
    print_summary(&posted, wall, "POST /api/secrets")?;
    let stored: Arc<Vec<u64>> = Arc::new(posted.iter().map(|c| c.len() as u64).collect());
    if stored.contains(&0) {
        bail!(
            "a client stored nothing in {} s: no secret to reveal",
            options.seconds
        );
    }
    let (revealed, wall) = load::run_for(options.clients, seconds, move |client, i| {
        let count = stored.get(client as usize).copied().unwrap_or(1);
        let i = i % count;
        if api.reveal(&name(client, i))? != load::value(client << 32 | i) {
            bail!("GET /api/secrets/{{name}} revealed another value than was stored");
        }
        Ok(Kind::Get)
    })?;
    print_summary(&revealed, wall, "GET /api/secrets/{name}")
}

fn print_summary(per_client: &[Vec<Sample>], wall: Duration, label: &str) -> anyhow::Result<()> {
    let all: Vec<Sample> = per_client.iter().flatten().copied().collect();
    let summary = Summary::of(&all, wall).context("no request completed")?;
    println!("{}", summary.line(label));
    Ok(())
}

/// Seconds since the epoch: names from earlier runs on the same Postgres
/// database are never reused.
fn run_tag() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
