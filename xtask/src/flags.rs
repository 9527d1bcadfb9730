//! The command line, declared in one place; `///` comments are the help text.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, Subcommand};

/// A command that succeeds or fails.
macro_rules! exit_plain {
    () => {
        "Exit status: 0 done; 1 failed (the error says why and what to do next); 2 usage error (unknown or invalid flags or arguments)."
    };
}

/// Repository automation for the secrets service: version, release; the
/// operations tool and the benchmarks, run from this checkout.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
#[command(after_long_help = concat!(
    "migrate, backup, restore, migrations and db run the operations tool (secrets-ops, xtask/ops) ",
    "on this checkout: `cargo xtask migrate --help` is its help. bench runs the benchmarks (xtask/bench).\n\n",
    "Exit status: that of the command run (see its --help); 0 for a bare `cargo xtask`, which prints this help; ",
    "2 usage error (unknown command, or unknown or invalid flags or arguments)."
))]
pub struct Cli {
    /// Repository to work on [default: the checkout `cargo xtask` runs in]; every
    /// relative path given to a command (a sqlite:///relative URL, --migrations,
    /// backup-dir, a backup) is taken from it, not from the current folder
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// None: a bare `cargo xtask`, which prints the help (exit 0, as cargo does).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the repository's version and every place it is written; fail on drift.
    #[command(after_long_help = concat!(
        "Environment: none.\n\n",
        "Exit status: 0 every place holds the same version; 1 the places disagree or one cannot be read ",
        "(with --json the document is printed all the same), or [workspace.metadata.release] is invalid; ",
        "2 usage error (unknown or invalid flags)."
    ))]
    Version(VersionArgs),
    /// Bump the version everywhere, commit and tag the release (nothing is pushed).
    #[command(after_long_help = concat!(
        "Environment:\n",
        "  RELEASE_HOOK_TIMEOUT_SECS  seconds the pre-commit hook may run; overrides hook-timeout-secs in ",
        "[workspace.metadata.release] [default: 300]\n",
        "  MIGRATIONS_POSTGRES_URL    the Postgres server on which the preflight's migrations check proves the ",
        "Postgres history [default: none: that check is skipped]\n",
        "  DATABASE_URL               used for that check when it is a postgres:// URL and MIGRATIONS_POSTGRES_URL is not set \
         [default: none]\n\n",
        exit_plain!()
    ))]
    Release(ReleaseArgs),
    /// The maintenance window (secrets-ops migrate): preflight, lock, service down, backup, migrate, service up, health.
    #[command(disable_help_flag = true)]
    Migrate(Passthrough),
    /// Back up the live database, or list the backups (secrets-ops backup).
    #[command(disable_help_flag = true)]
    Backup(Passthrough),
    /// Put a backup back in place of the database (secrets-ops restore).
    #[command(disable_help_flag = true)]
    Restore(Passthrough),
    /// Test the migration history, create the next migration, print the lint's rules (secrets-ops migrations).
    #[command(disable_help_flag = true)]
    Migrations(Passthrough),
    /// Move data between engines (secrets-ops db copy).
    #[command(disable_help_flag = true)]
    Db(Passthrough),
    /// Measure the speed targets (secrets-bench, xtask/bench).
    #[command(disable_help_flag = true)]
    Bench(Passthrough),
}

/// A command of another program: its arguments, `--help` included, go to it as they are.
#[derive(Debug, Args)]
pub struct Passthrough {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The new SemVer version (0.2.0, 0.2.0-beta, v1.0.0-rc.1), or major, minor, patch or pre
    #[arg(value_name = "VERSION")]
    pub version: String,

    /// Run the preflight, print every diff and git command, change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Release even though the changelog's `## [Unreleased]` section lists no change
    #[arg(long)]
    pub allow_empty_changelog: bool,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print one JSON document on stdout instead of the table (fields in README.md)
    #[arg(long)]
    pub json: bool,
}
