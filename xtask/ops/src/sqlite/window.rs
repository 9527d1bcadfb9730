//! The window on SQLite: the lock file is the hold, an exclusive lock on
//! the file proves the service let go, and the backup is copied beside the
//! migration (see [`SqliteWindow::back_up_and_migrate`]). A failed window
//! puts the verified backup back.

use crate::program::OPS;
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use refinery_core::Migration;
use rusqlite::Connection;

use super::free_pages;
use crate::{
    engine::{
        backups::Backup,
        roles::{Access, Adoption, Backups, Options, Plan, Runner, Undone, Verified},
        steps::{Steps, Timed, timed},
    },
    failpoint, fsutil,
    history::MigrationFile,
    progress,
    schema::model::Shape,
    sqlite::schema as sqlite_model,
    sqlite::{self, backups, free_space::VacuumEstimate},
};

pub struct SqliteWindow {
    path: PathBuf,
    options: Options,
    /// From step 3 to step 5: the connection holding the file exclusively.
    exclusive: Option<Connection>,
    /// The WAL the rehearsal's migrations wrote: the real run's progress total.
    wal_estimate: u64,
    /// The free pages the rehearsal's migrations left, and how long
    /// VACUUM took on the snapshot (when they were worth reclaiming).
    rehearsed_vacuum: Option<VacuumEstimate>,
}

impl SqliteWindow {
    pub fn new(path: &Path, options: Options) -> SqliteWindow {
        SqliteWindow {
            path: path.to_path_buf(),
            options,
            exclusive: None,
            wal_estimate: 0,
            rehearsed_vacuum: None,
        }
    }

    fn open(&self) -> anyhow::Result<Connection> {
        sqlite::open(&self.path, false)
    }
}

impl Access for SqliteWindow {
    fn prepare_lock(&mut self, create: bool) -> anyhow::Result<()> {
        let folder = self.path.parent().filter(|p| !p.as_os_str().is_empty());
        if let (true, Some(folder)) = (create, folder) {
            fsutil::create_private_dirs(folder)?;
        }
        Ok(())
    }

    fn hold_server(&mut self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }

    fn exists(&self) -> bool {
        self.path.exists()
    }

    fn applied_history(&mut self, create: bool) -> anyhow::Result<Vec<Migration>> {
        if create && !self.path.exists() {
            sqlite::open(&self.path, true)?;
        }
        sqlite::applied_history_of(&self.open()?, &self.path)
    }

    fn database_bytes(&mut self) -> anyhow::Result<u64> {
        // Opening first: a missing or unreadable database is the error to
        // report. Its journal mode is left as it is: a backup changes nothing.
        sqlite::open_keeping_journal(&self.path, false)?;
        Ok(sqlite::file_bytes(&self.path))
    }

    fn count_live(&mut self, sql: &str) -> anyhow::Result<i64> {
        let conn = sqlite::open_read_only(&self.path)?;
        sqlite::count_one(&conn, sql).map_err(anyhow::Error::msg)
    }
}

impl Runner for SqliteWindow {
    fn check_before_downtime(&mut self, plan: &mut Plan) -> anyhow::Result<String> {
        if let Some(mode) = sqlite::readable_by_others(&self.path) {
            eprintln!(
                "warning: {} is readable by every user of this host (mode {mode:03o}): anyone here can read \
                 every secret; `chmod 600` it and its -wal and -shm (or 640 for the service's group)",
                self.path.display()
            );
        }
        if plan.pending.is_empty() {
            return Ok("nothing to rehearse".into());
        }
        let (timings, wal_bytes, vacuum) =
            rehearse(&self.open()?, &plan.files, &plan.pending, &self.path)?;
        plan.rehearsal = timings;
        self.wal_estimate = wal_bytes;
        self.check_room_for_wal(wal_bytes)?;
        self.rehearsed_vacuum = vacuum;
        let vacuum = self.rehearsed_vacuum.as_ref().map(VacuumEstimate::describe);
        let vacuum = vacuum.unwrap_or_default();
        Ok(format!(
            "snapshot passes integrity and foreign key checks; rehearsal {}{vacuum}",
            plan.rehearsal
                .iter()
                .map(|(m, t)| format!("{m} {:.1} ms", t.as_secs_f64() * 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    fn prove_quiet(&mut self) -> anyhow::Result<&'static str> {
        self.exclusive = Some(sqlite::lock_exclusively(
            &self.path,
            self.options.lock_timeout,
        )?);
        Ok("database locked exclusively")
    }

    /// Side by side, so the window costs about the larger of the two
    /// instead of their sum. After a checkpoint, and with automatic
    /// checkpoints off, the migration writes only the WAL and never the
    /// main file, so the main file can be copied while the migration runs.
    /// The migration's transaction commits only once `quick_check` passes
    /// and the backup is verified: a failed backup means an unchanged database.
    fn back_up_and_migrate(&mut self, plan: &Plan) -> (Timed<Verified>, Timed<((), String)>) {
        let Some(mut db) = self.exclusive.take() else {
            return not_started(anyhow::anyhow!("the database is not held exclusively"));
        };
        if let Err(error) = sqlite::freeze_main_file(&db) {
            return not_started(error);
        }
        let dest = match self.options.new_backup_path() {
            Ok(dest) => dest,
            Err(error) => return not_started(error),
        };
        let size = sqlite::file_bytes(&self.path);
        let _backup_bar = progress::watch_file("back up", &fsutil::temp_path(&dest), size);
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let _wal_bar =
            progress::watch_file("migrate (WAL written)", &wal, self.wal_estimate.max(1));
        let (backed_up, migrated) = std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let source = &self.path;
            let dest = &dest;
            s.spawn(move || {
                let _ = tx.send(timed(|| backups::copy_verified(source, dest)));
            });
            migrate_gated_on(&mut db, &plan.files, rx)
        });
        let verified = backed_up.0.map(|backup| Verified {
            backup,
            how: "verified byte for byte".into(),
        });
        ((verified, backed_up.1), migrated)
    }

    /// The migration commits only once its backup is verified, so a
    /// failure before that leaves the database as it was: nothing to
    /// restore. Only a failure after the commit (or a history that cannot
    /// be read) puts the verified backup back.
    fn undo(&mut self, steps: &Steps, plan: &Plan, backup: Option<&Backup>) -> Undone {
        self.exclusive = None;
        let version = self
            .open()
            .and_then(|c| Ok(sqlite::applied_history(&c)?))
            .map(|h| h.last().map_or(0, Migration::version));
        match (version, backup) {
            (Ok(v), _) if v == plan.current => {
                Undone::fine("the database was not changed (its transaction rolled back)")
            }
            (Ok(_), None) | (Err(_), None) => Undone::hold_the_service(
                "the database's state is unknown and no backup was taken: check it with `{OPS} migrate \
                 status` before starting the service",
            ),
            (_, Some(backup)) => self.restore_after_failure(steps, backup),
        }
    }

    fn migrate_step(&self) -> &'static str {
        "migrate (beside the backup)"
    }

    fn describe_lock(&self) -> String {
        crate::quote::path(&self.options.lock_path)
    }

    fn describe_backup(&self) -> &'static str {
        ""
    }

    fn describe_apply(&self, plan: &Plan) -> Vec<String> {
        plan.rehearsal
            .iter()
            .map(|(m, t)| format!("{m} (rehearsal {:.1} ms)", t.as_secs_f64() * 1000.0))
            .collect()
    }

    fn vacuum(&mut self) -> anyhow::Result<String> {
        free_pages::vacuum(&self.open()?)
    }

    fn free_space_advice(&self) -> Option<String> {
        free_pages::advice(&self.path, self.rehearsed_vacuum.as_ref())
    }
}

impl Backups for SqliteWindow {
    fn back_up_online(&mut self, dest: &Path) -> anyhow::Result<Verified> {
        Ok(Verified {
            backup: backups::online(&sqlite::open_keeping_journal(&self.path, false)?, dest)?,
            how: "quick_check ok".into(),
        })
    }

    fn verify_backup(&self, backup: &Path) -> anyhow::Result<()> {
        backups::check_restorable(backup)
    }

    fn hold_for_restore(&mut self) -> anyhow::Result<()> {
        let Ok(metadata) = std::fs::metadata(&self.path) else {
            return Ok(());
        };
        if !metadata.is_file() {
            bail!(
                "{} {}, not a database file: restore into a file path (the database URL names the file)",
                self.path.display(),
                crate::fsutil::what_it_is(&metadata)
            );
        }
        let db = sqlite::lock_exclusively(&self.path, self.options.lock_timeout).context(
            "refusing to restore a database in use: stop the service (or set its maintenance flag) first",
        )?;
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .context("checkpointing the database before keeping it")?;
        self.exclusive = Some(db);
        Ok(())
    }

    fn keep_current(&mut self, dest: &Path) -> anyhow::Result<Option<Backup>> {
        match self.exclusive {
            Some(_) => Ok(Some(backups::copy_verified(&self.path, dest)?)),
            None => Ok(None),
        }
    }

    fn restore_from(&mut self, backup: &Path) -> anyhow::Result<&'static str> {
        self.exclusive = None;
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let size = std::fs::metadata(backup).map_or(0, |m| m.len());
        let _bar = progress::watch_file("restore", &fsutil::temp_path(&real), size);
        backups::restore_file(backup, &self.path)?;
        Ok("verified byte for byte")
    }
}

impl Adoption for SqliteWindow {
    fn read_for_adoption(&mut self) -> anyhow::Result<(Vec<Migration>, Shape)> {
        let conn = sqlite::open_read_only(&self.path)?;
        let history = sqlite::applied_history_explained(&conn, &crate::quote::path(&self.path))?;
        Ok((history, sqlite_model::sqlite_shape(&conn)?))
    }

    fn schema_at_each_version(
        &mut self,
        files: &[MigrationFile],
    ) -> anyhow::Result<Vec<(i32, Shape)>> {
        let mut conn = Connection::open_in_memory()?;
        let mut schemas = Vec::new();
        for (k, file) in files.iter().enumerate() {
            sqlite::apply_pending(&mut conn, &files[..=k])?;
            schemas.push((file.version, sqlite_model::sqlite_shape(&conn)?));
        }
        Ok(schemas)
    }

    fn check_integrity(&mut self) -> anyhow::Result<String> {
        let conn = sqlite::open_read_only(&self.path)?;
        let mut problems = sqlite::integrity_problems(&conn, "integrity_check")?;
        problems.extend(sqlite::foreign_key_violations(&conn)?);
        if !problems.is_empty() {
            bail!(
                "{} fails its integrity checks: {}; repair it (or restore a good backup) before adopting it",
                self.path.display(),
                problems.join("; ")
            );
        }
        Ok("integrity_check ok, foreign_key_check empty".into())
    }

    fn record_applied(
        &mut self,
        files: &[MigrationFile],
        version: i32,
        still_proven: &mut dyn FnMut(Shape) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // Its journal mode kept: adopt changes the file by four rows only.
        let mut conn = sqlite::open_keeping_journal(&self.path, false)?;
        sqlite::record_applied(&mut conn, files, version, &mut |conn| {
            still_proven(sqlite_model::sqlite_shape(conn)?)
        })
    }
}

impl SqliteWindow {
    /// The migration writes its WAL beside the database: the database's own
    /// filesystem needs room for what the rehearsal wrote.
    fn check_room_for_wal(&self, wal_bytes: u64) -> anyhow::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Some((available, needed)) = crate::engine::backups::room_short(dir, wal_bytes)? {
            bail!(
                "the database's filesystem ({}) has {} MiB free, the migration will write about {} MiB of WAL \
                 beside it (measured in the rehearsal): free space there first; nothing went down",
                dir.display(),
                available / (1 << 20),
                needed / (1 << 20)
            );
        }
        Ok(())
    }

    /// The migration had committed when the window failed: the verified
    /// backup goes back.
    fn restore_after_failure(&mut self, steps: &Steps, backup: &Backup) -> Undone {
        let restored = timed(|| {
            backups::restore_file(&backup.path, &self.path)?;
            Ok(backup.path.display().to_string())
        });
        steps.record_outcome("restore backup", &restored);
        match restored.0 {
            Ok(_) => Undone::fine(format!(
                "the migration had committed; the database was restored from {} (verified byte for byte)",
                backup.path.display()
            )),
            Err(e) => Undone::hold_the_service(format!(
                "the migration had committed and RESTORING {} FAILED: {e:#} — restore it by hand \
                 (`{OPS} restore`) before starting the service",
                backup.path.display()
            )),
        }
    }
}

fn not_started(error: anyhow::Error) -> (Timed<Verified>, Timed<((), String)>) {
    let not_started = anyhow::anyhow!("not started: the backup could not begin");
    (
        (Err(error), Duration::ZERO),
        (Err(not_started), Duration::ZERO),
    )
}

/// Step 5 on SQLite: the pending migrations in one transaction, whose
/// commit waits for `quick_check` and for the backup thread's verified copy.
fn migrate_gated_on(
    db: &mut Connection,
    files: &[MigrationFile],
    backup_done: std::sync::mpsc::Receiver<Timed<Backup>>,
) -> (Timed<Backup>, Timed<((), String)>) {
    let start = Instant::now();
    let mut backup: Option<Timed<Backup>> = None;
    let applied = sqlite::apply_pending_gated(db, files, &mut |conn| {
        failpoint::hit("mid-migration").map_err(|e| e.to_string())?;
        quick_check(conn)?;
        let received = backup_done
            .recv()
            .map_err(|_| "the backup thread ended without a result".to_owned())?;
        let ok = received.0.is_ok();
        backup = Some(received);
        ok.then_some(())
            .ok_or_else(|| "the backup failed, so the migration was not committed".into())
    });
    let applied = applied.and_then(|applied| failpoint::hit("after-migration").map(|()| applied));
    let migrated = applied.map(|applied| {
        let detail = format!(
            "{} applied in one transaction; quick_check ok; committed once the backup was verified",
            applied.len()
        );
        ((), detail)
    });
    let migrate_time = start.elapsed();
    // The gate never ran when the SQL failed first: the backup's result is
    // still in the channel.
    let backup = backup.unwrap_or_else(|| {
        backup_done.recv().unwrap_or_else(|_| {
            let gone = anyhow::anyhow!("the backup thread ended without a result");
            (Err(gone), Duration::ZERO)
        })
    });
    (backup, (migrated, migrate_time))
}

fn quick_check(conn: &Connection) -> Result<(), String> {
    let problems =
        sqlite::integrity_problems(conn, "quick_check").map_err(|e| format!("quick_check: {e}"))?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "quick_check after the migration failed: {}",
            problems.join("; ")
        ))
    }
}

/// Each rehearsed migration's name and time.
type Timings = Vec<(String, Duration)>;

/// A consistent snapshot (online backup API), checked, then the pending
/// migrations applied to it one at a time through the same code as the
/// real run. The snapshot lives in a temp folder beside the database.
/// Returns the timings, the bytes of WAL the migrations wrote, and what a
/// VACUUM after them would reclaim and cost.
fn rehearse(
    conn: &Connection,
    files: &[MigrationFile],
    pending: &[MigrationFile],
    db: &Path,
) -> anyhow::Result<(Timings, u64, Option<VacuumEstimate>)> {
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let snapshot_dir = tempfile::Builder::new()
        .prefix(".xtask-rehearsal-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a rehearsal folder in {}", dir.display()))?;
    let snapshot = snapshot_dir.path().join("snapshot.db");
    // A full copy of the secrets: private like the database.
    fsutil::create_private_file(&snapshot)?;
    let _bar = progress::watch_file("rehearsal snapshot", &snapshot, sqlite::file_bytes(db));
    sqlite::snapshot(conn, &snapshot, Duration::from_secs(30))
        .context("taking a snapshot for the rehearsal")?;
    let mut copy = sqlite::open(&snapshot, false)?;
    refuse_damage(&copy)?;
    // As in the window, no checkpoint: the WAL's size then is what the
    // migration will write beside the database.
    copy.pragma_update(None, "wal_autocheckpoint", 0)
        .context("turning automatic checkpoints off on the snapshot")?;
    let mut timings = Vec::new();
    for migration in pending {
        let upto: Vec<MigrationFile> = files
            .iter()
            .filter(|f| f.version <= migration.version)
            .cloned()
            .collect();
        let start = Instant::now();
        sqlite::apply_pending(&mut copy, &upto)
            .context("the rehearsal on a snapshot failed; nothing went down")?;
        timings.push((migration.stem(), start.elapsed()));
    }
    let wal = std::fs::metadata(format!("{}-wal", snapshot.display())).map_or(0, |m| m.len());
    Ok((timings, wal, VacuumEstimate::measure(&copy)?))
}

fn refuse_damage(copy: &Connection) -> anyhow::Result<()> {
    let mut problems = sqlite::integrity_problems(copy, "integrity_check")
        .context("integrity_check on the snapshot")?;
    problems
        .extend(sqlite::foreign_key_violations(copy).context("foreign_key_check on the snapshot")?);
    if !problems.is_empty() {
        bail!(
            "the database fails its integrity or foreign key checks, before any change: {}. Restore a good backup \
             (`{OPS} restore`) and investigate; nothing went down",
            problems.join("; ")
        );
    }
    Ok(())
}
