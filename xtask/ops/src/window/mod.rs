//! NAME
//!     cargo xtask migrate — the production maintenance window, its status,
//!     and the one-off release job of a rolling deploy (Postgres)
//!
//! SYNOPSIS
//!     cargo xtask migrate [--database-url URL] [--migrations DIR] [--create] [--dry-run] [--vacuum] [--to N]
//!     cargo xtask migrate --job [--allow-contract] [--to N]
//!     cargo xtask migrate status [--database-url URL] [--migrations DIR] [--json]
//!     cargo xtask migrate adopt [--version N] [--dry-run]
//!
//! DESCRIPTION
//!     The window's seven steps are in `runbook.rs`, written once for both
//!     engines; `engine.rs` is what an engine provides (`sqlite.rs`,
//!     `postgres.rs`). `backup` and `restore` are the window's companion
//!     commands; `settings`, `service`, `journal` and `recover` what they share.
//!     `adopt.rs` brings a database another tool built under the migrations.

mod adopt;
pub mod backup;
pub mod inventory;
mod job;
mod lock;
mod open;
mod preconditions;
mod recover;
pub mod restore;
mod rotation;
mod runbook;
pub mod service;
pub mod settings;
mod status;

use crate::program::OPS;
use anyhow::bail;
use secrets_contract::dburl::DatabaseUrl;

use crate::flags::{MigrateAction, MigrateArgs};
use settings::{Migrations, Settings};

pub use crate::pg::job_apply::Cancelled;
pub use job::{EXIT_REFUSED, Refused};

pub fn run(site: &crate::paths::Site, args: &MigrateArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load(
        site,
        args.database_url.as_deref(),
        Migrations::Read(args.migrations.as_deref()),
    )?;
    if let (Some(to), Some(_)) = (args.to, &args.action) {
        bail!(
            "--to {to} goes with the window or --job (`{OPS} migrate --to {to}`), not with `migrate status` \
             or `migrate adopt`; leave it out"
        );
    }
    settings.target = args.to;
    match (args.action.as_ref(), &settings.url) {
        (Some(MigrateAction::Status(status)), _) => status::run(&settings, status.json),
        (Some(MigrateAction::Adopt { .. }), _) if args.create || args.job => bail!(
            "--create and --job do not go with `migrate adopt`: it adopts a database that exists, \
             and records its history without running migrations; leave them out"
        ),
        (Some(MigrateAction::Adopt { version, dry_run }), _) => {
            adopt::run(&settings, *version, *dry_run || args.dry_run)
        }
        (None, DatabaseUrl::Postgres(pg)) if args.job => {
            job::run(&settings, pg, args.allow_contract, args.dry_run)
        }
        (None, DatabaseUrl::Sqlite(_)) if args.job => bail!(
            "--job needs Postgres: a SQLite database serves one instance, so its migrations run in the \
             maintenance window (`{OPS} migrate` without --job)"
        ),
        (None, DatabaseUrl::Postgres(_)) if args.vacuum => bail!(
            "--vacuum is for SQLite, whose rebuilt tables leave free pages in the file; on Postgres \
             autovacuum reuses the space (VACUUM FULL, outside the window, returns it): drop --vacuum"
        ),
        (None, _) => runbook::run(
            &settings,
            runbook::Options {
                create: args.create,
                dry_run: args.dry_run,
                vacuum: args.vacuum,
            },
        ),
    }
}
