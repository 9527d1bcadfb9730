//! `cargo xtask`: release and schema-change automation for the secrets service.
//!
//! This file is the table of contents: the CLI lives in `flags`, each command
//! in its own module with a `run`, shared mechanics in small modules named for
//! what they are.

// Commands, each a folder with its mechanics below it.
mod bench;
mod copy;
mod migrations;
mod release;
mod window;

// Mechanics the commands share.
mod engine;
mod history;
mod schema;

// Small modules everyone uses.
mod closed_stdout;
mod config;
mod failpoint;
mod flags;
mod fsutil;
mod git;
mod paths;
mod process;
mod progress;
mod quote;
mod redact;
mod run_lock;
mod stamp;

use std::process::ExitCode;

use clap::Parser;
use flags::Command;

fn main() -> ExitCode {
    let cli = flags::Cli::parse();
    // Absolute once, here: every relative path is later taken from it.
    let repo = cli.repo.unwrap_or_else(paths::project_root);
    let repo = std::path::absolute(&repo).unwrap_or(repo);
    let Some(command) = cli.command else {
        // A bare `cargo xtask`: the help, on stdout, and success (as cargo).
        let _ = <flags::Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    };
    match closed_stdout::run_quietly(|| dispatch(&repo, command)) {
        Some(code) => code,
        None => ExitCode::from(closed_stdout::EXIT),
    }
}

fn dispatch(repo: &std::path::Path, command: Command) -> ExitCode {
    let result = match command {
        Command::Migrate(args) => window::run(repo, &args),
        Command::Backup(args) => window::backup::run(repo, &args),
        Command::Restore(args) => window::restore::run(repo, &args),
        Command::Version(args) => release::version::run(repo, &args),
        Command::Release(args) => release::run(repo, &args),
        Command::Migrations(args) => migrations::run(repo, &args),
        Command::Bench(args) => bench::run(repo, &args),
        Command::Db(flags::DbArgs {
            command: flags::DbCommand::Copy(args),
        }) => copy::run(repo, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A URL's credentials never reach the terminal or a CI log.
            eprintln!("error: {}", redact::redact(&format!("{error:#}")));
            if error.downcast_ref::<window::Refused>().is_some() {
                ExitCode::from(window::EXIT_REFUSED)
            } else if let Some(cancelled) = error.downcast_ref::<window::Cancelled>() {
                ExitCode::from(cancelled.exit_code)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
