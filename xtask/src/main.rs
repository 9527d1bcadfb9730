//! `cargo xtask`: release and schema-change automation for the secrets service.
//!
//! This file is the table of contents: the CLI lives in `flags`, each command
//! in its own module with a `run`, shared mechanics in small modules named for
//! what they are.

mod backup;
mod backups;
mod bench;
mod bench_copy;
mod bump;
mod changelog;
mod config;
mod db_copy;
mod failpoint;
mod flags;
mod fsutil;
mod git;
mod journal;
mod json_span;
mod lockfile;
mod migrate;
mod migrate_pg;
mod migration_files;
mod migrations;
mod paths;
mod pg_backups;
mod postgres_db;
mod recover;
mod release;
mod restore;
mod sample_rows;
mod schema_dump;
mod schema_model;
mod service;
mod settings;
mod sql_text;
mod sqlite;
mod version;
mod version_files;
mod zero_downtime;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flags::Cli::parse();
    let repo = cli.repo.unwrap_or_else(paths::project_root);
    let result = match cli.command {
        flags::Command::Migrate(args) => migrate::run(&repo, &args),
        flags::Command::Backup(args) => backup::run(&repo, &args),
        flags::Command::Restore(args) => restore::run(&repo, &args),
        flags::Command::Version => version::run(&repo),
        flags::Command::Release(args) => release::run(&repo, &args),
        flags::Command::Migrations(args) => migrations::run(&repo, &args),
        flags::Command::Bench(args) => bench::run(&repo, &args),
        flags::Command::Db(flags::DbArgs {
            command: flags::DbCommand::Copy(args),
        }) => db_copy::run(&repo, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A URL's credentials never reach the terminal or a CI log.
            eprintln!("error: {}", service::redact(&format!("{error:#}")));
            if error.downcast_ref::<migrate_pg::Refused>().is_some() {
                ExitCode::from(migrate_pg::EXIT_REFUSED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
