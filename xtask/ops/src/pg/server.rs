//! What the Postgres window asks of the server around the migration: the
//! database created on a first deploy, the schema names resolve to, the
//! service's sessions gone, and the restore points (this run's, and those a
//! dead run left, saved and dropped).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use postgres::Client;
use secrets_contract::dburl::PgUrl;

use crate::{
    engine::roles::Options,
    pg::{self, backups as pg_backups, restore_point as pg_restore_point},
};

/// The schema unqualified names resolve to; an error naming the fix when
/// the `search_path` names no schema that exists.
pub(super) fn current_schema(client: &mut Client, url: &PgUrl) -> anyhow::Result<String> {
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
pub(super) fn create_database(url: &PgUrl) -> anyhow::Result<()> {
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
pub(super) fn wait_for_sessions_to_leave(
    client: &mut Client,
    timeout: Duration,
) -> anyhow::Result<()> {
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

/// Step 4's "how" for a restore point.
pub(super) fn restore_point_how(name: &str) -> std::borrow::Cow<'static, str> {
    format!("restore point: server-side copy {name}, dumped to this file once the service is up")
        .into()
}

/// Restore points left by runs that died: each saved to a backup file, then
/// dropped (the caller holds the migration lock: no live run owns them).
pub(super) fn save_leftovers(
    client: &mut Client,
    url: &PgUrl,
    options: &Options,
) -> anyhow::Result<Vec<String>> {
    let mut said = Vec::new();
    for copy in pg_restore_point::leftovers(client, url.database())? {
        let dest = options.new_backup_path()?;
        said.push(match pg_restore_point::save(client, url, &copy, &dest) {
            Ok(backup) => format!(
                "restore point {copy} left by a run that died: saved to {} and dropped",
                backup.path.display()
            ),
            Err(e) => format!("restore point {copy} left by a run that died is kept: {e:#}"),
        });
    }
    Ok(said)
}

/// This run's session back on its database after the copy; a few tries, as
/// the server may still be tearing down the session that just left.
pub(super) fn reconnect(url: &PgUrl) -> anyhow::Result<Client> {
    let mut tries = 0;
    loop {
        match pg::connect(url, "migrate") {
            Ok(client) => return Ok(client),
            Err(e) if tries >= 3 => return Err(e),
            Err(_) => tries += 1,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
