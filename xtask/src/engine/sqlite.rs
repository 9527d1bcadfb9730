//! SQLite mechanics shared by every command that touches a database: opening
//! with one set of pragmas, reading the migration history without trusting it,
//! and applying migrations through refinery in one checked transaction.

use std::{fmt, path::Path, time::Duration};

use anyhow::{Context, bail};
use refinery_core::{
    Migrate, Migration, Runner,
    traits::sync::{Query, Transaction},
};
use rusqlite::{Connection, OpenFlags};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::history::{self, MigrationFile};

pub use backend::schema::HISTORY_TABLE;

/// How long to wait for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a database file for migration. Without `create`, a missing file is
/// an error: a typo in DATABASE_URL must not silently start an empty database.
pub fn open(path: &Path, create: bool) -> anyhow::Result<Connection> {
    if path.is_dir() {
        bail!(
            "{} is a folder, not a database file: point DATABASE_URL at the .db file",
            path.display()
        );
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !path.exists() {
        if !create {
            bail!(
                "database file {} does not exist: check DATABASE_URL, or pass --create \
                 for a first deploy",
                path.display()
            );
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database folder {}", parent.display()))?;
        }
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    // No SQLITE_OPEN_URI: a path is a path, whatever characters it holds.
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .with_context(|| {
            format!(
                "{} is not a usable SQLite database (wrong file, or corrupt): \
                 check DATABASE_URL, or restore a backup",
                path.display()
            )
        })?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!(
            "{}: could not switch to WAL journal mode (got `{mode}`)",
            path.display()
        );
    }
    Ok(conn)
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
    let migrations = files
        .iter()
        .map(MigrationFile::to_refinery)
        .collect::<anyhow::Result<Vec<_>>>()?;
    conn.pragma_update(None, "foreign_keys", false)
        .context("switching foreign key enforcement off for the migration")?;
    let outcome = Runner::new(&migrations)
        .set_grouped(true)
        .run(&mut Migrator {
            conn,
            files,
            before_commit,
        });
    conn.pragma_update(None, "foreign_keys", true)
        .context("switching foreign key enforcement back on")?;
    let report = outcome.map_err(|e| history::explain(e, files))?;
    Ok(report.applied_migrations().clone())
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
    read_history(
        conn,
        &format!(
            "SELECT version, name, applied_on, checksum FROM {HISTORY_TABLE} ORDER BY version"
        ),
    )
}

fn read_history(conn: &Connection, sql: &str) -> Result<Vec<Migration>, MigrateError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut history = Vec::new();
    while let Some(row) = rows.next()? {
        let version: i32 = row.get(0)?;
        let name: String = row.get(1)?;
        let applied_on: String = row.get(2)?;
        let checksum: String = row.get(3)?;
        let bad_row = |what: &str| {
            MigrateError::History(format!(
                "row for version {version} ({name}) has an invalid {what}; the table was edited \
                 by hand: restore the database from a backup"
            ))
        };
        let applied_on =
            OffsetDateTime::parse(&applied_on, &Rfc3339).map_err(|_| bad_row("applied_on"))?;
        let checksum = checksum.parse::<u64>().map_err(|_| bad_row("checksum"))?;
        history.push(Migration::applied(version, name, applied_on, checksum));
    }
    Ok(history)
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

/// The connection as refinery sees it: its transaction checks foreign keys
/// before committing, and its history reads fail cleanly instead of panicking
/// on a hand-edited row (refinery's own rusqlite driver unwraps them).
struct Migrator<'a> {
    conn: &'a mut Connection,
    /// To name the file whose SQL failed: refinery passes it verbatim.
    files: &'a [MigrationFile],
    before_commit: &'a mut dyn FnMut(&Connection) -> Result<(), String>,
}

#[derive(Debug)]
pub enum MigrateError {
    Sqlite(rusqlite::Error),
    InMigration(String, rusqlite::Error),
    ForeignKeys(Vec<String>),
    BeforeCommit(String),
    History(String),
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Sqlite(e) => write!(f, "{e}"),
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

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

impl Transaction for Migrator<'_> {
    type Error = MigrateError;

    fn execute<'a, T: Iterator<Item = &'a str>>(
        &mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let tx = self.conn.transaction()?;
        let mut count = 0;
        let mut has_migrations = false;
        for query in queries {
            let file = self.files.iter().find(|f| f.sql == query);
            has_migrations |= file.is_some();
            tx.execute_batch(query).map_err(|e| match file {
                Some(file) => MigrateError::InMigration(file.path.display().to_string(), e),
                None => MigrateError::Sqlite(e),
            })?;
            count += 1;
        }
        let violations = foreign_key_violations(&tx)?;
        if !violations.is_empty() {
            return Err(MigrateError::ForeignKeys(violations));
        }
        // refinery also calls this to create its history table: only the
        // migrations' own transaction passes the gate.
        if has_migrations {
            (self.before_commit)(&tx).map_err(MigrateError::BeforeCommit)?;
        }
        tx.commit()?;
        Ok(count)
    }
}

impl Query<Vec<Migration>> for Migrator<'_> {
    fn query(&mut self, sql: &str) -> Result<Vec<Migration>, Self::Error> {
        read_history(self.conn, sql)
    }
}

impl Migrate for Migrator<'_> {}
