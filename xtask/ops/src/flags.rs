//! The command line, declared in one place; `///` comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

// The exit statuses and environment variables of each command, shown at the
// end of its `--help`. Macros, not consts: `concat!` joins only literals.
// docs/runbook.md keeps the same variables in its table (a test holds both
// to what the code reads).

/// A command that succeeds or fails.
macro_rules! exit_plain {
    () => {
        "Exit status: 0 done; 1 failed (the error says why and what to do next); 2 usage error (unknown or invalid flags or arguments)."
    };
}

/// A command whose work is its subcommands'.
macro_rules! exit_of_subcommand {
    () => {
        "Exit status: that of the subcommand run (0 done, 1 failed: see its --help); 2 usage error (no subcommand, or unknown or invalid flags or arguments)."
    };
}

/// What `migrate`, `migrate status`, `backup` and `restore` read (through
/// `window::settings`: each of them reads and checks all of it).
macro_rules! window_env {
    () => {
        "Environment (each overrides its key in [workspace.metadata.migrate]; read and checked by migrate, migrate status, backup and restore; see docs/runbook.md):
  DATABASE_URL                       the database [default: sqlite:///data/secrets.db]; --database-url wins
  MIGRATE_BACKUP_DIR                 where backups and the journal go [default: the database's folder; Postgres: data/]
  MIGRATE_KEEP_BACKUPS               backups kept by rotation [default: 5]
  MIGRATE_MAINTENANCE                1: take the service down through its maintenance flag [default: off]
  SECRETS_MAINTENANCE_FLAG           the maintenance flag file [default: the database path + .maintenance]
  MIGRATE_STOP, MIGRATE_START        commands that stop and start the service, split on whitespace, no shell [default: none]
  MIGRATE_HEALTH_URL                 the service's health URL, polled after it is back up [default: none]
  MIGRATE_HEALTH_TIMEOUT_SECS        seconds to wait for a healthy answer [default: 30]
  MIGRATE_LOCK_TIMEOUT_SECS          seconds to wait for the service to let go of the database [default: 10]
  MIGRATE_COMMAND_TIMEOUT_SECS       seconds a stop or start command may take [default: 60]
  MIGRATE_PG_LOCK_TIMEOUT_SECS       Postgres: lock_timeout of the migration [default: 5]
  MIGRATE_PG_STATEMENT_TIMEOUT_SECS  Postgres: statement_timeout of the migration [default: 300]
  MIGRATE_JOB_LOCK_WAIT_SECS         migrate --job: seconds to wait for another instance's run [default: 600]
  MIGRATE_PG_LOCK_RETRY_SECS         migrate --job: seconds to keep retrying a migration that hit lock_timeout; 0: fail at once [default: 60]
  MIGRATE_ALLOW_GAPS                 versions missing from the history on purpose, e.g. 4,7-9 [default: none: a gap is an error]
  MIGRATE_PG_RESTORE_POINT           Postgres: off: pg_dump inside the window instead of a server-side copy [default: a copy when CREATEDB allows]"
    };
}

/// The secrets service's operations tool: the maintenance window, backups,
/// restores, the rolling-deploy job, the migration history's checks.
#[derive(Debug, Parser)]
#[command(name = "secrets-ops", version, about)]
#[command(after_long_help = concat!(
    "Exit status: that of the command run (see its --help); 0 for a bare run, which prints this help; ",
    "2 usage error (unknown command, or unknown or invalid flags or arguments)."
))]
pub struct Cli {
    /// A checkout to work on (`cargo xtask` passes its own): its `migrations/`,
    /// its `[workspace.metadata.migrate]`, and every relative path (a
    /// sqlite:///relative URL, --migrations, backup-dir, a backup) taken from
    /// its root [default: none: an installed host, with the migrations built
    /// into this binary and relative paths taken from the settings file's
    /// folder, else from the working directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// The settings file, else $SECRETS_OPS_CONFIG (empty: none): TOML with the
    /// keys of `[workspace.metadata.migrate]` (see docs/runbook.md,
    /// "Settings"); the environment and flags override it
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// None: a bare `cargo xtask`, which prints the help (exit 0, as cargo does).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The maintenance window: preflight, lock, service down, backup, migrate, service up, health.
    #[command(after_long_help = concat!(
        window_env!(),
        "\n\nExit status: 0 migrated, or already up to date (--dry-run: the plan was printed); ",
        "1 failed (the error says what is true of the database now and what to do next); ",
        "2 usage error (unknown or invalid flags or arguments); ",
        "3 refused (--job: a contract migration is pending and --allow-contract was not given, or a \
         pending migration's precondition is not met); ",
        "130/143 cancelled by SIGINT/SIGTERM (--job)."
    ))]
    Migrate(MigrateArgs),
    /// Back up the live database (online, verified, rotated), or list the backups (--list).
    #[command(after_long_help = concat!(
        window_env!(),
        "\n\nExit status: 0 backed up (--list: listed, whether or not each backup verifies: see its verifies column); ",
        "1 failed (no partial backup is left behind; the error says why); ",
        "2 usage error (unknown or invalid flags or arguments)."
    ))]
    Backup(BackupArgs),
    /// Put a backup back in place of the database (default: the newest).
    #[command(after_long_help = concat!(
        window_env!(),
        "\n\nExit status: 0 restored; 1 failed (the database is as it was; the error says why and what to do next); ",
        "2 usage error (unknown or invalid flags or arguments)."
    ))]
    Restore(RestoreArgs),
    /// Test the migration history (check) or create the next migration (new).
    #[command(after_long_help = exit_of_subcommand!())]
    Migrations(MigrationsArgs),
    /// Move data between engines (SQLite → Postgres).
    #[command(after_long_help = exit_of_subcommand!())]
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
    #[command(after_long_help = concat!(
        "Environment (and the other keys of [workspace.metadata.migrate], read and checked):\n",
        "  MIGRATE_ALLOW_GAPS       versions missing from the history on purpose, e.g. 4,7-9; overrides allow-gaps in [workspace.metadata.migrate] [default: none: a gap is an error]\n\n",
        exit_plain!()
    ))]
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
    #[command(after_long_help = concat!(
        "Environment:\n",
        "  MIGRATIONS_POSTGRES_URL  the Postgres server of the seventh check; --postgres wins [default: none]\n",
        "  DATABASE_URL             used for that check when it is a postgres:// URL and neither of the above is set \
         [default: none]\n",
        "  MIGRATE_ALLOW_GAPS       versions missing from the history on purpose, e.g. 4,7-9; overrides allow-gaps in [workspace.metadata.migrate] [default: none: a gap is an error]\n\n",
        "Exit status: 0 every check passed; 1 a check failed (each failure is listed) or could not run; ",
        "2 usage error (unknown or invalid flags or arguments)."
    ))]
    Check(MigrationsCheckArgs),
    /// Print the zero-downtime lint's rules (engines, why, what to do instead) as a Markdown table.
    #[command(after_long_help = concat!("Environment: none.\n\n", exit_plain!()))]
    Rules,
    /// Create the next V<n>__<name>.sql.
    #[command(after_long_help = concat!(
        "Environment:\n",
        "  MIGRATE_ALLOW_GAPS       versions missing from the history on purpose, e.g. 4,7-9; overrides allow-gaps in [workspace.metadata.migrate] [default: none: a gap is an error]\n\n",
        exit_plain!()
    ))]
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
    /// database created and dropped here [default: $DATABASE_URL when it is
    /// a postgres:// URL]
    #[arg(
        long,
        value_name = "URL",
        env = "MIGRATIONS_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres: Option<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,

    /// Database to migrate [default: sqlite:///data/secrets.db]
    #[arg(
        long,
        value_name = "URL",
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true
    )]
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
    /// starting it at once migrate exactly once. A lock timeout is retried within
    /// MIGRATE_PG_LOCK_RETRY_SECS (default 60), naming the blocking session;
    /// SIGINT/SIGTERM cancel the running statement on the server. Exit 0: migrated
    /// or already up to date; 1: failed (rolled back); 3: refused (a contract,
    /// locking or unreadable migration is pending: see `cargo xtask migrations
    /// rules`; or a pending migration's precondition is not met);
    /// 130/143: cancelled by SIGINT/SIGTERM.
    #[arg(long, conflicts_with = "create")]
    pub job: bool,

    /// With --job: apply contract and locking migrations too (only once no running
    /// instance still uses what they remove or tighten, or nothing serves)
    #[arg(long, requires = "job")]
    pub allow_contract: bool,

    /// SQLite: VACUUM inside the window, after the migration and before the
    /// service comes back, giving the free pages a table rebuild leaves back to
    /// the filesystem; the downtime grows by its time (the preflight measures
    /// it on the rehearsal snapshot). Never done without this flag.
    #[arg(long, conflicts_with = "job")]
    pub vacuum: bool,

    /// Apply the pending migrations up to V<N> only, leaving the later ones for
    /// a later run: a contract migration whose precondition waits for a backfill
    /// (`-- xtask: refuse-unless-zero:`) runs once the backfill is done
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub to: Option<i32>,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Applied, pending, changed or missing migrations; exit 0 only when up to date.
    #[command(after_long_help = concat!(
        window_env!(),
        "\n\nExit status: 0 up to date and consistent; 1 migrations pending, the history inconsistent with the files, ",
        "or the database unreadable (with --json the document is printed whenever the database could be read); ",
        "2 usage error (unknown or invalid flags or arguments)."
    ))]
    Status(StatusArgs),
    /// Bring a database whose schema another tool built (Alembic, …) under the
    /// migrations: record V1..VN as applied, only once its live schema is proven
    /// to equal the schema they produce at VN; on any difference print it and
    /// change nothing. Lock, integrity checks, backup and journal as the window.
    #[command(after_long_help = concat!(
        window_env!(),
        "\n\nExit status: 0 adopted (or, with --dry-run, proven); 1 refused (the schema differs, a history exists) ",
        "or failed, nothing changed; 2 usage error (unknown or invalid flags or arguments, a --version that ",
        "names no migration)."
    ))]
    Adopt {
        /// The version the database is at [default: the one whose schema matches]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
        version: Option<i32>,

        /// Prove the schema and print what would be recorded; change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document on stdout instead of the lines (fields in README.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The database [default: sqlite:///data/secrets.db]
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// List the backups instead of taking one: time, size, schema version,
    /// whether each verifies, and which one `restore` picks. Takes no lock
    /// and changes nothing.
    #[arg(long)]
    pub list: bool,

    /// With --list: one JSON document on stdout (fields in README.md)
    #[arg(long, requires = "list")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file [default: the newest backup of the database that verifies]
    pub backup: Option<PathBuf>,

    /// The database [default: sqlite:///data/secrets.db]
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// The command line, named as the operator typed it (`secrets-ops`, or
/// `cargo xtask` in a checkout).
pub fn command() -> clap::Command {
    let name = crate::program::program_name();
    <Cli as clap::CommandFactory>::command()
        .name(name)
        .bin_name(name)
}

/// Parses the process's arguments; on a usage error clap prints it and exits 2.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    }
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

    /// Every command's long help ends with its exit statuses, usage errors
    /// (2) included; the one command that can refuse says so (3).
    #[test]
    fn every_help_text_names_its_exit_statuses() {
        let mut todo = vec![(String::new(), super::Cli::command())];
        let mut missing = Vec::new();
        while let Some((parent, mut command)) = todo.pop() {
            let name = format!("{parent} {}", command.get_name()).trim().to_owned();
            let help = command.render_long_help().to_string();
            let statuses = help.split("Exit status:").nth(1).unwrap_or_default();
            if name.ends_with(" help") {
                continue; // clap's own `help` subcommand
            }
            if !statuses.contains("2 usage error") || !statuses.contains('0') {
                missing.push(format!(
                    "{name}: no `Exit status:` naming 0 and `2 usage error`"
                ));
            }
            if name == "cargo xtask migrate" && !statuses.contains("3 refused") {
                missing.push(format!("{name}: `3 refused` is not explained"));
            }
            todo.extend(command.get_subcommands().map(|c| (name.clone(), c.clone())));
        }
        assert_eq!(missing, Vec::<String>::new());
    }
}
