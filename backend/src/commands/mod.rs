//! The backend binary's command line: no command serves (as `make run` and
//! every unit file start it), a command does one operator task on the
//! database `DATABASE_URL` names and exits. Each command lives in its own
//! module; this file is their table of contents.

mod database;
pub mod token;

/// `backend` with no command serves the API and the UI (settings from the
/// environment: see README.md, "Running the service").
#[derive(Debug, clap::Parser)]
#[command(
    name = "backend",
    version,
    about = "The secrets service and its operator commands"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create, list and revoke the API's bearer tokens (DATABASE_URL names the database).
    #[command(subcommand)]
    Token(token::TokenCommand),
}

impl Command {
    /// Runs the command (blocking: no async runtime may be running).
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Token(command) => command.run(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
