//! NAME
//!     cargo xtask migrate — apply pending migrations to DATABASE_URL
//!
//! SYNOPSIS
//!     cargo xtask migrate [--database-url URL] [--migrations DIR] [--create]
//!
//! DESCRIPTION
//!     Reads the migrations folder strictly (stray files and duplicate
//!     versions are errors), then applies every pending migration through
//!     refinery in one transaction: either all of them land or none does.
//!     The URL comes from --database-url, else $DATABASE_URL, else the
//!     service's default `sqlite:///data/secrets.db`.

use std::{path::Path, time::Instant};

use anyhow::Context;
use backend::dburl::DatabaseUrl;

use crate::{flags::MigrateArgs, migration_files, paths, sqlite};

pub fn run(repo: &Path, args: &MigrateArgs) -> anyhow::Result<()> {
    let url = database_url(args.database_url.as_deref())?;
    let dir = args
        .migrations
        .clone()
        .unwrap_or_else(|| paths::migrations_dir(repo));
    let files = migration_files::load(&dir)?;
    let db_path = url.sqlite_path();
    let mut conn = sqlite::open(db_path, args.create)?;
    let before = current_version(&conn)?;
    println!(
        "migrate: {url} at schema version {before}; {} migration file(s) in {}",
        files.len(),
        dir.display()
    );
    let started = Instant::now();
    let applied = sqlite::apply_pending(&mut conn, &files)
        .with_context(|| format!("migrating {}", db_path.display()))?;
    if applied.is_empty() {
        println!("up to date: nothing to apply");
        return Ok(());
    }
    for migration in &applied {
        println!("  applied {migration}");
    }
    println!(
        "applied {} migration(s) in one transaction in {:.1?}; schema version {before} -> {}",
        applied.len(),
        started.elapsed(),
        current_version(&conn)?
    );
    Ok(())
}

/// `--database-url`, else `$DATABASE_URL`, else the service's default.
pub fn database_url(flag: Option<&str>) -> anyhow::Result<DatabaseUrl> {
    let parsed = match flag {
        Some(url) => DatabaseUrl::parse(url),
        None => DatabaseUrl::from_env(),
    };
    Ok(parsed?)
}

fn current_version(conn: &rusqlite::Connection) -> anyhow::Result<i32> {
    let history = sqlite::applied_history(conn).context("reading the migration history")?;
    Ok(history.last().map_or(0, |m| m.version()))
}
