//! `backend`: the secrets service, and its operator commands. Without
//! arguments it serves, configured from the environment (README.md,
//! "Running the service"); `backend --help` lists the commands.

use std::{io::IsTerminal, process::ExitCode};

use backend::commands::{Cli, Command, key, seal};
use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        None => serve(),
        Some(Command::Key(command)) => key::run(command),
        Some(Command::Seal(args)) => seal::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The service, on a runtime of its own: the commands run without one,
/// because the blocking Postgres client must not start inside it.
fn serve() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async { backend::app::serve(backend::config::Config::from_env()?).await })
}
