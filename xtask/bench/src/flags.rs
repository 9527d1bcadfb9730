//! The command line, declared in one place; `///` comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A command that succeeds or fails.
macro_rules! exit_plain {
    () => {
        "Exit status: 0 done; 1 failed (the error says why and what to do next); 2 usage error (unknown or invalid flags or arguments)."
    };
}

/// Measure the speed targets of the xtask and the operations tool.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask bench",
    bin_name = "cargo xtask bench",
    version,
    about
)]
pub struct Cli {
    /// The checkout to measure (`cargo xtask bench` passes its own)
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    #[command(flatten)]
    pub bench: BenchArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time `version` and `release patch --dry-run`, cargo's start-up included.
    #[command(after_long_help = concat!("Environment: none.\n\n", exit_plain!()))]
    Release {
        /// Timed runs per command (after one warm-up run)
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Cold and warm `cargo xtask version` in a fresh clone, beside a crate with no dependency.
    #[command(after_long_help = concat!("Environment: none (builds offline, from cargo's cache).\n\n", exit_plain!()))]
    Build {
        /// Timed warm runs per command (after one warm-up run)
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Measure the runbook's service-down window against cp and the SQL alone.
    #[command(after_long_help = concat!("Environment: none.\n\n", exit_plain!()))]
    Migrate {
        /// Size of the synthetic database (KiB, MiB, GiB)
        #[arg(long, default_value = "1GiB")]
        size: String,
    },
    /// Time an online backup idle and under a steady write load.
    #[command(after_long_help = concat!("Environment: none.\n\n", exit_plain!()))]
    Backup {
        /// Size of the synthetic database (KiB, MiB, GiB)
        #[arg(long, default_value = "200MiB")]
        size: String,
        /// Commits per second of the writer during the second backup
        #[arg(long, default_value_t = 100)]
        rate: u32,
    },
    /// Copy a generated SQLite database into Postgres: `db copy` against pgloader and `psql \copy`.
    #[command(after_long_help = concat!(
        "Environment:\n",
        "  TEST_POSTGRES_URL        the Postgres server; --postgres wins [default: none]\n",
        "  MIGRATIONS_POSTGRES_URL  the Postgres server when TEST_POSTGRES_URL is not set\n\n",
        exit_plain!()
    ))]
    Copy {
        /// Rows in the generated database
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// The Postgres server [default: $TEST_POSTGRES_URL, else $MIGRATIONS_POSTGRES_URL]
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// The Postgres window's downtime on a generated database: restore point against pg_dump inside it.
    #[command(after_long_help = concat!(
        "Environment:\n",
        "  TEST_POSTGRES_URL        the Postgres server; --postgres wins [default: none]\n",
        "  MIGRATIONS_POSTGRES_URL  the Postgres server when TEST_POSTGRES_URL is not set\n\n",
        exit_plain!()
    ))]
    MigratePg {
        /// Rows in `secrets`
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// The Postgres server [default: $TEST_POSTGRES_URL, else $MIGRATIONS_POSTGRES_URL]
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Throughput of the API: POST and GET (reveal) of 1 KiB secrets by concurrent clients.
    #[command(after_long_help = concat!(
        "Environment: none (the backend it starts gets only the variables it needs).\n\n",
        exit_plain!()
    ))]
    Api {
        /// The backend binary to measure [default: target/release/backend when built, else the
        /// backend beside this xtask]
        #[arg(long, value_name = "PATH")]
        backend: Option<PathBuf>,
        /// Seconds of POSTs, then as many of GETs
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        seconds: u64,
        /// Concurrent clients (threads); keep it at or under the cores the backend can use
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
        clients: u64,
        /// Also measure on this Postgres database: an empty one, which the bench migrates and
        /// leaves holding its rows (SQLite, in a temp folder, is always measured)
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Migrate only up to V<N>: the schema an older backend was built for (one from
        /// before sealed values writes the plaintext column that V6 drops: pass --to 4)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
        to: Option<i32>,
    },
    /// Worst request latency while `backend seal` seals ROWS plaintext rows under traffic.
    #[command(after_long_help = concat!(
        "Environment: none (the backend it starts gets only the variables it needs).\n\n",
        exit_plain!()
    ))]
    Backfill {
        /// Unsealed rows written as the previous release writes them
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        rows: u64,
        /// The backend binary, which must have the `seal` command [default: as for `bench api`]
        #[arg(long, value_name = "PATH")]
        backend: Option<PathBuf>,
        /// Concurrent clients (threads) revealing and storing secrets during the backfill
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
        clients: u64,
    },
    /// Time every check of `migrations check` on a synthetic history, and the whole command.
    #[command(after_long_help = concat!("Environment: none.\n\n", exit_plain!()))]
    Migrations {
        /// Migrations in the synthetic history
        #[arg(long, default_value_t = 500)]
        count: usize,
        /// Timed runs of the 100-migration fresh check and of the whole command
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
}
