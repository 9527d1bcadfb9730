//! `cargo xtask`: release and schema-change automation for the secrets service.
//!
//! This file is the table of contents: the CLI lives in `flags`, each command
//! in its own module with a `run`, shared mechanics in small modules named for
//! what they are.

mod flags;
mod migrate;
mod migration_files;
mod paths;
mod sqlite;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flags::Cli::parse();
    let result = match cli.command {
        flags::Command::Migrate(args) => migrate::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
