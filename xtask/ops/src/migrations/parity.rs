//! Check 7: the Postgres history against SQLite's fresh schema.

use std::{path::Path, time::Duration};

use anyhow::Context;
use secrets_contract::dburl::DatabaseUrl;

use super::report::Outcome;
use crate::{
    history::{self, Engine, MigrationFile},
    pg::{self, scratch as pg_scratch},
    schema::model as schema_model,
    sqlite,
};

/// Check 7: the Postgres history (with its twins) applies to a fresh
/// database exactly as `migrate` does it, a second run applies nothing, and
/// the result has the same tables, columns, nullability, keys, indexes and CHECK
/// constraints (by the columns each reads) as SQLite's fresh schema.
pub(super) fn postgres_check(
    dir: &Path,
    sqlite_files: &[MigrationFile],
    server: Option<&str>,
) -> Outcome {
    let Some(server) = server else {
        return Outcome::Skip(format!(
            "no Postgres server: pass --postgres URL, or set {POSTGRES_ENV} (or a postgres:// DATABASE_URL), to prove the Postgres history"
        ));
    };
    match postgres_equivalent(dir, sqlite_files, server) {
        Ok(detail) => Outcome::Pass(detail),
        Err(problems) => Outcome::Fail(problems),
    }
}

pub(super) fn postgres_equivalent(
    dir: &Path,
    sqlite_files: &[MigrationFile],
    server: &str,
) -> Result<String, Vec<String>> {
    let fail = |e: anyhow::Error| vec![format!("{e:#}")];
    let DatabaseUrl::Postgres(server) = DatabaseUrl::parse(server).map_err(|e| fail(e.into()))?
    else {
        return Err(vec![format!("{POSTGRES_ENV} must be a postgres:// URL")]);
    };
    let files = history::load_for(dir, Engine::Postgres).map_err(fail)?;
    let twins = files.iter().filter(|f| f.is_postgres_twin()).count();
    let scratch = pg_scratch::ScratchDatabase::create(&server, "check").map_err(fail)?;
    let mut client = pg::connect(&scratch.url, "migrations check").map_err(fail)?;
    let timeouts = pg::Timeouts {
        lock: Duration::from_secs(5),
        statement: Duration::from_secs(60),
    };
    let apply = |client: &mut postgres::Client| {
        pg::apply_pending(client, &files, timeouts, &mut || Ok(())).map_err(|s| fail(s.error))
    };
    apply(&mut client)?;
    let again = apply(&mut client)?;
    if !again.is_empty() {
        return Err(vec![format!(
            "a second run applied {} migration(s) again",
            again.len()
        )]);
    }
    let pg_schema = crate::pg::schema::postgres(&mut client).map_err(fail)?;
    let temp = tempfile::TempDir::new()
        .context("creating a temp folder")
        .map_err(fail)?;
    let mut conn = sqlite::open(&temp.path().join("fresh.db"), true).map_err(fail)?;
    sqlite::apply_pending(&mut conn, sqlite_files).map_err(fail)?;
    let sqlite_schema = crate::sqlite::schema::sqlite(&conn).map_err(fail)?;
    let differences = schema_model::differences("SQLite", &sqlite_schema, "Postgres", &pg_schema);
    if !differences.is_empty() {
        return Err(differences
            .into_iter()
            .map(|d| {
                format!(
                    "{d} — the engines' histories diverge: fix the Postgres twin in {}/",
                    history::POSTGRES_DIR
                )
            })
            .collect());
    }
    Ok(format!(
        "{} migration(s) ({twins} Postgres twin(s)) apply to a fresh Postgres database; {} tables match SQLite's (columns, nullability, keys, indexes, CHECK constraints)",
        files.len(),
        pg_schema.len()
    ))
}

/// Where `migrations check` finds a Postgres server for its seventh check.
pub const POSTGRES_ENV: &str = "MIGRATIONS_POSTGRES_URL";

/// The server for the seventh check: `--postgres`, else
/// `MIGRATIONS_POSTGRES_URL`, else `DATABASE_URL` when it names Postgres (the
/// check works in a scratch database beside it and never touches it).
pub fn postgres_server(flag: Option<&str>) -> Option<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    // clap fills `flag` from MIGRATIONS_POSTGRES_URL; empty means unset, as below.
    flag.filter(|f| !f.is_empty())
        .map(str::to_owned)
        .or_else(|| env(POSTGRES_ENV))
        .or_else(|| {
            env(secrets_contract::dburl::ENV)
                .filter(|url| matches!(DatabaseUrl::parse(url), Ok(DatabaseUrl::Postgres(_))))
        })
}
