//! The window on Postgres: the server's advisory lock is the hold (held by
//! this run's session, so runs on several hosts serialize), "no other
//! sessions" proves the service let go, the backup is `pg_dump
//! --format=custom` taken before the migration, and the migration runs in
//! one transaction with `lock_timeout` and `statement_timeout` set, so a
//! blocked table lock fails fast and rolls back.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backend::dburl::PgUrl;
use postgres::Client;
use refinery_core::Migration;

use super::{
    engine::{Engine, Plan, Undone, Verified},
    settings::Settings,
    steps::{Steps, Timed, timed},
};
use crate::{
    engine::{backups::Backup, pg, pg_backups, pg_scratch},
    failpoint, history,
    schema::model::Shape,
};

pub struct PgWindow {
    url: PgUrl,
    client: Client,
}

impl PgWindow {
    /// Connects; with `create`, creates the database first if it does not exist.
    pub fn connect(url: &PgUrl, create: bool, purpose: &str) -> anyhow::Result<PgWindow> {
        if create {
            create_database(url)?;
        }
        Ok(PgWindow {
            url: url.clone(),
            client: pg::connect(url, purpose)?,
        })
    }

    /// Step 5 on Postgres.
    fn apply(&mut self, settings: &Settings, plan: &Plan) -> anyhow::Result<((), String)> {
        let timeouts = settings.pg_timeouts;
        let applied = pg::apply_pending(&mut self.client, &plan.files, timeouts, &mut || {
            failpoint::hit("mid-migration").map_err(|e| e.to_string())
        })?;
        failpoint::hit("after-migration")?;
        Ok((
            (),
            format!(
                "{} applied in one transaction (lock_timeout {} s, statement_timeout {} s)",
                applied.len(),
                timeouts.lock.as_secs(),
                timeouts.statement.as_secs()
            ),
        ))
    }
}

impl Engine for PgWindow {
    fn prepare_lock(&mut self, settings: &Settings, _: bool) -> anyhow::Result<()> {
        crate::engine::backups::ensure_dir(&settings.backup_dir)
    }

    fn hold_server(&mut self, settings: &Settings) -> anyhow::Result<Option<String>> {
        pg::lock(
            &mut self.client,
            settings.lock_timeout,
            "MIGRATE_LOCK_TIMEOUT_SECS",
        )?;
        Ok(Some(format!("advisory lock {:#x}", pg::MIGRATION_LOCK_KEY)))
    }

    fn applied_history(&mut self, _: bool) -> anyhow::Result<Vec<Migration>> {
        pg::applied_history(&mut self.client).context("reading the migration history")
    }

    fn database_bytes(&mut self) -> anyhow::Result<u64> {
        pg_backups::database_bytes(&mut self.client)
    }

    fn check_before_downtime(&mut self, _: &mut Plan) -> anyhow::Result<String> {
        pg_backups::check_tools(&mut self.client)
    }

    fn back_up_online(&mut self, dest: &std::path::Path) -> anyhow::Result<Verified> {
        pg_backups::check_tools(&mut self.client)?;
        Ok(Verified {
            backup: pg_backups::dump(&self.url, dest)?,
            how: "pg_dump custom format, contents listed back",
        })
    }

    fn prove_quiet(&mut self, settings: &Settings) -> anyhow::Result<&'static str> {
        wait_for_sessions_to_leave(&mut self.client, settings.lock_timeout)?;
        Ok("no other sessions on the database")
    }

    fn back_up_and_migrate(
        &mut self,
        settings: &Settings,
        plan: &Plan,
    ) -> (Timed<Verified>, Timed<((), String)>) {
        let (dumped, dump_time) =
            timed(|| pg_backups::dump(&self.url, &settings.new_backup_path()));
        let backup = match dumped {
            Ok(backup) => backup,
            Err(error) => {
                let not_started = anyhow::anyhow!("not started: the backup failed");
                return ((Err(error), dump_time), (Err(not_started), Duration::ZERO));
            }
        };
        let migrated = timed(|| self.apply(settings, plan));
        let verified = Verified {
            backup,
            how: "pg_dump custom format, contents listed back",
        };
        ((Ok(verified), dump_time), migrated)
    }

    /// The migration's transaction rolls back on any failure before its
    /// commit; only a failure after the commit leaves the new schema, and
    /// then the message says so instead of claiming nothing changed.
    fn undo(&mut self, _: &Steps, plan: &Plan, backup: Option<&Backup>) -> Undone {
        let now =
            pg::applied_history(&mut self.client).map(|h| h.last().map_or(0, Migration::version));
        match now {
            Ok(version) if version == plan.current => {
                Undone::fine("the database was not changed (its transaction rolled back)")
            }
            Ok(version) => Undone::fine(format!(
                "the migration had committed: the database is at schema version {version}{}",
                backup.map_or(String::new(), |b| format!(
                    "; its backup from before the window is {}",
                    b.path.display()
                ))
            )),
            Err(e) => Undone::hold_the_service(format!(
                "the database's schema version could not be read ({e:#}): check it with `cargo xtask migrate \
                 status` before starting the service"
            )),
        }
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
        let schema = crate::schema::pg_model::postgres_shape(&mut self.client)
            .context("reading the live schema")?;
        Ok((history, schema))
    }

    /// In a scratch database beside this one (the user needs CREATEDB),
    /// dropped when done.
    fn schema_at_each_version(
        &mut self,
        settings: &Settings,
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
            pg::apply_pending(&mut client, &files[..=k], settings.pg_timeouts, &mut || {
                Ok(())
            })?;
            schemas.push((
                file.version,
                crate::schema::pg_model::postgres_shape(&mut client)?,
            ));
        }
        Ok(schemas)
    }

    fn check_integrity(&mut self) -> anyhow::Result<String> {
        let invalid = pg::invalid_indexes(&mut self.client)?;
        if !invalid.is_empty() {
            bail!(
                "invalid indexes (left by a failed CREATE INDEX CONCURRENTLY): {}; drop and recreate them \
                 before adopting the database",
                invalid.join(", ")
            );
        }
        Ok("no invalid indexes".into())
    }

    fn record_applied(
        &mut self,
        settings: &Settings,
        files: &[history::MigrationFile],
        version: i32,
        still_proven: &mut dyn FnMut(Shape) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        pg::record_applied(
            &mut self.client,
            files,
            version,
            settings.pg_timeouts,
            &mut |client| still_proven(crate::schema::pg_model::postgres_shape(client)?),
        )
    }

    fn migrate_step(&self) -> &'static str {
        "migrate"
    }

    fn describe_lock(&self, _: &Settings) -> String {
        format!("advisory lock {:#x} on the server", pg::MIGRATION_LOCK_KEY)
    }

    fn describe_backup(&self) -> &'static str {
        "with pg_dump --format=custom "
    }

    fn describe_apply(&self, settings: &Settings, plan: &Plan) -> Vec<String> {
        vec![format!(
            "{} in one transaction (lock_timeout {} s, statement_timeout {} s)",
            history::stems(&plan.pending),
            settings.pg_timeouts.lock.as_secs(),
            settings.pg_timeouts.statement.as_secs()
        )]
    }
}

/// The schema unqualified names resolve to; an error naming the fix when
/// the `search_path` names no schema that exists.
fn current_schema(client: &mut Client, url: &PgUrl) -> anyhow::Result<String> {
    let row = client.query_one(
        "SELECT current_schema(), current_setting('search_path')",
        &[],
    )?;
    let search_path: String = row.get(1);
    row.get::<_, Option<String>>(0).with_context(|| {
        format!(
            "{}: its search_path ({search_path}) names no schema that exists, so the migrations' tables would be \
             created nowhere: set search_path (in the URL's options, or ALTER DATABASE … SET search_path) to the \
             schema that holds the tables",
            url.database()
        )
    })
}

/// `--create` on Postgres: the database itself, if it does not exist yet.
fn create_database(url: &PgUrl) -> anyhow::Result<()> {
    let mut admin = pg::connect(&url.with_database("postgres"), "migrate --create")?;
    let exists: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&url.database()],
        )?
        .get(0);
    if !exists {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{}\"",
                url.database().replace('"', "\"\"")
            ))
            .with_context(|| {
                format!(
                    "creating the database {} (the user needs CREATEDB)",
                    url.database()
                )
            })?;
        println!("created database {}", url.database());
    }
    Ok(())
}

/// The service closes its connections in maintenance; wait until they are gone.
fn wait_for_sessions_to_leave(client: &mut Client, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let sessions = pg_backups::other_sessions(client)?;
        if sessions.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            bail!(
                "the database is still in use after {} s by {}: the service (or another client) keeps a \
                 connection — stop it, or raise MIGRATE_LOCK_TIMEOUT_SECS",
                timeout.as_secs(),
                sessions.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
