//! refinery's side of a migration run, written once for both engines: the
//! error type, history rows read without trusting them (refinery's own
//! drivers unwrap, and panic on a hand-edited row), the statements of one
//! transaction matched to the files they came from, and the grouped run.
//! Each engine's file implements refinery's `Transaction` and `Query` with
//! these, adding only what differs (SQLite's foreign key check, Postgres's
//! timeouts).

use std::fmt;

use refinery_core::{
    Migrate, Migration, Runner, Target,
    traits::sync::{Query, Transaction},
};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::history::{self, MigrationFile, no_transaction::is_no_transaction};

pub use secrets_contract::schema::HISTORY_TABLE;

/// `SELECT` of the whole history, oldest first.
pub fn history_query() -> String {
    format!("SELECT version, name, applied_on, checksum FROM {HISTORY_TABLE} ORDER BY version")
}

#[derive(Debug)]
pub enum MigrateError {
    /// The engine's own error, described as the engine describes it.
    Database(String),
    /// A migration's SQL failed: the file, and why.
    InMigration(String, String),
    ForeignKeys(Vec<String>),
    BeforeCommit(String),
    History(String),
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Database(e) => write!(f, "{e}"),
            MigrateError::InMigration(file, e) => write!(f, "{file}: {e}"),
            MigrateError::BeforeCommit(why) => write!(f, "rolled back before the commit: {why}"),
            MigrateError::ForeignKeys(violations) => write!(
                f,
                "the migration leaves {} foreign key violation(s): {}; fix the migration so \
                 every reference points at an existing row",
                violations.len(),
                violations.join("; ")
            ),
            MigrateError::History(problem) => {
                write!(f, "migration history table {HISTORY_TABLE}: {problem}")
            }
        }
    }
}

impl std::error::Error for MigrateError {}

/// How one migration statement failed: the engine's words, and whether a
/// lock was not granted within `lock_timeout` (nothing of the statement
/// stayed, so the run may be tried again).
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub lock_timeout: bool,
    /// A no-transaction statement left (or found) an INVALID index, which
    /// its message names: the file must not run again until it is dropped.
    pub left_invalid: bool,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            lock_timeout: false,
            left_invalid: false,
        }
    }
}

/// One row of the history table as stored: version, name, applied_on, checksum.
pub type HistoryRow = (i32, String, Option<String>, Option<String>);

/// The rows of the history table, checked.
pub fn history_rows(rows: Vec<HistoryRow>) -> Result<Vec<Migration>, MigrateError> {
    rows.into_iter()
        .map(|(version, name, applied_on, checksum)| {
            history_row(version, name, applied_on, checksum)
        })
        .collect()
}

/// One row of the history table, checked: an unreadable time or checksum
/// means the table was edited by hand.
fn history_row(
    version: i32,
    name: String,
    applied_on: Option<String>,
    checksum: Option<String>,
) -> Result<Migration, MigrateError> {
    let bad_row = |what: &str| {
        MigrateError::History(format!(
            "row for version {version} ({name}) has an invalid {what}; the table was edited \
             by hand: restore the database from a backup"
        ))
    };
    let applied_on = applied_on
        .and_then(|text| OffsetDateTime::parse(&text, &Rfc3339).ok())
        .ok_or_else(|| bad_row("applied_on"))?;
    let checksum = checksum
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| bad_row("checksum"))?;
    Ok(Migration::applied(version, name, applied_on, checksum))
}

/// What an engine's connection does for refinery; the driver below is the
/// rest, the same for both engines. The transaction is the connection's
/// own (`BEGIN` … `COMMIT`), so a gate can still read through it.
pub trait Session {
    /// Begins the transaction of a grouped run (with the engine's settings).
    fn begin(&mut self) -> Result<(), MigrateError>;
    fn execute(&mut self, sql: &str) -> Result<(), Failure>;
    /// One integer from `sql`, read inside the transaction (a migration's
    /// `-- xtask: refuse-unless-zero:` precondition).
    fn count(&mut self, sql: &str) -> Result<i64, String>;
    /// A `-- xtask: no-transaction` file, alone and outside any transaction
    /// (its history row follows in a transaction of its own).
    fn run_alone(&mut self, file: &MigrationFile) -> Result<(), Failure> {
        Err(format!(
            "{}: this engine runs no migration outside a transaction",
            file.path.display()
        )
        .into())
    }
    /// The engine's own checks after the statements, before the commit.
    fn check(&mut self) -> Result<(), MigrateError>;
    fn commit(&mut self) -> Result<(), MigrateError>;
    /// After any failure inside the transaction; best effort (a broken
    /// connection rolls back on its own).
    fn rollback(&mut self);
    /// Rows of [`history_query`]-shaped SQL, through [`history_row`].
    fn read_history(&mut self, sql: &str) -> Result<Vec<Migration>, MigrateError>;
}

/// A session inside a transaction its caller already holds (`migrate adopt`
/// proves the schema again in it): refinery's own transactions become
/// savepoints, so nothing is committed before the caller commits.
pub struct Nested<S>(pub S);

const SAVEPOINT: &str = "xtask_refinery";

impl<S: Session> Session for Nested<S> {
    fn begin(&mut self) -> Result<(), MigrateError> {
        self.0
            .execute(&format!("SAVEPOINT {SAVEPOINT}"))
            .map_err(|f| MigrateError::Database(f.message))
    }

    fn execute(&mut self, sql: &str) -> Result<(), Failure> {
        self.0.execute(sql)
    }

    fn count(&mut self, sql: &str) -> Result<i64, String> {
        self.0.count(sql)
    }

    fn check(&mut self) -> Result<(), MigrateError> {
        self.0.check()
    }

    fn commit(&mut self) -> Result<(), MigrateError> {
        self.0
            .execute(&format!("RELEASE SAVEPOINT {SAVEPOINT}"))
            .map_err(|f| MigrateError::Database(f.message))
    }

    fn rollback(&mut self) {
        let _ = self
            .0
            .execute(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"));
        let _ = self.0.execute(&format!("RELEASE SAVEPOINT {SAVEPOINT}"));
    }

    fn read_history(&mut self, sql: &str) -> Result<Vec<Migration>, MigrateError> {
        self.0.read_history(sql)
    }
}

/// A caller's last word inside the migration's transaction: an error rolls
/// everything back (the window waits here for its verified backup).
pub type Gate<'a, S> = &'a mut dyn FnMut(&mut S) -> Result<(), String>;

/// The connection as refinery sees it, for either engine.
struct Driver<'a, S: Session> {
    session: S,
    files: &'a [MigrationFile],
    before_commit: Gate<'a, S>,
    /// The last failure was a lock not granted in time.
    lock_timeout: bool,
    /// The last failing statement: its file and the engine's words (what
    /// refinery wraps in wording that is wrong once a group committed).
    failed: Option<String>,
    /// It was a no-transaction file: nothing rolled it back.
    failed_alone: bool,
    /// That file left an INVALID index (see [`Failure::left_invalid`]).
    left_invalid: bool,
}

impl<S: Session> Driver<'_, S> {
    fn statements_checked_and_gated<'q>(
        &mut self,
        queries: impl Iterator<Item = &'q str>,
    ) -> Result<usize, MigrateError> {
        let session = &mut self.session;
        let files = self.files;
        let lock_timeout = &mut self.lock_timeout;
        let (count, has_migrations) = run_statements(queries, self.files, |q, file| {
            if let Some(file) = file {
                refuse_unless_precondition_holds(session, file, files)?;
            }
            session.execute(q).map_err(|failure| {
                *lock_timeout = failure.lock_timeout;
                failure.message
            })
        })?;
        session.check()?;
        // refinery also calls this to create its history table: only the
        // migrations' own transaction passes the gate.
        if has_migrations {
            (self.before_commit)(session).map_err(MigrateError::BeforeCommit)?;
        }
        Ok(count)
    }
}

impl<S: Session> Transaction for Driver<'_, S> {
    type Error = MigrateError;

    fn execute<'a, T: Iterator<Item = &'a str>>(
        &mut self,
        queries: T,
    ) -> Result<usize, MigrateError> {
        (self.lock_timeout, self.left_invalid) = (false, false);
        (self.failed, self.failed_alone) = (None, false);
        let mut queries = queries.peekable();
        let files = self.files;
        let alone = queries
            .peek()
            .and_then(|q| files.iter().find(|f| f.sql == *q && is_no_transaction(f)));
        if let Some(file) = alone {
            queries.next();
            self.session.run_alone(file).map_err(|failure| {
                self.lock_timeout = failure.lock_timeout;
                self.left_invalid = failure.left_invalid;
                let error =
                    MigrateError::InMigration(file.path.display().to_string(), failure.message);
                (self.failed, self.failed_alone) = (Some(error.to_string()), true);
                error
            })?;
        }
        self.session.begin()?;
        let outcome = self
            .statements_checked_and_gated(queries)
            .and_then(|count| self.session.commit().map(|()| count));
        if let Err(error @ MigrateError::InMigration(..)) = &outcome {
            self.failed = Some(error.to_string());
        }
        if outcome.is_err() {
            self.session.rollback();
        }
        outcome
    }
}

impl<S: Session> Query<Vec<Migration>> for Driver<'_, S> {
    fn query(&mut self, sql: &str) -> Result<Vec<Migration>, MigrateError> {
        self.session.read_history(sql)
    }
}

impl<S: Session> Migrate for Driver<'_, S> {}

/// Runs refinery's statements of one transaction through `execute`; a
/// failing one is named by its file (refinery passes the SQL verbatim).
/// Returns how many ran, and whether any was a migration (refinery also
/// runs transactions of its own, to create its table).
fn run_statements<'q>(
    queries: impl Iterator<Item = &'q str>,
    files: &[MigrationFile],
    mut execute: impl FnMut(&str, Option<&MigrationFile>) -> Result<(), String>,
) -> Result<(usize, bool), MigrateError> {
    let (mut count, mut has_migrations) = (0, false);
    for query in queries {
        let file = files.iter().find(|f| f.sql == query);
        has_migrations |= file.is_some();
        execute(query, file).map_err(|e| match file {
            Some(file) => MigrateError::InMigration(file.path.display().to_string(), e),
            None => MigrateError::Database(e),
        })?;
        count += 1;
    }
    Ok((count, has_migrations))
}

/// A migration's `-- xtask: refuse-unless-zero:` count, taken in its
/// transaction just before its statements: anything but zero stops the run
/// (and rolls the transaction back) with the count and the marker's hint.
fn refuse_unless_precondition_holds<S: Session>(
    session: &mut S,
    file: &MigrationFile,
    files: &[MigrationFile],
) -> Result<(), String> {
    let Some(precondition) = history::precondition::of(file).map_err(|e| format!("{e:#}"))? else {
        return Ok(());
    };
    let found = session
        .count(&precondition.count)
        .map_err(|e| precondition.uncountable(file, &e))?;
    let before = files
        .iter()
        .filter(|f| f.version < file.version)
        .map(|f| f.version)
        .max();
    match found {
        0 => Ok(()),
        n => Err(precondition.refusal(file, n, before)),
    }
}

/// A run that stopped: what it had committed before, and why it stopped.
#[derive(Debug)]
pub struct Stopped {
    pub applied: Vec<Migration>,
    pub error: anyhow::Error,
    /// A lock was not granted within `lock_timeout`: the failing part
    /// rolled back whole, and the run may be tried again.
    pub lock_timeout: bool,
    /// The failing part was a no-transaction file: nothing rolled it back.
    pub no_transaction: bool,
    /// It left an INVALID index, named in the error: drop it before a re-run.
    pub left_invalid: bool,
    /// The failing statement's file and the engine's words, when a
    /// statement failed (not, say, a changed checksum).
    pub statement: Option<String>,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Stopped {}

/// Every pending migration of `files` on `session`, in order: consecutive
/// transactional ones in one transaction, each no-transaction file alone
/// (the transaction before it commits first). The migrations applied.
pub fn run_in_order<S: Session>(
    session: S,
    files: &[MigrationFile],
    before_commit: Gate<'_, S>,
) -> Result<Vec<Migration>, Stopped> {
    let stopped = |applied, error| Stopped {
        applied,
        error,
        lock_timeout: false,
        no_transaction: false,
        left_invalid: false,
        statement: None,
    };
    let migrations = files
        .iter()
        .map(MigrationFile::to_refinery)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| stopped(Vec::new(), e))?;
    let mut driver = Driver {
        session,
        files,
        before_commit,
        lock_timeout: false,
        failed: None,
        failed_alone: false,
        left_invalid: false,
    };
    let mut applied = Vec::new();
    for last in last_versions_of_groups(files) {
        match Runner::new(&migrations)
            .set_grouped(true)
            .set_target(Target::Version(last))
            .run(&mut driver)
        {
            Ok(report) => applied.extend(report.applied_migrations().iter().cloned()),
            Err(e) => {
                // refinery's "rolled back" would be wrong for a no-transaction file.
                let error = match (&driver.failed, driver.failed_alone) {
                    (Some(failed), true) => anyhow::Error::msg(failed.clone()),
                    _ => history::explain(e, files),
                };
                return Err(Stopped {
                    lock_timeout: driver.lock_timeout,
                    no_transaction: driver.failed_alone,
                    left_invalid: driver.left_invalid,
                    statement: driver.failed.take(),
                    ..stopped(applied, error)
                });
            }
        }
    }
    Ok(applied)
}

/// The last version of each group a run commits on its own: the
/// transactional files between no-transaction ones, and each of those.
fn last_versions_of_groups(files: &[MigrationFile]) -> Vec<i32> {
    let mut ends = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if is_no_transaction(file) {
            ends.extend(i.checked_sub(1).map(|before| files[before].version));
            ends.push(file.version);
        }
    }
    ends.extend(files.last().map(|f| f.version));
    ends.dedup();
    if ends.is_empty() {
        ends.push(0);
    }
    ends
}

/// Records `files` up to `version` as applied without running their SQL,
/// in one transaction: refinery's own fake run, so the rows (version, name,
/// applied_on, checksum) are exactly the ones a real run writes. For
/// `migrate adopt`, once the schema is proven to be the one they produce.
pub fn record_applied<S: Session>(
    session: S,
    files: &[MigrationFile],
    version: i32,
) -> anyhow::Result<()> {
    let mut driver = Driver {
        session,
        files,
        before_commit: &mut |_| Ok(()),
        lock_timeout: false,
        failed: None,
        failed_alone: false,
        left_invalid: false,
    };
    let migrations = files
        .iter()
        .map(MigrationFile::to_refinery)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Runner::new(&migrations)
        .set_grouped(true)
        .set_target(Target::FakeVersion(version))
        .run(&mut driver)
        .map_err(|e| history::explain(e, files))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(version: i32, alone: bool) -> MigrationFile {
        let marker = if alone {
            "-- xtask: no-transaction\n"
        } else {
            ""
        };
        MigrationFile {
            version,
            name: format!("m{version}"),
            path: PathBuf::from(format!("V{version}__m{version}.sql")),
            sql: format!("{marker}CREATE INDEX i{version} ON t (x);"),
        }
    }

    #[test]
    fn each_no_transaction_file_is_a_group_of_its_own() {
        let files = |marks: &[bool]| -> Vec<MigrationFile> {
            marks
                .iter()
                .enumerate()
                .map(|(i, &alone)| file(i as i32 + 1, alone))
                .collect()
        };
        assert_eq!(last_versions_of_groups(&files(&[false, false])), [2]);
        assert_eq!(
            last_versions_of_groups(&files(&[false, true, false])),
            [1, 2, 3]
        );
        assert_eq!(last_versions_of_groups(&files(&[true, true])), [1, 2]);
        assert_eq!(
            last_versions_of_groups(&files(&[false, false, true])),
            [2, 3]
        );
        assert_eq!(last_versions_of_groups(&[]), [0]);
    }
}
