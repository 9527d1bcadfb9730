//! The backend on Postgres as a real process with a pool of connections: a
//! lock held by another session (a migration, a long job) stalls only the
//! requests that need what it locks, never `/health` nor requests on other
//! rows; every session is named `secrets-backend`; the pool's size is
//! validated at start-up.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::common;

use std::{
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use common::{
    Backend, PgDatabase, agent, backend_binary, backend_command, create_token, postgres_server,
};
use serde_json::json;
use tempfile::TempDir;

/// How long the other session holds its lock: today's single connection
/// stalled everything for this long.
const HOLD: Duration = Duration::from_secs(5);
/// What `/health` and an unrelated request must answer within while it does.
const BOUND: Duration = Duration::from_secs(1);

/// A migrated database on the test server, the backend process serving
/// it, and `Bearer <token>` for its API.
fn serve(test: &str, pool_size: Option<&str>) -> Option<(PgDatabase, Backend, TempDir, String)> {
    let pg = PgDatabase::create(&postgres_server(test)?);
    pg.migrate(None);
    let bearer = format!("Bearer {}", create_token(&pg.url, "pool"));
    let dir = TempDir::new().unwrap();
    let mut cmd = backend_command(backend_binary(), &pg.url, "127.0.0.1:0");
    cmd.env("SECRETS_FRONTEND_DIR", dir.path().join("no-ui"))
        .env("SECRETS_MAINTENANCE_FLAG", dir.path().join("maintenance"));
    if let Some(size) = pool_size {
        cmd.env("DATABASE_POOL_SIZE", size);
    }
    let backend = Backend::start(cmd);
    Some((pg, backend, dir, bearer))
}

fn store(backend: &Backend, bearer: &str, name: &str) {
    let reply = agent()
        .post(format!("{}/api/secrets", backend.base))
        .header("authorization", bearer)
        .send_json(json!({"name": name, "value": "v"}))
        .unwrap();
    assert_eq!(reply.status(), 201, "storing {name}");
}

/// Runs `lock_sql` in a transaction of its own session, tells when the lock
/// is held, keeps it for [`HOLD`], then rolls back.
fn hold_lock(url: &str, lock_sql: &'static str) -> thread::JoinHandle<()> {
    let (held_tx, held_rx) = mpsc::channel();
    let url = url.to_owned();
    let holder = thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut tx = client.transaction().unwrap();
        tx.batch_execute(lock_sql).unwrap();
        held_tx.send(()).unwrap();
        thread::sleep(HOLD);
        tx.rollback().unwrap();
    });
    held_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    holder
}

/// Sends `method path` on a thread of its own: a request stuck behind the lock.
fn in_background(method: &'static str, url: String, bearer: &str) -> thread::JoinHandle<u16> {
    let bearer = bearer.to_owned();
    thread::spawn(move || {
        let request = match method {
            "DELETE" => agent().delete(&url).header("authorization", &bearer).call(),
            _ => agent().get(&url).header("authorization", &bearer).call(),
        };
        request.unwrap().status().as_u16()
    })
}

/// GET `url` with `bearer` as its Authorization, timed.
fn timed_get(url: &str, bearer: &str) -> (u16, serde_json::Value, Duration) {
    let start = Instant::now();
    let mut reply = agent()
        .get(url)
        .header("authorization", bearer)
        .call()
        .unwrap();
    let elapsed = start.elapsed();
    let body = reply.body_mut().read_json().unwrap_or_default();
    (reply.status().as_u16(), body, elapsed)
}

#[test]
fn health_answers_within_a_second_while_a_migration_locks_the_secrets_table() {
    let test = "health_answers_within_a_second_while_a_migration_locks_the_secrets_table";
    let Some((pg, backend, _dir, bearer)) = serve(test, None) else {
        return;
    };
    store(&backend, &bearer, "first");
    let holder = hold_lock(&pg.url, "LOCK TABLE secrets IN ACCESS EXCLUSIVE MODE");
    // A request that needs the table waits for the lock, holding a connection.
    let stuck = in_background("GET", format!("{}/api/secrets", backend.base), &bearer);
    thread::sleep(Duration::from_millis(300));
    let (status, body, elapsed) = timed_get(&backend.health_url(), &bearer);
    assert!(
        elapsed < BOUND,
        "/health took {elapsed:?} while another session locked `secrets` (limit {BOUND:?})"
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(
        body["schema_version"], body["expected_schema_version"],
        "{body}"
    );
    assert_eq!(
        stuck.join().unwrap(),
        200,
        "the waiting request is served after the lock"
    );
    holder.join().unwrap();
}

#[test]
fn a_request_on_another_row_is_not_queued_behind_a_locked_one() {
    let test = "a_request_on_another_row_is_not_queued_behind_a_locked_one";
    let Some((pg, backend, _dir, bearer)) = serve(test, None) else {
        return;
    };
    store(&backend, &bearer, "locked");
    store(&backend, &bearer, "free");
    let holder = hold_lock(
        &pg.url,
        "SELECT id FROM secrets WHERE name = 'locked' FOR UPDATE",
    );
    // Deleting the locked row waits for the other session...
    let stuck = in_background(
        "DELETE",
        format!("{}/api/secrets/locked", backend.base),
        &bearer,
    );
    thread::sleep(Duration::from_millis(300));
    // ...while reading another secret does not wait for that request.
    let (status, body, elapsed) = timed_get(&format!("{}/api/secrets/free", backend.base), &bearer);
    assert!(
        elapsed < BOUND,
        "reading another secret took {elapsed:?} while a delete waited on a row lock (limit {BOUND:?})"
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], "v", "{body}");
    assert_eq!(
        stuck.join().unwrap(),
        204,
        "the delete goes through once the lock is gone"
    );
    holder.join().unwrap();
    assert_eq!(
        pg.count("SELECT count(*) FROM secrets"),
        1,
        "only `locked` was deleted"
    );
}

#[test]
fn every_backend_session_is_named_in_pg_stat_activity() {
    let test = "every_backend_session_is_named_in_pg_stat_activity";
    let Some((pg, backend, _dir, bearer)) = serve(test, None) else {
        return;
    };
    store(&backend, &bearer, "one");
    let (status, _, _) = timed_get(&backend.health_url(), &bearer);
    assert_eq!(status, 200);
    let names: Vec<String> = pg
        .client()
        .query(
            "SELECT COALESCE(application_name, '') FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND backend_type = 'client backend'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(!names.is_empty(), "the backend keeps no session open");
    assert!(
        names.iter().all(|name| name == "secrets-backend"),
        "sessions not named secrets-backend: {names:?}"
    );
}

#[test]
fn a_session_the_server_ends_is_replaced_by_the_pool() {
    let test = "a_session_the_server_ends_is_replaced_by_the_pool";
    let Some((pg, backend, _dir, bearer)) = serve(test, Some("2")) else {
        return;
    };
    store(&backend, &bearer, "before");
    let ended = pg.count(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'secrets-backend') AS t",
    );
    assert!(ended >= 1, "the backend had no session to end");
    // Every request after that is served: dead sessions are replaced.
    for _ in 0..3 {
        let (status, body, _) = timed_get(&format!("{}/api/secrets/before", backend.base), &bearer);
        assert_eq!(status, 200, "{body}");
    }
    let (status, body, _) = timed_get(&backend.health_url(), &bearer);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_pool_size_is_validated_naming_the_variable() {
    let dir = TempDir::new().unwrap();
    let db = common::migrated_db(dir.path(), None);
    for bad in ["0", "many", "-3", "100000"] {
        let mut cmd = backend_command(backend_binary(), &common::sqlite_url(&db), "127.0.0.1:0");
        cmd.env("DATABASE_POOL_SIZE", bad)
            .env("SECRETS_FRONTEND_DIR", dir.path().join("no-ui"));
        let stderr = refused_within(cmd, Duration::from_secs(20), bad);
        assert!(stderr.contains("DATABASE_POOL_SIZE"), "{bad}: {stderr}");
        assert!(stderr.contains(&format!("`{bad}`")), "{bad}: {stderr}");
        assert!(stderr.contains("1 to 64"), "{bad}: {stderr}");
    }
}

/// Runs a start that must be refused; returns its stderr. A backend still
/// running after `limit` has started: it is killed and the test fails.
fn refused_within(mut cmd: std::process::Command, limit: Duration, bad: &str) -> String {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the backend started with DATABASE_POOL_SIZE={bad}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{bad}: exited 0: {stderr}");
    stderr
}

#[test]
fn health_says_unavailable_within_a_second_when_the_history_itself_is_locked() {
    let test = "health_says_unavailable_within_a_second_when_the_history_itself_is_locked";
    let Some((pg, backend, _dir, bearer)) = serve(test, None) else {
        return;
    };
    let holder = hold_lock(
        &pg.url,
        "LOCK TABLE refinery_schema_history IN ACCESS EXCLUSIVE MODE",
    );
    let (status, body, elapsed) = timed_get(&backend.health_url(), &bearer);
    assert!(
        elapsed < BOUND,
        "/health took {elapsed:?} with the history table locked (limit {BOUND:?})"
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert!(body["schema_version"].is_null(), "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timeout"),
        "the reason is given: {body}"
    );
    holder.join().unwrap();
    let (status, body, _) = timed_get(&backend.health_url(), &bearer);
    assert_eq!(status, 200, "healthy again once the lock is gone: {body}");
}
