//! NAME
//!     cargo xtask migrations — test the migration history; create the next migration
//!
//! SYNOPSIS
//!     cargo xtask migrations check [--migrations DIR] [--bless] [--json] [--postgres URL]
//!     cargo xtask migrations new <snake_case_name> [--migrations DIR]
//!
//! DESCRIPTION
//!     `check` runs, in order, and prints one line per check with its verdict
//!     and time (failures in full below; a check that cannot run says
//!     "skipped" and why — it never passes silently):
//!       1. files               names, unique versions, LF endings, no BEGIN/COMMIT/PRAGMA
//!       2. fresh database      everything applies to a new database exactly as
//!                              `migrate` does; integrity and foreign keys hold;
//!                              a second run applies nothing
//!       3. schema snapshot     the fresh schema equals `schema.sql` (`--bless` rewrites it)
//!       4. shipped immutable   files of the latest release tag are unchanged
//!       5. upgrade path        a database of the latest release (or of each
//!                              prefix of the history, before the first tag),
//!                              filled with rows, upgrades to the fresh schema
//!                              without losing rows
//!       6. zero-downtime lint  unreleased migrations, shared files and twins,
//!                              parsed in their engines' dialects: expand/contract
//!                              and locking rules (`history/lint/`, docs/migrations.md)
//!       7. postgres            the Postgres history (shared files, with the twins
//!                              of `postgres/` in their place) applies to a fresh
//!                              scratch database and ends at the same tables,
//!                              columns, nullability, keys, indexes and CHECKs as SQLite;
//!                              needs a server (`--postgres URL` or
//!                              MIGRATIONS_POSTGRES_URL), else "skipped"

pub mod check;
pub mod parity;
mod report;
mod shipped;
mod upgrade;

use crate::program::OPS;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::{
    flags::{MigrationsArgs, MigrationsCommand},
    history::{self},
};
use check::check;
use parity::postgres_server;

pub fn run(site: &crate::paths::Site, args: &MigrationsArgs) -> anyhow::Result<()> {
    match &args.command {
        MigrationsCommand::Check(check_args) => {
            if check_args.bless {
                refuse_built_in(site, check_args.migrations.as_deref(), "check --bless")?;
            }
            let dir = folder(site, check_args.migrations.as_deref())?;
            let postgres = postgres_server(check_args.postgres.as_deref());
            let report = check(site, &dir, check_args.bless, postgres.as_deref());
            if check_args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.to_json(&site.describe(&dir)))?
                );
            } else {
                report.print(&site.describe(&dir));
            }
            if report.failed() {
                bail!(
                    "migrations check failed: {}",
                    report.failed_names().join(", ")
                );
            }
            Ok(())
        }
        MigrationsCommand::New { name, migrations } => {
            refuse_built_in(site, migrations.as_deref(), "new")?;
            let allowed = site.migrate_config()?.allow_gaps.unwrap_or_default();
            new(&folder(site, migrations.as_deref())?, name, &allowed)
        }
        MigrationsCommand::Rules => {
            print!("{}", history::lint::rules_markdown());
            Ok(())
        }
    }
}

/// The migrations built into the binary are read, never written: a command
/// that writes files needs a folder of them.
fn refuse_built_in(
    site: &crate::paths::Site,
    flag: Option<&Path>,
    what: &str,
) -> anyhow::Result<()> {
    if flag.is_none() && site.repo().is_none() {
        bail!(
            "`migrations {what}` writes migration files, and this binary's migrations are built into it: run it \
             in a checkout (`cargo xtask migrations {what}`), or give the folder with --migrations DIR"
        );
    }
    Ok(())
}

fn folder(site: &crate::paths::Site, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = site.migrations_dir(flag)?;
    if !dir.is_dir() {
        bail!(
            "migrations folder {} does not exist: create it, or point --migrations at the right folder",
            dir.display()
        );
    }
    Ok(dir)
}

/// `migrations new`: the next `V{n}__{name}.sql`.
fn new(dir: &Path, name: &str, allowed_gaps: &[history::VersionRange]) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && history::parse_file_name(&format!("V1__{name}.sql")).is_some()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with('_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !valid {
        bail!(
            "`{name}` is not a snake_case name (lower-case letters, digits and single underscores), e.g. add_secret_owner"
        );
    }
    let files = history::load(dir)?;
    // The next number after a gap would bury the lost file for good.
    history::refuse_gaps(&files, allowed_gaps)?;
    let next = match files.last() {
        None => 1,
        Some(last) => last.version.checked_add(1).with_context(|| {
            format!(
                "{} has the highest version refinery takes ({}): there is no next one",
                last.path.display(),
                i32::MAX
            )
        })?,
    };
    let path = dir.join(format!("V{next}__{name}.sql"));
    let template = format!(
        "-- {}\n--\n-- Expand changes only (new tables, indexes, nullable or defaulted columns), or contract\n\
         -- changes alone with a `-- contract: <why it is safe now>` line: see docs/migrations.md.\n\n",
        name.replace('_', " ")
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, template.as_bytes()))
        .with_context(|| format!("creating {}", path.display()))?;
    println!("created {}", path.display());
    println!("write the SQL, then run `{OPS} migrations check --bless` and commit both files");
    Ok(())
}
