//! Everything Postgres does its own way, in one folder: connecting under a
//! name other sessions can see, the migration advisory lock, reading the
//! history without trusting it, applying migrations through refinery in one
//! transaction with lock and statement timeouts (here); pg_dump and
//! pg_restore (`backups.rs`), the server-side restore point
//! (`restore_point.rs`), INVALID indexes (`indexes.rs`), scratch databases
//! (`scratch.rs`), who blocks a migration and signals (`watch.rs`), the
//! schema reader (`schema.rs`), the window's roles (`window.rs`,
//! `server.rs`) and the rolling-deploy job's retries (`job_apply.rs`).

pub mod backups;
pub mod indexes;
pub mod job_apply;
pub mod restore_point;
pub mod schema;
pub mod scratch;
mod server;
pub mod watch;
pub mod window;

use crate::program::OPS;
use std::{
    str::FromStr,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use postgres::{Client, NoTls};
use refinery_core::Migration;
use secrets_contract::dburl::PgUrl;

use crate::engine::refinery::{self, Failure, MigrateError};
use crate::history::MigrationFile;

pub use secrets_contract::schema::HISTORY_TABLE;

/// The advisory lock every migration run takes: "secrets!" as a big-endian
/// integer, so it is unlikely to collide with an application's own locks.
pub const MIGRATION_LOCK_KEY: i64 = 0x7365_6372_6574_7321;

pub use crate::engine::roles::Timeouts;

/// Connects, naming the session after the command and this process so a
/// blocked run can say who holds the lock.
pub fn connect(url: &PgUrl, purpose: &str) -> anyhow::Result<Client> {
    let mut config = postgres::Config::from_str(url.connection_string())
        .with_context(|| format!("{url} is not a valid Postgres URL"))?;
    config.application_name(&format!(
        "{OPS} {purpose} (pid {} on {})",
        std::process::id(),
        crate::run_lock::hostname()
    ));
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.connect(NoTls).with_context(|| {
        format!(
            "connecting to {url}: check that the server runs, the credentials, and that the \
             database exists"
        )
    })
}

/// Takes the session-level migration lock, waiting up to `wait` (the
/// setting `wait_setting`) for another run to finish; on timeout the error
/// names the session that holds it.
pub fn lock(client: &mut Client, wait: Duration, wait_setting: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])?
            .get(0);
        if taken {
            return Ok(());
        }
        if start.elapsed() >= wait {
            bail!(
                "another migration holds the database's migration lock ({}); waited {wait:?}. \
                 Let it finish and run again (raise {wait_setting} to wait longer)",
                lock_holder(client).unwrap_or_else(|e| format!("holder unknown: {e}"))
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The session holding the migration lock, as `pg_stat_activity` shows it.
pub fn lock_holder(client: &mut Client) -> anyhow::Result<String> {
    let key = MIGRATION_LOCK_KEY;
    // A bigint advisory key is split into classid (high) and objid (low);
    // advisory locks are per database, so other databases' runs don't count.
    let row = client.query_opt(
        "SELECT a.pid, a.application_name, COALESCE(host(a.client_addr), 'local'), \
                to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid::int8 = ($1::int8 >> 32) AND l.objid::int8 = ($1::int8 & 4294967295)",
        &[&key],
    )?;
    Ok(match row {
        Some(row) => format!(
            "server pid {}, `{}`, from {}, connected since {}",
            row.get::<_, i32>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3)
        ),
        None => "it was released meanwhile".to_owned(),
    })
}

/// The migration history as recorded, oldest first; empty when the history
/// table does not exist yet.
pub fn applied_history(client: &mut Client) -> anyhow::Result<Vec<Migration>> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY_TABLE])?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    read_history(client, &refinery::history_query()).map_err(anyhow::Error::new)
}

fn read_history(client: &mut Client, sql: &str) -> Result<Vec<Migration>, MigrateError> {
    let rows = client
        .query(sql, &[])?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<Vec<refinery::HistoryRow>, postgres::Error>>()?;
    refinery::history_rows(rows)
}

pub use refinery::Stopped;

/// Applies every pending migration in `files` with the timeouts set:
/// consecutive transactional ones in one transaction, `before_commit`
/// running last inside it; a `-- xtask: no-transaction` file alone, outside
/// any transaction. The caller holds the migration lock. Returns the
/// migrations applied, in order; a failure says what committed before it.
pub fn apply_pending(
    client: &mut Client,
    files: &[MigrationFile],
    timeouts: Timeouts,
    before_commit: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Vec<Migration>, Stopped> {
    let session = PgSession { client, timeouts };
    refinery::run_in_order(session, files, &mut |_| before_commit())
}

/// `files` up to `version` recorded as applied, their SQL not run (`migrate adopt`).
pub fn record_applied(
    client: &mut Client,
    files: &[MigrationFile],
    version: i32,
    timeouts: Timeouts,
    still_proven: &mut dyn FnMut(&mut Client) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut session = PgSession { client, timeouts };
    refinery::Session::begin(&mut session)?;
    let outcome = hold_off_ddl(session.client)
        .and_then(|()| still_proven(session.client))
        .and_then(|()| {
            let nested = refinery::Nested(PgSession {
                client: &mut *session.client,
                timeouts,
            });
            refinery::record_applied(nested, files, version)
        })
        .and_then(|()| Ok(refinery::Session::commit(&mut session)?));
    if outcome.is_err() {
        refinery::Session::rollback(&mut session);
    }
    outcome
}

/// Inside the transaction: every table of the database locked in SHARE
/// UPDATE EXCLUSIVE mode, which blocks ALTER, DROP and CREATE INDEX on them
/// (the service's reads and writes go on) until the commit.
fn hold_off_ddl(client: &mut Client) -> anyhow::Result<()> {
    let tables: Vec<String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname !~ '^pg_(toast|temp)'",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !tables.is_empty() {
        client
            .batch_execute(&format!(
                "LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE",
                tables.join(", ")
            ))
            .map_err(|e| {
                anyhow::anyhow!(
                    "locking the tables against schema changes: {}",
                    describe(&e)
                )
            })?;
    }
    Ok(())
}

/// The SQLSTATE of the Postgres error inside `error`, if there is one.
pub fn sql_error_code(error: &anyhow::Error) -> Option<String> {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<postgres::Error>())
        .and_then(postgres::Error::code)
        .map(|c| c.code().to_owned())
}

impl From<postgres::Error> for MigrateError {
    fn from(e: postgres::Error) -> Self {
        MigrateError::Database(describe(&e))
    }
}

/// A statement's failure for the runner: a lock not granted within
/// `lock_timeout` is marked, so a job can wait and try again.
fn failure(e: &postgres::Error) -> Failure {
    Failure {
        message: describe(e),
        lock_timeout: e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE),
        left_invalid: false,
    }
}

/// The server's message and its hint, which `postgres::Error`'s own text
/// leaves out; a lock or statement timeout gets the fix.
pub fn describe(e: &postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    // Never the server's DETAIL, nor data it quotes: values are secrets.
    let mut text = secrets_contract::db_error::describe_postgres(e);
    match db.code().code() {
        "55P03" => text.push_str(
            ". A table lock was not granted within lock_timeout: a long transaction holds it. \
             Nothing was changed; run again when it has finished (or raise MIGRATE_PG_LOCK_TIMEOUT_SECS)",
        ),
        // 57014 is also a cancel request (SIGINT/SIGTERM to `--job`).
        "57014" if !db.message().contains("statement timeout") => {}
        "57014" => text.push_str(
            ". The statement ran past statement_timeout; nothing was changed. \
             Raise MIGRATE_PG_STATEMENT_TIMEOUT_SECS if the migration needs longer",
        ),
        _ => {}
    }
    text
}

/// A Postgres connection as refinery's session: its transaction sets the
/// timeouts first.
struct PgSession<'c> {
    client: &'c mut Client,
    timeouts: Timeouts,
}

impl refinery::Session for PgSession<'_> {
    fn begin(&mut self) -> Result<(), MigrateError> {
        Ok(self.client.batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}",
            self.timeouts.lock.as_millis(),
            self.timeouts.statement.as_millis()
        ))?)
    }

    fn execute(&mut self, sql: &str) -> Result<(), Failure> {
        self.client.batch_execute(sql).map_err(|e| failure(&e))
    }

    fn count(&mut self, sql: &str) -> Result<i64, String> {
        count_one(self.client, sql)
    }

    /// The timeouts are set for the session (`SET LOCAL` needs a
    /// transaction) and reset after. An INVALID index the statement would
    /// create, or one that is new after it ran (on success, failure, lock
    /// timeout or cancel), fails the file: it is not recorded, nor retried.
    fn run_alone(&mut self, file: &MigrationFile) -> Result<(), Failure> {
        refuse_invalid_index(self.client, file)?;
        let before = indexes::invalid_indexes(self.client).map_err(|e| failure(&e))?;
        self.client
            .batch_execute(&format!(
                "SET lock_timeout = {}; SET statement_timeout = {}",
                self.timeouts.lock.as_millis(),
                self.timeouts.statement.as_millis()
            ))
            .map_err(|e| failure(&e))?;
        let ran = self.client.batch_execute(&file.sql);
        let reset = self
            .client
            .batch_execute("RESET lock_timeout; RESET statement_timeout");
        let left = indexes::invalid_since(self.client, &before);
        match (ran, left) {
            (ran, Ok(left)) if !left.is_empty() => Err(left_behind(ran.err(), &left)),
            (Err(e), Ok(_)) => Err(failure_alone(&e)),
            (Err(e), Err(check)) => Err(format!(
                "{}; whether it left an INVALID index could not be checked ({}): look with \
                 `SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid` before running again",
                describe(&e),
                describe(&check)
            )
            .into()),
            (Ok(()), Err(check)) => Err(failure(&check)),
            (Ok(()), Ok(_)) => reset.map_err(|e| failure(&e)),
        }
    }

    fn check(&mut self) -> Result<(), MigrateError> {
        Ok(())
    }

    fn commit(&mut self) -> Result<(), MigrateError> {
        Ok(self.client.batch_execute("COMMIT")?)
    }

    fn rollback(&mut self) {
        let _ = self.client.batch_execute("ROLLBACK");
    }

    fn read_history(&mut self, sql: &str) -> Result<Vec<Migration>, MigrateError> {
        read_history(self.client, sql)
    }
}

/// A migration precondition's count: exactly one row of one column holding
/// a non-negative integer (bigint or integer), or why not.
pub fn count_one(client: &mut impl postgres::GenericClient, sql: &str) -> Result<i64, String> {
    let rows = client.query(sql, &[]).map_err(|e| describe(&e))?;
    let [row] = rows.as_slice() else {
        return Err(format!("it returns {} rows, not one", rows.len()));
    };
    if row.len() != 1 {
        return Err(format!("it returns {} columns, not one", row.len()));
    }
    let value = row
        .try_get::<_, Option<i64>>(0)
        .or_else(|_| row.try_get::<_, Option<i32>>(0).map(|v| v.map(i64::from)))
        .map_err(|_| "its value is not an integer (count with `SELECT count(*) …`)".to_owned())?;
    match value {
        None => Err("it returns NULL, not a count".into()),
        Some(n) if n < 0 => Err(format!(
            "it counts {n}, and a count of rows is never negative"
        )),
        Some(n) => Ok(n),
    }
}

/// Fails `file` when an index it creates exists INVALID already (a run
/// that failed before), naming the index and the fix.
fn refuse_invalid_index(client: &mut Client, file: &MigrationFile) -> Result<(), Failure> {
    let invalid = indexes::invalid_indexes(client).map_err(|e| failure(&e))?;
    let named: Vec<String> = indexes::created_by(&invalid, file)
        .iter()
        .map(|index| index.describe())
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    Err(Failure {
        left_invalid: true,
        ..format!(
            "an index it creates exists already as {}; the migration is not recorded as applied",
            named.join("; ")
        )
        .into()
    })
}

/// A no-transaction statement that left INVALID indexes (`error`: why it
/// stopped, if it failed): never retried, never recorded. The server's
/// words only, without the "nothing was changed" of a lock timeout.
fn left_behind(error: Option<postgres::Error>, left: &[indexes::InvalidIndex]) -> Failure {
    let why = error.map_or_else(
        || "the statement succeeded but".to_owned(),
        |e| format!("{};", secrets_contract::db_error::describe_postgres(&e)),
    );
    let named: Vec<String> = left.iter().map(|index| index.describe()).collect();
    Failure {
        left_invalid: true,
        ..format!(
            "{why} it left behind {}; the migration is not recorded as applied",
            named.join("; ")
        )
        .into()
    }
}

/// A no-transaction statement's failure that left no INVALID index; an
/// index that exists already (42P07: a build whose run was killed may have
/// finished without its history row) is named with both fixes.
fn failure_alone(e: &postgres::Error) -> Failure {
    let existing = e.as_db_error().filter(|db| db.code().code() == "42P07");
    // `relation "name" already exists`: the server quotes the bare name.
    let Some(name) = existing.and_then(|db| db.message().split('"').nth(1)) else {
        return failure(e);
    };
    let index = indexes::identifier(name);
    format!(
        "{}. It exists but no migration recorded it: a run killed during its build may have \
         finished it without writing the history row. Either drop it (`DROP INDEX CONCURRENTLY \
         {index};`) and run again, or write the file's CREATE INDEX with IF NOT EXISTS so that a \
         re-run adopts it (a VALID index only: an INVALID one is refused)",
        describe(e)
    )
    .into()
}
