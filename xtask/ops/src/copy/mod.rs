//! NAME
//!     cargo xtask db copy — move the data of a SQLite database into Postgres
//!
//! SYNOPSIS
//!     cargo xtask db copy --from sqlite:///data/secrets.db --to postgres://… [--migrations DIR]
//!
//! DESCRIPTION
//!     Step 3 of the move to Postgres, in a maintenance window (the service
//!     stopped or in maintenance, so the source does not change):
//!       1. refuse unless the target is migrated to the source's version and
//!          every table of it is empty
//!       2. copy every table in foreign-key order with `COPY … FROM STDIN
//!          (FORMAT binary)`, each value converted by the target column's type
//!          (0/1 to boolean, RFC 3339 or `YYYY-MM-DD HH:MM:SS` text to
//!          timestamptz, blobs to bytea, …)
//!       3. move each identity/serial sequence past the largest id copied
//!       4. verify each table: row count, and a content checksum computed the
//!          same way from the rows read back from both databases
//!     All of it is one transaction on the target: any failure (naming the
//!     table, row and column) leaves the target as it was. A progress bar
//!     per table is drawn when stderr is a terminal.

mod binary;
mod cells;
mod columns;
mod keys;
mod progress;
pub mod transfer;
mod verify;

use std::time::Instant;

use anyhow::bail;
use secrets_contract::dburl::DatabaseUrl;

use crate::{flags::DbCopyArgs, history::Engine};
use transfer::copy;

pub fn run(site: &crate::paths::Site, args: &DbCopyArgs) -> anyhow::Result<()> {
    let source = match DatabaseUrl::parse(&args.from)? {
        DatabaseUrl::Sqlite(path) if path.is_relative() => {
            let path = site.path(&path);
            eprintln!("source: {} ({})", path.display(), site.relative_rule());
            path
        }
        DatabaseUrl::Sqlite(path) => path,
        DatabaseUrl::Postgres(_) => bail!(
            "--from must be a SQLite database (sqlite:///path): `db copy` moves SQLite data into Postgres"
        ),
    };
    let DatabaseUrl::Postgres(target) = DatabaseUrl::parse(&args.to)? else {
        bail!(
            "--to must be a Postgres database (postgres://user@host/db): `db copy` moves SQLite data into Postgres"
        );
    };
    let migrations = site.migrations_dir(args.migrations.as_deref())?;
    // A gap is an error in every command that reads the history.
    let allowed = site.migrate_config()?.allow_gaps.unwrap_or_default();
    crate::history::refuse_gaps(
        &crate::history::load_for(&migrations, Engine::Sqlite)?,
        &allowed,
    )?;
    let start = Instant::now();
    let copied = copy(
        &source,
        &target,
        &migrations,
        crate::progress::on_terminal(),
    )?;
    let rows: u64 = copied.iter().map(|t| t.rows).sum();
    for table in &copied {
        println!(
            "  {:24} {:>10} rows  checksum {}  {:.2} s",
            table.table,
            table.rows,
            table.checksum,
            table.elapsed.as_secs_f64()
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "copied {rows} rows in {} tables from {} to {target} in {elapsed:.2} s ({:.0} rows/s); \
         row counts and checksums match; committed",
        copied.len(),
        source.display(),
        rows as f64 / elapsed.max(1e-9)
    );
    Ok(())
}
