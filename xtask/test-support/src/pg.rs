//! The test Postgres server (`TEST_POSTGRES_URL`, set by `.ci/run`) and
//! scratch databases on it.

use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::{Client, NoTls};
use refinery_core::{Runner, Target};

use crate::{Engine, migrations_for};

/// The test server's URL; None, with the test named as skipped on stderr,
/// when none is configured. With `REQUIRE_POSTGRES=1` (CI) a missing server
/// fails the test instead.
pub fn postgres_server(test: &str) -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("{test}: REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: it needs Postgres; set TEST_POSTGRES_URL=postgres://user@host/db"
            );
            None
        }
    }
}

/// `url` (a `postgres://` URL) with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let rest = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .unwrap_or_else(|| panic!("TEST_POSTGRES_URL is not a postgres:// URL: {url}"));
    let scheme = &url[..url.len() - rest.len()];
    let (base, query) = match rest.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (rest, String::new()),
    };
    let host = base.split_once('/').map_or(base, |(host, _)| host);
    format!("{scheme}{host}/{name}{query}")
}

/// A fresh, empty database of its own on the test server, dropped on drop.
/// Its name carries the prefix (`TEST_DATABASE_PREFIX`, default `test`), the
/// test binary's name and process id, so leftovers of a killed run are easy to place.
pub struct PgDatabase {
    server: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(server: &str) -> PgDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        // TEST_DATABASE_PREFIX (default `test`) keeps runs that share a
        // server (several work trees on one machine) to names of their own.
        let prefix = std::env::var("TEST_DATABASE_PREFIX")
            .ok()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or_else(|| "test".to_owned());
        let name = format!(
            "{prefix}_{}_{}_{}",
            test_binary_name(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = Client::connect(server, NoTls).unwrap();
        // One statement per call: a multi-statement string runs as one
        // transaction, where DROP/CREATE DATABASE are not allowed.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        PgDatabase {
            server: server.to_owned(),
            url: with_database(server, &name),
            name,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap()
    }

    /// Migrates with refinery's own runner to `version` (None: all), the
    /// Postgres twins in place: fixtures only, production migrations go
    /// through `cargo xtask migrate`.
    pub fn migrate(&self, version: Option<i32>) {
        let target = version.map_or(Target::Latest, Target::Version);
        Runner::new(&migrations_for(Engine::Postgres))
            .set_grouped(true)
            .set_target(target)
            .run(&mut self.client())
            .unwrap();
    }

    /// The applied versions (none before the history table exists).
    pub fn versions(&self) -> Vec<i32> {
        self.client()
            .query(
                "SELECT version FROM refinery_schema_history ORDER BY version",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default()
    }

    /// The single `bigint` a query such as `SELECT count(*) …` returns.
    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.server, NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The running test binary's name without cargo's hash (`api`, `faults`),
/// as a Postgres identifier.
fn test_binary_name() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe.file_stem().unwrap_or_default().to_string_lossy();
    let name = stem.split('-').next().unwrap_or_default();
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_keeps_server_credentials_and_options() {
        for (url, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/test",
                "postgres://postgres@127.0.0.1:5432/scratch",
            ),
            (
                "postgresql://u:p@h/db?sslmode=disable",
                "postgresql://u:p@h/scratch?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/scratch"),
        ] {
            assert_eq!(with_database(url, "scratch"), expected, "{url}");
        }
    }
}
