//! The window on Postgres: the server's advisory lock is the hold (held by
//! this run's session, so runs on several hosts serialize), "no other
//! sessions" proves the service let go, the restore point is a server-side
//! copy of the database (`restore_point.rs`), dumped to the backup
//! file once the service is back — or, when the user may not copy the
//! database, `pg_dump --format=custom` inside the window as before — and the
//! migration runs in one transaction with `lock_timeout` and
//! `statement_timeout` set, so a blocked table lock fails fast and rolls back.

use crate::program::OPS;
use std::time::Duration;

use anyhow::{Context, bail};
use postgres::Client;
use refinery_core::Migration;
use secrets_contract::dburl::PgUrl;

use crate::{
    engine::{
        backups::Backup,
        roles::{Access, Adoption, Backups, Options, Plan, Runner, Undone, Verified},
        steps::{Steps, Timed, timed},
    },
    failpoint,
    history::{self, no_transaction::is_no_transaction},
    pg::{
        self, backups as pg_backups, indexes as pg_indexes, restore_point as pg_restore_point,
        scratch as pg_scratch,
    },
    schema::model::Shape,
};

use super::server::{
    create_database, current_schema, reconnect, restore_point_how, save_leftovers,
    wait_for_sessions_to_leave,
};

pub struct PgWindow {
    url: PgUrl,
    client: Client,
    /// Why no restore point can be made (None: it can), from the preflight.
    no_restore_point: Option<String>,
    /// The restore point this run made and has not saved yet.
    copy: Option<String>,
    options: Options,
}

impl PgWindow {
    /// Connects; with `create`, creates the database first if it does not exist.
    pub fn connect(
        url: &PgUrl,
        create: bool,
        purpose: &str,
        options: Options,
    ) -> anyhow::Result<PgWindow> {
        if create {
            create_database(url)?;
        }
        Ok(PgWindow {
            url: url.clone(),
            client: pg::connect(url, purpose)?,
            no_restore_point: Some("not checked".into()),
            copy: None,
            options,
        })
    }

    /// Step 4: the restore point, or (when it cannot be made) the dump.
    fn back_up(&mut self) -> anyhow::Result<Verified> {
        let dest = self.options.new_backup_path()?;
        let reason = match self.no_restore_point.clone() {
            None => match self.make_restore_point() {
                Ok(name) => {
                    return Ok(Verified {
                        backup: Backup {
                            path: dest,
                            bytes: pg_backups::database_bytes(&mut self.client)?,
                        },
                        how: restore_point_how(&name),
                    });
                }
                Err(e) if self.copy.is_some() => return Err(e),
                Err(e) => format!("{e:#}"),
            },
            Some(reason) => reason,
        };
        println!("      no restore point ({reason}): pg_dump inside the window instead");
        Ok(Verified {
            backup: pg_backups::dump(&self.url, &dest)?,
            how: "pg_dump custom format, contents listed back".into(),
        })
    }

    /// The schema version, read on this run's own database (after a restore
    /// point, the session is a new one: it must be on the right database).
    fn version_now(&mut self) -> anyhow::Result<i32> {
        let on: String = self
            .client
            .query_one("SELECT current_database()::text", &[])?
            .get(0);
        if on != self.url.database() {
            bail!(
                "this run lost its connection to {} while making its restore point",
                self.url
            );
        }
        pg::applied_history(&mut self.client).map(|h| h.last().map_or(0, Migration::version))
    }

    /// Step 4 with a restore point: the copy needs the database to itself,
    /// so this run's session leaves it (and with it the advisory lock, taken
    /// back right after; the lock file still holds off runs on this host).
    fn make_restore_point(&mut self) -> anyhow::Result<String> {
        let name = pg_restore_point::new_name(self.url.database());
        let admin = pg::connect(&self.url.with_database("postgres"), "migrate")?;
        drop(std::mem::replace(&mut self.client, admin));
        let created = pg_restore_point::create(&mut self.client, self.url.database(), &name);
        if created.is_ok() {
            self.copy = Some(name.clone());
        }
        self.client = reconnect(&self.url)?;
        let relocked: bool = self
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1)",
                &[&pg::MIGRATION_LOCK_KEY],
            )?
            .get(0);
        if !relocked {
            bail!(
                "another run took the migration lock while this one made its restore point ({}): \
                 let it finish, then run again",
                pg::lock_holder(&mut self.client)
                    .unwrap_or_else(|e| format!("holder unknown: {e}"))
            );
        }
        created?;
        failpoint::hit("after-restore-point")?;
        Ok(name)
    }

    /// After a rolled-back window: the restore point is not needed.
    fn drop_unneeded_copy(&mut self) -> String {
        let Some(copy) = self.copy.take() else {
            return String::new();
        };
        match pg_restore_point::drop_copy(&mut self.client, &copy) {
            Ok(()) => format!("; its restore point {copy} was dropped"),
            Err(e) => format!(
                "; its restore point {copy} is left on the server ({e:#}); the next run saves and drops it"
            ),
        }
    }

    /// Where the state from before the window is, after a committed one.
    fn backup_from_before(&mut self, path: &std::path::Path) -> String {
        match self.save_copy(path) {
            None | Some(Ok(_)) => {
                format!("; its backup from before the window is {}", path.display())
            }
            Some(Err(e)) => format!(
                "; its restore point from before the window is the database {} on the server ({e:#})",
                self.copy.as_deref().unwrap_or("?")
            ),
        }
    }

    /// Saves this run's restore point to `dest` and drops it.
    fn save_copy(&mut self, dest: &std::path::Path) -> Option<anyhow::Result<Backup>> {
        let copy = self.copy.take()?;
        let saved = pg_restore_point::save(&mut self.client, &self.url, &copy, dest);
        if saved.is_err() {
            self.copy = Some(copy);
        }
        Some(saved)
    }

    /// Step 5 on Postgres.
    fn apply(&mut self, plan: &Plan) -> anyhow::Result<((), String)> {
        let timeouts = self.options.pg_timeouts;
        let applied = pg::apply_pending(&mut self.client, &plan.files, timeouts, &mut || {
            failpoint::hit("mid-migration").map_err(|e| e.to_string())
        })?;
        failpoint::hit("after-migration")?;
        Ok((
            (),
            format!(
                "{} applied {} (lock_timeout {} s, statement_timeout {} s)",
                applied.len(),
                grouping(&plan.pending),
                timeouts.lock.as_secs(),
                timeouts.statement.as_secs()
            ),
        ))
    }
}

impl Access for PgWindow {
    fn prepare_lock(&mut self, _: bool) -> anyhow::Result<()> {
        crate::engine::backups::ensure_dir(&self.options.backup_dir)
    }

    fn hold_server(&mut self) -> anyhow::Result<Option<String>> {
        pg::lock(
            &mut self.client,
            self.options.lock_timeout,
            "MIGRATE_LOCK_TIMEOUT_SECS",
        )?;
        let mut held = format!("advisory lock {:#x}", pg::MIGRATION_LOCK_KEY);
        for line in save_leftovers(&mut self.client, &self.url, &self.options)? {
            eprintln!("recovered: {line}");
            held.push_str(&format!("; {line}"));
        }
        Ok(Some(held))
    }

    fn applied_history(&mut self, _: bool) -> anyhow::Result<Vec<Migration>> {
        pg::applied_history(&mut self.client).context("reading the migration history")
    }

    fn database_bytes(&mut self) -> anyhow::Result<u64> {
        pg_backups::database_bytes(&mut self.client)
    }

    fn count_live(&mut self, sql: &str) -> anyhow::Result<i64> {
        let mut reading = self.client.build_transaction().read_only(true).start()?;
        pg::count_one(&mut reading, sql).map_err(anyhow::Error::msg)
    }

    fn leftovers(&mut self) -> anyhow::Result<Vec<String>> {
        let invalid = pg_indexes::invalid_indexes(&mut self.client)?;
        Ok(invalid
            .iter()
            .map(pg_indexes::InvalidIndex::describe)
            .collect())
    }
}

impl Runner for PgWindow {
    /// A pending migration that would rebuild an INVALID index is refused
    /// before the service goes down; other invalid indexes are named. Then
    /// the tools, and whether a server-side restore point can be made.
    fn check_before_downtime(&mut self, plan: &mut Plan) -> anyhow::Result<String> {
        let warnings = pg_indexes::refuse_rebuilding_invalid(&mut self.client, &plan.pending)?;
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
        let tools = pg_backups::check_tools(&mut self.client)?;
        let (mut refusal, bytes) = pg_restore_point::refusal(&mut self.client)?;
        if std::env::var("MIGRATE_PG_RESTORE_POINT").is_ok_and(|v| v == "off") {
            refusal = Some("MIGRATE_PG_RESTORE_POINT=off".into());
        }
        let restore_point = match &refusal {
            None => format!(
                "restore point: a server-side copy (needs {} free on the server)",
                crate::engine::backups::human_size(bytes)
            ),
            Some(reason) => {
                format!("restore point: not possible ({reason}): pg_dump inside the window instead")
            }
        };
        self.no_restore_point = refusal;
        Ok(format!("{tools}; {restore_point}"))
    }

    fn prove_quiet(&mut self) -> anyhow::Result<&'static str> {
        wait_for_sessions_to_leave(&mut self.client, self.options.lock_timeout)?;
        Ok("no other sessions on the database")
    }

    fn back_up_and_migrate(&mut self, plan: &Plan) -> (Timed<Verified>, Timed<((), String)>) {
        let (dumped, dump_time) = timed(|| self.back_up());
        let backup = match dumped {
            Ok(backup) => backup,
            Err(error) => {
                let not_started = anyhow::anyhow!("not started: the backup failed");
                return ((Err(error), dump_time), (Err(not_started), Duration::ZERO));
            }
        };
        let migrated = timed(|| self.apply(plan));
        ((Ok(backup), dump_time), migrated)
    }

    /// The migration's transaction rolls back on any failure before its
    /// commit; only a failure after the commit leaves the new schema, and
    /// then the message says so instead of claiming nothing changed.
    /// A restore point made for a window that failed is dropped when the
    /// database was not changed, and saved to the backup file when the
    /// migration had committed (the service is still down: no writes are
    /// lost by either).
    fn undo(&mut self, _: &Steps, plan: &Plan, backup: Option<&Backup>) -> Undone {
        let now = self.version_now();
        match now {
            Ok(version) if version == plan.current => Undone::fine(format!(
                "the database was not changed (its transaction rolled back){}",
                self.drop_unneeded_copy()
            )),
            Ok(version) => Undone::fine(format!(
                "the migration had committed: the database is at schema version {version}{}",
                backup.map_or(String::new(), |b| self.backup_from_before(&b.path))
            )),
            Err(e) => Undone::hold_the_service(format!(
                "the database's schema version could not be read ({e:#}): check it with `{OPS} migrate \
                 status` before starting the service{}",
                self.copy.as_ref().map_or(String::new(), |c| format!(
                    "; the restore point {c} is kept on the server"
                ))
            )),
        }
    }

    fn finish_backup(&mut self, backup: &Backup) -> Option<anyhow::Result<String>> {
        let copy = self.copy.clone()?;
        Some(self.save_copy(&backup.path)?.map(|saved| {
            format!(
                "restore point {copy} dumped to {} ({}, contents listed back) and dropped",
                saved.path.display(),
                crate::engine::backups::human_size(saved.bytes)
            )
        }))
    }

    fn migrate_step(&self) -> &'static str {
        "migrate"
    }

    fn describe_lock(&self) -> String {
        format!("advisory lock {:#x} on the server", pg::MIGRATION_LOCK_KEY)
    }

    fn describe_backup(&self) -> &'static str {
        "with pg_dump --format=custom "
    }

    fn describe_apply(&self, plan: &Plan) -> Vec<String> {
        vec![format!(
            "{} {} (lock_timeout {} s, statement_timeout {} s)",
            history::stems(&plan.pending),
            grouping(&plan.pending),
            self.options.pg_timeouts.lock.as_secs(),
            self.options.pg_timeouts.statement.as_secs()
        )]
    }
}

impl Backups for PgWindow {
    fn back_up_online(&mut self, dest: &std::path::Path) -> anyhow::Result<Verified> {
        pg_backups::check_tools(&mut self.client)?;
        Ok(Verified {
            backup: pg_backups::dump(&self.url, dest)?,
            how: "pg_dump custom format, contents listed back".into(),
        })
    }

    fn verify_backup(&self, backup: &std::path::Path) -> anyhow::Result<()> {
        pg_backups::verify(backup).map(drop)
    }

    fn hold_for_restore(&mut self) -> anyhow::Result<()> {
        let sessions = pg_backups::other_sessions(&mut self.client)?;
        if !sessions.is_empty() {
            bail!(
                "refusing to restore a database in use by {}: stop the service (or set its maintenance flag) first",
                sessions.join(", ")
            );
        }
        Ok(())
    }

    fn keep_current(&mut self, dest: &std::path::Path) -> anyhow::Result<Option<Backup>> {
        Ok(Some(pg_backups::dump(&self.url, dest)?))
    }

    fn restore_from(&mut self, backup: &std::path::Path) -> anyhow::Result<&'static str> {
        pg_backups::restore(&self.url, backup)?;
        Ok("in one transaction")
    }
}

impl Adoption for PgWindow {
    fn read_for_adoption(&mut self) -> anyhow::Result<(Vec<Migration>, Shape)> {
        current_schema(&mut self.client, &self.url)?;
        let history =
            pg::applied_history(&mut self.client).map_err(|e| match pg::sql_error_code(&e) {
                // Class 42: the table is there but not in refinery's shape.
                Some(code) if code.starts_with("42") => {
                    crate::engine::unreadable_history(self.url.database(), format!("{e:#}"))
                }
                _ => e,
            })?;
        let schema = crate::pg::schema::postgres_shape(&mut self.client)
            .context("reading the live schema")?;
        Ok((history, schema))
    }

    /// In a scratch database beside this one (the user needs CREATEDB),
    /// dropped when done.
    fn schema_at_each_version(
        &mut self,
        files: &[history::MigrationFile],
    ) -> anyhow::Result<Vec<(i32, Shape)>> {
        let schema = current_schema(&mut self.client, &self.url)?;
        let scratch = pg_scratch::ScratchDatabase::create(&self.url, "adopt")?;
        failpoint::hit("adopt-scratch-created")?;
        let mut client = pg::connect(&scratch.url, "migrate adopt")?;
        // A search_path given in the URL applies there too: its schema must
        // exist for the migrations to create their tables in it.
        let exists: bool = client
            .query_one("SELECT current_schema() IS NOT NULL", &[])?
            .get(0);
        if !exists {
            client.batch_execute(&format!(
                "CREATE SCHEMA \"{}\"",
                schema.replace('"', "\"\"")
            ))?;
        }
        let mut schemas = Vec::new();
        for (k, file) in files.iter().enumerate() {
            pg::apply_pending(
                &mut client,
                &files[..=k],
                self.options.pg_timeouts,
                &mut || Ok(()),
            )?;
            schemas.push((
                file.version,
                crate::pg::schema::postgres_shape(&mut client)?,
            ));
        }
        Ok(schemas)
    }

    fn check_integrity(&mut self) -> anyhow::Result<String> {
        let invalid = pg_indexes::invalid_indexes(&mut self.client)?;
        if !invalid.is_empty() {
            let named: Vec<String> = invalid
                .iter()
                .map(pg_indexes::InvalidIndex::describe)
                .collect();
            bail!(
                "{}; recreate each before adopting the database",
                named.join("; ")
            );
        }
        Ok("no invalid indexes".into())
    }

    fn record_applied(
        &mut self,
        files: &[history::MigrationFile],
        version: i32,
        still_proven: &mut dyn FnMut(Shape) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        pg::record_applied(
            &mut self.client,
            files,
            version,
            self.options.pg_timeouts,
            &mut |client| still_proven(crate::pg::schema::postgres_shape(client)?),
        )
    }
}

/// How the window's migrations commit: together, unless some are marked
/// `-- xtask: no-transaction` (each of those runs alone).
fn grouping(pending: &[history::MigrationFile]) -> String {
    match pending.iter().filter(|f| is_no_transaction(f)).count() {
        0 => "in one transaction".to_owned(),
        n => format!("in order, {n} of them alone outside a transaction (no-transaction files)"),
    }
}
