//! The command line, declared in one place; `///` comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Release and schema-change automation for the secrets service.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
pub struct Cli {
    /// Repository to work on [default: the one this xtask is part of]
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// None: a bare `cargo xtask`, which prints the help (exit 0, as cargo does).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The maintenance window: preflight, lock, service down, backup, migrate, service up, health.
    Migrate(MigrateArgs),
    /// Back up the live database (online, verified, rotated).
    Backup(DatabaseArgs),
    /// Put a backup back in place of the database (default: the newest).
    Restore(RestoreArgs),
    /// Print the repository's version and every place it is written; fail on drift.
    Version,
    /// Bump the version everywhere, commit and tag the release (nothing is pushed).
    Release(ReleaseArgs),
    /// Test the migration history (check) or create the next migration (new).
    Migrations(MigrationsArgs),
    /// Measure the xtask's speed targets.
    Bench(BenchArgs),
    /// Move data between engines (SQLite → Postgres).
    Db(DbArgs),
}

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every table of a SQLite database into an empty, migrated Postgres one, verified.
    Copy(DbCopyArgs),
}

#[derive(Debug, Args)]
pub struct DbCopyArgs {
    /// The SQLite database: sqlite:////absolute/path.db or sqlite:///relative/path.db
    #[arg(long, value_name = "URL")]
    pub from: String,

    /// The Postgres database, migrated to the source's version and empty
    #[arg(long, value_name = "URL")]
    pub to: String,

    /// Folder of `V<n>__<name>.sql` migrations [default: <repo>/migrations]
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct MigrationsArgs {
    #[command(subcommand)]
    pub command: MigrationsCommand,
}

#[derive(Debug, Subcommand)]
pub enum MigrationsCommand {
    /// Files, fresh database, schema snapshot, shipped files, upgrade path, zero-downtime lint.
    Check(MigrationsCheckArgs),
    /// Print the zero-downtime lint's rules as a Markdown table.
    Rules,
    /// Create the next V<n>__<name>.sql.
    New {
        /// snake_case name, e.g. add_secret_owner
        name: String,
        /// Folder of `V<n>__<name>.sql` migrations [default: <repo>/migrations]
        #[arg(long, value_name = "DIR")]
        migrations: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct MigrationsCheckArgs {
    /// Folder of `V<n>__<name>.sql` migrations [default: <repo>/migrations]
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,

    /// Rewrite schema.sql from the migrations before checking
    #[arg(long)]
    pub bless: bool,

    /// Print a machine-readable report (JSON) instead of the table
    #[arg(long)]
    pub json: bool,

    /// A Postgres server to prove the Postgres history on, in a scratch
    /// database created and dropped here [default: $MIGRATIONS_POSTGRES_URL,
    /// else $DATABASE_URL when it is a postgres:// URL]
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time `version` and `release patch --dry-run`, cargo's start-up included.
    Release {
        /// Timed runs per command (after one warm-up run)
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Measure the runbook's service-down window against cp and the SQL alone.
    Migrate {
        /// Size of the synthetic database (KiB, MiB, GiB)
        #[arg(long, default_value = "1GiB")]
        size: String,
    },
    /// Time an online backup idle and under a steady write load.
    Backup {
        /// Size of the synthetic database (KiB, MiB, GiB)
        #[arg(long, default_value = "200MiB")]
        size: String,
        /// Commits per second of the writer during the second backup
        #[arg(long, default_value_t = 100)]
        rate: u32,
    },
    /// Copy a generated SQLite database into Postgres: `db copy` against pgloader and `psql \copy`.
    Copy {
        /// Rows in the generated database
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// The Postgres server [default: $TEST_POSTGRES_URL, else $MIGRATIONS_POSTGRES_URL]
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// The Postgres window's downtime on a generated database: restore point against pg_dump inside it.
    MigratePg {
        /// Rows in `secrets`
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// The Postgres server [default: $TEST_POSTGRES_URL, else $MIGRATIONS_POSTGRES_URL]
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Time every check of `migrations check` on a synthetic history, and the whole command.
    Migrations {
        /// Migrations in the synthetic history
        #[arg(long, default_value_t = 500)]
        count: usize,
        /// Timed runs of the 100-migration fresh check and of the whole command
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
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
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,

    /// Database to migrate [default: $DATABASE_URL, else sqlite:///data/secrets.db]
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,

    /// Folder of `V<n>__<name>.sql` migrations [default: <repo>/migrations]
    #[arg(long, value_name = "DIR", global = true)]
    pub migrations: Option<PathBuf>,

    /// Create the database file (and its folder) if it does not exist: a first deploy.
    #[arg(long)]
    pub create: bool,

    /// Run the preflight (with the rehearsal) and print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Postgres only: the one-off release job of a rolling deploy. No stop/start
    /// and no maintenance mode; serialized by an advisory lock, so many instances
    /// starting it at once migrate exactly once. Exit 0: migrated or already up to
    /// date; 1: failed (rolled back); 3: refused (a contract migration is pending).
    #[arg(long, conflicts_with = "create")]
    pub job: bool,

    /// With --job: apply contract migrations too (only once no running instance
    /// still uses what they remove or tighten)
    #[arg(long, requires = "job")]
    pub allow_contract: bool,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Applied, pending, changed or missing migrations; exit 0 only when up to date.
    Status,
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The database [default: $DATABASE_URL, else sqlite:///data/secrets.db]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file [default: the newest backup of the database]
    pub backup: Option<PathBuf>,

    /// The database [default: $DATABASE_URL, else sqlite:///data/secrets.db]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// Every command's help, rendered: no `{…}` left for clap to expand
    /// (`{n}` is its line break) and no backtick pair split across lines.
    #[test]
    fn every_help_text_renders_whole() {
        let mut todo = vec![super::Cli::command()];
        let mut problems = Vec::new();
        while let Some(mut command) = todo.pop() {
            let name = command.get_name().to_owned();
            let help = command.render_long_help().to_string();
            for line in help.lines() {
                if line.matches('`').count() % 2 == 1 {
                    problems.push(format!(
                        "{name}: a backtick pair broken across lines: {line:?}"
                    ));
                }
                if line.contains('{') && line.contains('}') {
                    problems.push(format!("{name}: an unrendered template: {line:?}"));
                }
            }
            todo.extend(command.get_subcommands().cloned());
        }
        assert_eq!(problems, Vec::<String>::new());
    }
}
