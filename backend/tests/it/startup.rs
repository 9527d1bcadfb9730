//! The real `backend` binary as a process: what it refuses at start-up, and
//! what it serves anyway.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::common;

use std::{path::Path, process::Command};

use common::{
    Backend, agent, backend_binary, backend_command, create_token, migrated_db, sqlite_url as url,
};
use rusqlite::Connection;
use tempfile::TempDir;

fn backend(database_url: &str, dir: &Path) -> Command {
    let mut cmd = backend_command(backend_binary(), database_url, "127.0.0.1:0");
    cmd.env("SECRETS_FRONTEND_DIR", dir.join("no-ui"));
    cmd
}

/// Runs a start that must fail; returns its stderr.
fn refused(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "the backend started but should have refused"
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn refuses_a_database_behind_its_build_and_names_the_command() {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), Some(2));
    let stderr = refused(backend(&url(&db), dir.path()));
    assert!(stderr.contains("schema version 2"), "{stderr}");
    assert!(stderr.contains("cargo xtask migrate"), "{stderr}");
}

#[test]
fn refuses_a_missing_database_without_creating_it() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("missing.db");
    let stderr = refused(backend(&url(&db), dir.path()));
    assert!(
        stderr.contains("does not exist") && stderr.contains("--create"),
        "{stderr}"
    );
    assert!(!db.exists(), "the backend must never create the database");
}

#[test]
fn refuses_a_malformed_url_naming_the_accepted_forms() {
    let dir = TempDir::new().unwrap();
    for bad in [
        "mysql://x/y",
        "postgres://x",
        "sqlite://relative.db",
        "not a url",
    ] {
        let stderr = refused(backend(bad, dir.path()));
        assert!(
            stderr.contains("sqlite:////absolute/path")
                && stderr.contains("postgres://host:5432/dbname"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn an_unreachable_postgres_is_refused_without_showing_the_password() {
    let dir = TempDir::new().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let stderr = refused(backend(
        "postgres://app:hunter2@127.0.0.1:1/secrets",
        dir.path(),
    ));
    assert!(
        stderr.contains("connecting to postgres://app:***@127.0.0.1:1/secrets"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn refuses_a_file_that_is_not_sqlite() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("notes.db");
    std::fs::write(
        &db,
        "these are not the pages you are looking for\n".repeat(200),
    )
    .unwrap();
    let before = std::fs::read(&db).unwrap();
    let stderr = refused(backend(&url(&db), dir.path()));
    assert!(stderr.contains("not a usable SQLite database"), "{stderr}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the file must be left as it was"
    );
}

#[test]
fn serves_a_database_ahead_of_its_build_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), None);
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (999, 'from_a_newer_release', '2030-01-01T00:00:00Z', '1')",
            [],
        )
        .unwrap();
    let running = Backend::start(backend(&url(&db), dir.path()));
    assert!(
        running.log().contains("newer than this build"),
        "{}",
        running.log()
    );
    let mut health = agent()
        .get(format!("{}/health", running.base))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.body_mut().read_json().unwrap();
    assert_eq!(body["schema_version"], 999);
}

#[test]
fn starts_in_maintenance_without_touching_the_database() {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), None);
    let flag = backend::maintenance::default_flag_path(&db);
    std::fs::write(&flag, "").unwrap();
    let running = Backend::start(backend(&url(&db), dir.path()));
    let agent = agent();
    let health = agent
        .get(format!("{}/health", running.base))
        .call()
        .unwrap();
    assert_eq!(health.status(), 503);
    assert_eq!(health.headers()["retry-after"], "5");
    std::fs::remove_file(&flag).unwrap();
    let health = agent
        .get(format!("{}/health", running.base))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[test]
fn the_log_never_contains_a_secret_value() {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), None);
    let bearer = format!("Bearer {}", create_token(&url(&db), "log"));
    let mut cmd = backend(&url(&db), dir.path());
    cmd.env("RUST_LOG", "debug");
    let running = Backend::start(cmd);
    let base = running.base.clone();
    let agent = agent();
    let post = |body: &str| {
        agent
            .post(format!("{base}/api/secrets"))
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(r#"{"name": "k", "value": "TOPSECRET-stored"}"#), 201);
    assert_eq!(
        post(r#"{"name": "k", "value": "TOPSECRET-duplicate"}"#),
        409
    );
    assert_eq!(
        post(r#"{"name": "k2", "value": "TOPSECRET-malformed""#),
        400
    );
    assert_eq!(
        post(r#"{"name": "k3", "value": 1, "ttl_seconds": "TOPSECRET-typed"}"#),
        400
    );
    assert_eq!(
        post(r#"{"name": "bad name", "value": "TOPSECRET-badname"}"#),
        400
    );
    assert_eq!(
        agent
            .get(format!("{base}/api/secrets/k"))
            .header("authorization", &bearer)
            .call()
            .unwrap()
            .status(),
        200
    );
    let log = running.stop();
    assert!(log.contains("listening on"), "the log was captured");
    assert!(
        !log.contains("TOPSECRET"),
        "a secret value reached the log:\n{log}"
    );
}

#[test]
fn refuses_a_sweep_interval_that_is_not_a_number_of_seconds() {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), None);
    for bad in ["soon", "0", "-1", "100000"] {
        let mut cmd = backend(&url(&db), dir.path());
        cmd.env("SECRETS_SWEEP_INTERVAL_SECS", bad);
        let stderr = refused(cmd);
        assert!(
            stderr.contains("SECRETS_SWEEP_INTERVAL_SECS") && stderr.contains(bad),
            "{bad}: {stderr}"
        );
    }
}
