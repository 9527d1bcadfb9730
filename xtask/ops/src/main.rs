//! `secrets-ops`: the operations tool of the secrets service, shipped beside
//! it and run on the database host (`cargo xtask migrate`, `backup`, … run
//! this same program from a checkout).
//!
//! This file is the table of contents: the CLI lives in `flags`, each command
//! in its own module with a `run`.

use std::process::ExitCode;

use secrets_ops::{
    closed_stdout, copy, flags, flags::Command, migrations, paths::Site, redact, window,
};

fn main() -> ExitCode {
    let cli = flags::parse();
    let Some(command) = cli.command else {
        // A bare run: the help, on stdout, and success (as cargo).
        let _ = flags::command().print_help();
        return ExitCode::SUCCESS;
    };
    let site = match Site::resolve(cli.repo.as_deref(), cli.config.as_deref()) {
        Ok(site) => site,
        Err(error) => return fail(&error),
    };
    match closed_stdout::run_quietly(|| dispatch(&site, command)) {
        Some(code) => code,
        None => ExitCode::from(closed_stdout::EXIT),
    }
}

fn dispatch(site: &Site, command: Command) -> ExitCode {
    let result = match command {
        Command::Migrate(args) => window::run(site, &args),
        Command::Backup(args) => window::backup::run(site, &args),
        Command::Restore(args) => window::restore::run(site, &args),
        Command::Migrations(args) => migrations::run(site, &args),
        Command::Db(flags::DbArgs {
            command: flags::DbCommand::Copy(args),
        }) => copy::run(site, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
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
