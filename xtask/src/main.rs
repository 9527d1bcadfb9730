//! `cargo xtask`: repository automation for the secrets service.
//!
//! This file is the table of contents: the CLI lives in `flags`, each command
//! in its own module with a `run`. `version` and `release` live here; the
//! operations tool (`migrate`, `backup`, `restore`, `migrations`, `db`) and
//! the benchmarks are programs of their own that `ops` runs, so this crate
//! stays light.

// Commands.
mod release;

// Mechanics.
mod config;
mod flags;
mod ops;
mod paths;

// Shared with the operations tool.
use xtask_common::{
    closed_stdout, failpoint, fsutil, git, process, quote, run_lock, workspace_metadata,
};

use std::{ffi::OsString, path::Path, process::ExitCode};

use clap::Parser;
use flags::Command;
use ops::Program;

fn main() -> ExitCode {
    let cli = flags::Cli::parse();
    let Some(command) = cli.command else {
        // A bare `cargo xtask`: the help, on stdout, and success (as cargo).
        let _ = <flags::Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    };
    let repo = match cli.repo.map_or_else(paths::project_root, Ok) {
        // Absolute once, here: every relative path is later taken from it.
        Ok(repo) => std::path::absolute(&repo).unwrap_or(repo),
        Err(error) => return fail(&error),
    };
    match closed_stdout::run_quietly(|| dispatch(&repo, command)) {
        Some(code) => code,
        None => ExitCode::from(closed_stdout::EXIT),
    }
}

fn dispatch(repo: &Path, command: Command) -> ExitCode {
    let result = match command {
        Command::Version(args) => release::version::run(repo, &args),
        Command::Release(args) => release::run(repo, &args),
        Command::Migrate(p) => Err(ops::exec(Program::Ops, repo, &named("migrate", p.args))),
        Command::Backup(p) => Err(ops::exec(Program::Ops, repo, &named("backup", p.args))),
        Command::Restore(p) => Err(ops::exec(Program::Ops, repo, &named("restore", p.args))),
        Command::Migrations(p) => Err(ops::exec(Program::Ops, repo, &named("migrations", p.args))),
        Command::Db(p) => Err(ops::exec(Program::Ops, repo, &named("db", p.args))),
        Command::Bench(p) => Err(ops::exec(Program::Bench, repo, &p.args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// The subcommand's name, then its arguments as given.
fn named(name: &str, args: Vec<OsString>) -> Vec<OsString> {
    std::iter::once(OsString::from(name)).chain(args).collect()
}

fn fail(error: &anyhow::Error) -> ExitCode {
    // A URL's credentials never reach the terminal or a CI log.
    eprintln!(
        "error: {}",
        secrets_contract::dburl::redact(&format!("{error:#}"))
    );
    ExitCode::FAILURE
}
