//! What the commands need from a database engine, the way sqlx's `Migrate`
//! trait and refinery's drivers split it, by role: every command's access
//! (hold the database, read its history), the window's runner (check it,
//! prove it quiet, back it up beside the migration, undo a failed window),
//! backups and restores, and adoption. The seven steps are written once
//! (`window/runbook.rs`); each engine's folder (`sqlite/window.rs`,
//! `pg/window.rs`) provides only what differs, built with its [`Options`].

use std::{path::PathBuf, time::Duration};

use refinery_core::Migration;

use super::{
    backups::{self, Backup},
    steps::{Steps, Timed},
};
use crate::{history::MigrationFile, schema::model::Shape};

/// Postgres: the migration's `lock_timeout` and `statement_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub lock: Duration,
    pub statement: Duration,
}

/// What an engine is built with: its part of the settings, resolved once by
/// the command, so that no engine reads the whole of them.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite: how long to wait for the service to let go of the file;
    /// Postgres: for the other sessions to leave, and for the advisory lock.
    pub lock_timeout: Duration,
    /// Postgres: the migration's timeouts.
    pub pg_timeouts: Timeouts,
    /// The local lock file of the migration lock.
    pub lock_path: PathBuf,
    /// Where backups go.
    pub backup_dir: PathBuf,
    /// The database as backup names carry it: the SQLite file, or
    /// `<dbname>.pg` for a Postgres database (a name, not a file).
    pub backup_name: PathBuf,
}

impl Options {
    /// Where a backup taken now goes.
    pub fn new_backup_path(&self) -> anyhow::Result<PathBuf> {
        backups::new_path(&self.backup_dir, &self.backup_name)
    }
}

/// What the window will do, settled while the service still runs.
pub struct Plan {
    pub files: Vec<MigrationFile>,
    pub pending: Vec<MigrationFile>,
    pub current: i32,
    /// Each pending migration's time in the rehearsal, where the engine rehearses.
    pub rehearsal: Vec<(String, Duration)>,
}

impl Plan {
    pub fn target(&self) -> i32 {
        self.pending.last().map_or(self.current, |m| m.version)
    }
}

/// A backup that passed its engine's verification.
pub struct Verified {
    pub backup: Backup,
    /// How it was verified, for the step's line.
    pub how: std::borrow::Cow<'static, str>,
}

/// The database after a failed window: what is true of it, and whether the
/// service may be started on it (not when a needed restore failed, or its
/// state could not be read).
pub struct Undone {
    pub said: String,
    pub service_may_start: bool,
}

impl Undone {
    pub fn fine(said: impl Into<String>) -> Undone {
        Undone {
            said: said.into(),
            service_may_start: true,
        }
    }

    pub fn hold_the_service(said: impl Into<String>) -> Undone {
        Undone {
            said: said.into(),
            service_may_start: false,
        }
    }
}

/// Every command's access: what must exist, the locks, the recorded
/// history, the size, and what a pending migration's precondition counts.
pub trait Access {
    /// Step 1, before the lock file: what must exist for it.
    fn prepare_lock(&mut self, create: bool) -> anyhow::Result<()>;
    /// Step 1, after the lock file: a lock on the server, where the engine
    /// has one (runs on several hosts serialize on it); says which.
    fn hold_server(&mut self) -> anyhow::Result<Option<String>>;
    /// Whether the database exists yet (a first deploy's dry run plans its
    /// creation instead of reading it).
    fn exists(&self) -> bool {
        true
    }
    /// Step 2: the recorded history; with `create`, a missing database is
    /// created first.
    fn applied_history(&mut self, create: bool) -> anyhow::Result<Vec<Migration>>;
    /// Step 2: what a backup of the database will hold, in bytes.
    fn database_bytes(&mut self) -> anyhow::Result<u64>;
    /// Step 2: one integer from `sql` (a pending migration's precondition),
    /// read on the live database without changing it.
    fn count_live(&mut self, sql: &str) -> anyhow::Result<i64>;
    /// `migrate status`: what is wrong in the database beyond its history
    /// (Postgres: INVALID indexes a failed concurrent build left), with the fix.
    fn leftovers(&mut self) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The maintenance window's steps that differ per engine.
pub trait Runner {
    /// Step 2, beyond the history: the engine's own checks while the service
    /// still runs (it may fill `plan.rehearsal`); their detail line.
    fn check_before_downtime(&mut self, plan: &mut Plan) -> anyhow::Result<String>;
    /// Step 3, after the service went down: prove nobody else uses the database.
    fn prove_quiet(&mut self) -> anyhow::Result<&'static str>;
    /// Steps 4 and 5: the backup, and the migration committed only once the
    /// backup is verified; each timed, the migration's with its detail line.
    fn back_up_and_migrate(&mut self, plan: &Plan) -> (Timed<Verified>, Timed<((), String)>);
    /// After step 6 (healthy or not): a backup that step 4 only prepared
    /// (Postgres's restore point) is written to its file; its line. None
    /// when step 4's backup was already complete.
    fn finish_backup(&mut self, _backup: &Backup) -> Option<anyhow::Result<String>> {
        None
    }
    /// Steps 3–5 failed before the service took traffic: leave the database
    /// as it was before the window, where it can be; says what is true of it
    /// now, and whether the service may start on it.
    fn undo(&mut self, steps: &Steps, plan: &Plan, backup: Option<&Backup>) -> Undone;
    /// The name of step 5.
    fn migrate_step(&self) -> &'static str;
    /// The dry run's lines: the lock, the backup, the migrations.
    fn describe_lock(&self) -> String;
    fn describe_backup(&self) -> &'static str;
    fn describe_apply(&self, plan: &Plan) -> Vec<String>;
    /// `migrate --vacuum`, after step 5 while the service is still down:
    /// reclaim the free pages the migration left; says what it did.
    fn vacuum(&mut self) -> anyhow::Result<String> {
        anyhow::bail!("VACUUM after the migration is for SQLite databases")
    }
    /// After the window: the free pages read from the live database, and
    /// how to reclaim them, when they are worth it.
    fn free_space_advice(&self) -> Option<String> {
        None
    }
}

/// Backups while the service runs, and restores.
pub trait Backups {
    /// `cargo xtask backup`: a verified backup to `dest` while the service runs.
    fn back_up_online(&mut self, dest: &std::path::Path) -> anyhow::Result<Verified>;
    /// `cargo xtask restore`: whether `backup` is a usable backup of this engine.
    fn verify_backup(&self, backup: &std::path::Path) -> anyhow::Result<()>;
    /// `restore`: refuse while anything else uses the database, then hold it.
    fn hold_for_restore(&mut self) -> anyhow::Result<()>;
    /// `restore`: keep the current contents at `dest` (None: no database yet).
    fn keep_current(&mut self, dest: &std::path::Path) -> anyhow::Result<Option<Backup>>;
    /// `restore`: replace the database with `backup`, all or nothing; says
    /// how the result was checked.
    fn restore_from(&mut self, backup: &std::path::Path) -> anyhow::Result<&'static str>;
}

/// `migrate adopt`: proving an existing schema equal to a version's, and
/// recording that history.
pub trait Adoption {
    /// `migrate adopt`, only reading (a refused adoption leaves the database
    /// byte for byte as it was): the recorded history and the live schema.
    fn read_for_adoption(&mut self) -> anyhow::Result<(Vec<Migration>, Shape)>;
    /// `migrate adopt`: the schema after each of `files`, applied in order
    /// to a new database of this engine.
    fn schema_at_each_version(
        &mut self,
        files: &[MigrationFile],
    ) -> anyhow::Result<Vec<(i32, Shape)>>;
    /// `migrate adopt`: the engine's integrity checks on the live database,
    /// only reading; their detail line.
    fn check_integrity(&mut self) -> anyhow::Result<String>;
    /// `migrate adopt`: `files` up to `version` recorded as applied, as
    /// refinery records them, without running their SQL, in one transaction
    /// that holds off schema changes and first passes the schema read in it
    /// to `still_proven` (an error rolls it back).
    fn record_applied(
        &mut self,
        files: &[MigrationFile],
        version: i32,
        still_proven: &mut dyn FnMut(Shape) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
}

/// An engine plays every role; commands take the role they need.
pub trait Engine: Access + Runner + Backups + Adoption {}

impl<T: Access + Runner + Backups + Adoption> Engine for T {}
