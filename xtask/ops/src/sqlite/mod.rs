//! Everything SQLite does its own way, in one folder: opening with one set
//! of pragmas, the exclusive lock, reading the migration history without
//! trusting it, applying migrations through refinery in one checked
//! transaction (here); backups and restores of the file (`backups.rs`);
//! free pages and VACUUM (`free_space.rs`, `free_pages.rs`); the schema
//! reader (`schema.rs`, `clauses.rs`); the window's roles (`window.rs`).

pub mod backups;
mod clauses;
pub mod free_pages;
pub mod free_space;
pub mod schema;
pub mod window;

use crate::program::OPS;
use std::{path::Path, time::Duration};

use anyhow::{Context, bail};
use refinery_core::Migration;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::engine::refinery::{self, MigrateError};
use crate::{fsutil, history::MigrationFile};

pub use secrets_contract::schema::HISTORY_TABLE;

/// How long to wait for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a database file for migration. Without `create`, a missing file is
/// an error: a typo in DATABASE_URL must not silently start an empty database.
pub fn open(path: &Path, create: bool) -> anyhow::Result<Connection> {
    let conn = open_keeping_journal(path, create)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| unusable(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!(
            "{}: could not switch to WAL journal mode (got `{mode}`)",
            path.display()
        );
    }
    Ok(conn)
}

/// Opens the database to read and write it, its journal mode left as it is:
/// a backup, or `migrate adopt`'s few rows, change nothing else in the file.
pub fn open_keeping_journal(path: &Path, create: bool) -> anyhow::Result<Connection> {
    if path.is_dir() {
        bail!(
            "{} is a folder, not a database file: point DATABASE_URL at the .db file",
            path.display()
        );
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !path.exists() {
        if !create {
            bail!(
                "database file {} does not exist: check DATABASE_URL, or pass --create \
                 for a first deploy",
                path.display()
            );
        }
        // The database holds secrets: created 0600 (in a folder created
        // 0700) before SQLite opens it, so it is never readable by others,
        // and its -wal and -shm, which SQLite gives the database's mode, neither.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsutil::create_private_dirs(parent)?;
        }
        fsutil::create_private_file(path)?;
    }
    // No SQLITE_OPEN_URI: a path is a path, whatever characters it holds.
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // As the service does: what a migration deletes (a table a rebuild
    // drops, a column V6 drops) is overwritten with zeros, so no value the
    // database once held lingers in its free pages, nor in a later backup.
    conn.pragma_update(None, "secure_delete", true)
        .map_err(|e| unusable(path, e))?;
    Ok(conn)
}

/// Opens a database file only to read it: its journal mode is left as it is,
/// so the file stays byte for byte what it was (`migrate adopt` refusing).
pub fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        bail!(
            "database file {} does not exist (or is not a file): check DATABASE_URL",
            path.display()
        );
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening database {} to read it", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A file that is not a database fails here, on its first read.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| unusable(path, e))?;
    Ok(conn)
}

/// `Some(mode)` when other users of the host may read the database file.
pub fn readable_by_others(db: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(db).ok()?.permissions().mode() & 0o777;
    (mode & 0o004 != 0).then_some(mode)
}

/// A consistent copy of `conn`'s database into the (new, empty) file `dest`,
/// in one backup step: one read transaction over the whole file, beside which
/// WAL lets writers go on, so a steady write load cannot restart it (a paged
/// backup starts over after every write). Retried while the source is busy,
/// for at most `within`.
pub fn snapshot(conn: &Connection, dest: &Path, within: Duration) -> anyhow::Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let mut target =
        Connection::open(dest).with_context(|| format!("opening {}", dest.display()))?;
    let backup = Backup::new(conn, &mut target).context("starting the snapshot")?;
    let start = std::time::Instant::now();
    loop {
        match backup.step(-1).context("copying the snapshot")? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked
                if start.elapsed() < within =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => bail!(
                "no consistent snapshot within {} s ({other:?}): the database stayed locked by a writer; \
                 run again when it is quieter",
                within.as_secs()
            ),
        }
    }
}

/// The database's bytes, its WAL included: what a backup will hold.
pub fn file_bytes(db: &Path) -> u64 {
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    [db, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// A connection holding SQLite's exclusive lock until it is dropped.
pub fn lock_exclusively(db: &Path, timeout: Duration) -> anyhow::Result<Connection> {
    let conn = open(db, false)?;
    conn.busy_timeout(timeout)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").map_err(|e| {
        anyhow::anyhow!(
            "{} is still in use by another process after {} s ({e}): the service (or another tool) keeps it open — \
             stop it, or raise MIGRATE_LOCK_TIMEOUT_SECS",
            db.display(),
            timeout.as_secs()
        )
    })?;
    Ok(conn)
}

/// Checkpoints the WAL into the main file and turns automatic checkpoints
/// off, so the main file holds the whole database and stays as it is.
pub fn freeze_main_file(db: &Connection) -> anyhow::Result<()> {
    let (busy, _, _): (i64, i64, i64) = db
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .context("checkpointing the WAL")?;
    if busy != 0 {
        bail!("the WAL checkpoint was blocked: another connection still reads the database");
    }
    db.pragma_update(None, "wal_autocheckpoint", 0)
        .context("turning automatic checkpoints off")?;
    Ok(())
}

/// Why a database cannot be used, told truly: a busy or read-only database
/// is not a corrupt one, and only a corrupt one needs a restore.
fn unusable(path: &Path, e: rusqlite::Error) -> anyhow::Error {
    let shown = path.display();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            match crate::run_lock::current_holder(&crate::run_lock::path_for(path)) {
                Some(holder) => anyhow::anyhow!(
                    "{shown} is locked by a running {holder}: wait for it to finish, then run this again"
                ),
                None => anyhow::anyhow!(
                    "{shown} is locked by another process (the service in the middle of a write, or another \
                     tool): try again, or find it with `fuser {}`",
                    crate::quote::shell(&path.to_string_lossy())
                ),
            }
        }
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            anyhow::anyhow!(
                "{shown} cannot be opened for writing ({e}): SQLite's WAL mode needs to write the database and \
             its folder; check their permissions and that the filesystem is not read-only"
            )
        }
        _ => anyhow::anyhow!(
            "{shown} is not a usable SQLite database (wrong file, or corrupt: {e}): check DATABASE_URL, or \
             restore a backup"
        ),
    }
}

/// Applies every pending migration in `files` in one transaction, with foreign
/// key enforcement off around it (SQLite's table-rebuild procedure needs that,
/// and the pragma is a no-op inside a transaction) and `foreign_key_check`
/// run before the commit. Returns the migrations applied, in order.
pub fn apply_pending(
    conn: &mut Connection,
    files: &[MigrationFile],
) -> anyhow::Result<Vec<Migration>> {
    apply_pending_gated(conn, files, &mut |_| Ok(()))
}

/// [`apply_pending`], where `before_commit` runs inside the migration's
/// transaction, after the SQL and the foreign key check: an error from it
/// rolls everything back.
pub fn apply_pending_gated(
    conn: &mut Connection,
    files: &[MigrationFile],
    before_commit: &mut dyn FnMut(&Connection) -> Result<(), String>,
) -> anyhow::Result<Vec<Migration>> {
    conn.pragma_update(None, "foreign_keys", false)
        .context("switching foreign key enforcement off for the migration")?;
    // SQLite never runs a no-transaction file (`history::load_for` refuses
    // them), so this is one transaction.
    let outcome = refinery::run_in_order(&mut *conn, files, &mut |conn| before_commit(conn))
        .map_err(|stopped| stopped.error);
    conn.pragma_update(None, "foreign_keys", true)
        .context("switching foreign key enforcement back on")?;
    outcome
}

/// `files` up to `version` recorded as applied, their SQL not run (`migrate adopt`).
/// `migrate adopt`: `still_proven` checks the schema again inside the
/// transaction that writes the history (`BEGIN IMMEDIATE`: no other writer,
/// so no schema change, until it ends); an error rolls everything back.
pub fn record_applied(
    conn: &mut Connection,
    files: &[MigrationFile],
    version: i32,
    still_proven: &mut dyn FnMut(&Connection) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .context("taking the database's write lock to record the history")?;
    let outcome = still_proven(conn)
        .and_then(|()| refinery::record_applied(refinery::Nested(&mut *conn), files, version))
        .and_then(|()| Ok(conn.execute_batch("COMMIT")?));
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome
}

/// The migration history as recorded, oldest first; an empty list when the
/// history table does not exist yet.
pub fn applied_history(conn: &Connection) -> Result<Vec<Migration>, MigrateError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [HISTORY_TABLE],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(Vec::new());
    }
    read_history(conn, &refinery::history_query())
}

/// [`applied_history`] of the database at `path`: a row edited by hand is
/// said first (the file reads fine); anything else may be a damaged file.
pub fn applied_history_of(conn: &Connection, path: &Path) -> anyhow::Result<Vec<Migration>> {
    match applied_history(conn) {
        Err(MigrateError::History(problem)) => bail!(
            "{}: the migration history ({HISTORY_TABLE}) has a row refinery cannot read: {problem}",
            path.display()
        ),
        other => Ok(other.with_context(|| {
            format!(
                "{} cannot be read (is it corrupt?): check it with `PRAGMA integrity_check`, \
                 or restore a backup with `{OPS} restore`",
                path.display()
            )
        })?),
    }
}

/// [`applied_history`] for a database another tool built: a history table
/// whose SQL fails (not refinery's columns) is named with the fix.
pub fn applied_history_explained(conn: &Connection, shown: &str) -> anyhow::Result<Vec<Migration>> {
    match applied_history(conn) {
        Err(MigrateError::Database(cause)) => Err(crate::engine::unreadable_history(shown, cause)),
        other => Ok(other?),
    }
}

fn read_history(conn: &Connection, sql: &str) -> Result<Vec<Migration>, MigrateError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<Vec<refinery::HistoryRow>, _>>()?;
    refinery::history_rows(rows)
}

/// What `PRAGMA integrity_check` (or `quick_check`) reports besides `ok`.
pub fn integrity_problems(conn: &Connection, pragma: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let lines: Vec<String> = rows.collect::<Result<_, _>>()?;
    Ok(lines.into_iter().filter(|l| l != "ok").collect())
}

/// Violations of foreign keys in the whole database, one line each.
pub fn foreign_key_violations(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt.query_map([], |row| {
        let table: String = row.get(0)?;
        let rowid: Option<i64> = row.get(1)?;
        let parent: String = row.get(2)?;
        Ok(format!(
            "{table} row {} references a missing row in {parent}",
            rowid.map_or_else(|| "?".to_owned(), |r| r.to_string())
        ))
    })?;
    rows.collect()
}

/// A migration precondition's count: exactly one row of one column holding
/// a non-negative integer, or why not (a second row or column would
/// otherwise be ignored, and the guard pass on the first value alone).
pub fn count_one(conn: &Connection, sql: &str) -> Result<i64, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    if stmt.column_count() != 1 {
        return Err(format!(
            "it returns {} columns, not one",
            stmt.column_count()
        ));
    }
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let value: i64 = match rows.next().map_err(|e| e.to_string())? {
        None => return Err("it returns no row".into()),
        Some(row) => row.get(0).map_err(|_| {
            "its value is not an integer (count with `SELECT count(*) …`)".to_owned()
        })?,
    };
    if rows.next().map_err(|e| e.to_string())?.is_some() {
        return Err("it returns more than one row".into());
    }
    match value {
        n if n < 0 => Err(format!(
            "it counts {n}, and a count of rows is never negative"
        )),
        n => Ok(n),
    }
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Database(e.to_string())
    }
}

/// A SQLite connection as refinery's session: its transaction checks
/// foreign keys before committing.
impl refinery::Session for &mut Connection {
    fn begin(&mut self) -> Result<(), MigrateError> {
        Ok(self.execute_batch("BEGIN")?)
    }

    fn execute(&mut self, sql: &str) -> Result<(), refinery::Failure> {
        self.execute_batch(sql).map_err(|e| e.to_string().into())
    }

    fn count(&mut self, sql: &str) -> Result<i64, String> {
        count_one(self, sql)
    }

    fn check(&mut self) -> Result<(), MigrateError> {
        let violations = foreign_key_violations(self)?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(MigrateError::ForeignKeys(violations))
        }
    }

    fn commit(&mut self) -> Result<(), MigrateError> {
        Ok(self.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) {
        if !self.is_autocommit() {
            let _ = self.execute_batch("ROLLBACK");
        }
    }

    fn read_history(&mut self, sql: &str) -> Result<Vec<Migration>, MigrateError> {
        read_history(self, sql)
    }
}
