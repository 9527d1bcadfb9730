//! `cargo xtask`: release and schema-change automation for the secrets service.
//!
//! This file is the table of contents: the CLI lives in `flags`, each command
//! in its own module with a `run`, shared mechanics in small modules named for
//! what they are.

mod backup;
mod backups;
mod bench;
mod bump;
mod changelog;
mod config;
mod failpoint;
mod flags;
mod fsutil;
mod git;
mod journal;
mod json_span;
mod lockfile;
mod migrate;
mod migration_files;
mod migrations;
mod paths;
mod recover;
mod release;
mod restore;
mod sample_rows;
mod schema_dump;
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A URL's credentials never reach the terminal or a CI log.
            eprintln!("error: {}", service::redact(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}
