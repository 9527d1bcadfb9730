//! `backend`: the secrets service, or one of its operator commands
//! (`backend --help`). Configuration comes from the environment; see
//! README.md ("Running the service").

use std::{io::IsTerminal, process::ExitCode};

use backend::commands::Cli;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // Commands run without an async runtime: the Postgres client starts its own.
    let result = match cli.command {
        None => serve(),
        Some(command) => command.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let config = backend::config::Config::from_env()?;
    tokio::runtime::Runtime::new()?.block_on(backend::app::serve(config))
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
