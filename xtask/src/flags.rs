//! The command line, declared in one place; `///` comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Release and schema-change automation for the secrets service.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations to DATABASE_URL, all in one transaction.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Database to migrate [default: $DATABASE_URL, else sqlite:///data/secrets.db]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Folder of `V{n}__{name}.sql` migrations [default: <repo>/migrations]
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,

    /// Create the database file (and its folder) if it does not exist: a first deploy.
    #[arg(long)]
    pub create: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
