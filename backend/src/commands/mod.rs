//! The backend binary's command line: no command serves (as `make run` and
//! every unit file start it), a command does one operator task and exits.
//! Each command lives in its own module with a `run`; this file is their
//! table of contents, and `///` comments are the help text.

use std::path::PathBuf;

mod database;
pub mod key;
pub mod seal;
pub mod token;

/// The secrets service. Without a command it serves the API and the UI
/// (settings from the environment: see README.md, "Running the service");
/// the commands below are for the operator.
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
    /// Create or rotate the key file the values are sealed with.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Seal every row not sealed under the current key (the backfill after
    /// the upgrade, and the re-seal after `key add`), in short batches, while
    /// the service serves. Reads DATABASE_URL and SECRETS_KEY_FILE; safe to
    /// re-run or to run on several machines at once.
    Seal(SealArgs),
}

impl Command {
    /// Runs the command (blocking: no async runtime may be running).
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Token(command) => command.run(),
            Command::Key(command) => key::run(command),
            Command::Seal(args) => seal::run(args),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Create a key file at PATH (mode 0600) holding one fresh key; never
    /// overwrites a file. Prints the key id, never the key.
    Generate { path: PathBuf },
    /// Append a fresh key to the key file at PATH; it becomes the current
    /// one (new writes, and `backend seal`) once the service restarts.
    Add { path: PathBuf },
}

#[derive(Debug, clap::Args)]
pub struct SealArgs {
    /// Rows per batch; each batch is one short transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
