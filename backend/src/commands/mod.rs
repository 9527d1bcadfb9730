//! The binary's command line: no argument serves (as every release has),
//! a subcommand runs one operator command and exits. `///` comments are the
//! help text. Each command lives in a module of its own with a `run`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod key;
pub mod seal;

/// The secrets service. Without a command it serves (settings from the
/// environment, see README.md); the commands below are for the operator.
#[derive(Debug, Parser)]
#[command(name = "backend", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or rotate the key file the values are sealed with.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Seal every row not sealed under the current key (the backfill after
    /// the upgrade, and the re-seal after `key add`), in short batches, while
    /// the service serves. Reads DATABASE_URL and SECRETS_KEY_FILE; safe to
    /// re-run or to run on several machines at once.
    Seal(SealArgs),
}

#[derive(Debug, Subcommand)]
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
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
