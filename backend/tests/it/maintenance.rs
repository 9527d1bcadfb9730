//! Maintenance mode through the flag file, against a real server and file.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::common;

use std::time::{Duration, Instant};

use common::Server;
use rusqlite::{Connection, TransactionBehavior};
use serde_json::json;

/// Polls `f` every 20 ms until it returns true or `limit` passes.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// True once this connection can take SQLite's exclusive lock: every other
/// connection is gone or idle (tried for up to 3 s).
fn can_lock_exclusively(conn: &mut Connection) -> bool {
    eventually(Duration::from_secs(3), || {
        conn.transaction_with_behavior(TransactionBehavior::Exclusive)
            .map(|tx| tx.rollback().is_ok())
            .unwrap_or(false)
    })
}

#[test]
fn the_flag_closes_the_database_answers_503_and_recovers() {
    let server = Server::start();
    assert_eq!(
        server
            .post_json("/api/secrets", &json!({"name": "before", "value": "v"}))
            .status,
        201
    );

    std::fs::write(&server.flag, "").unwrap();
    let reply = server.get("/api/secrets");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.retry_after.as_deref(), Some("5"));
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("maintenance")
    );
    let health = server.get("/health");
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["status"], "maintenance");
    assert_eq!(
        server
            .post_json("/api/secrets", &json!({"name": "during", "value": "v"}))
            .status,
        503
    );

    // The service let go of the file: an operator tool can lock it exclusively.
    let mut conn = Connection::open(&server.db).unwrap();
    let locked = can_lock_exclusively(&mut conn);
    assert!(
        locked,
        "the service still holds the database in maintenance"
    );
    drop(conn);

    std::fs::remove_file(&server.flag).unwrap();
    assert_eq!(server.get("/health").status, 200);
    let names = server.get("/api/secrets").json()["secrets"].clone();
    assert_eq!(
        names,
        json!([{"name": "before", "created_at": names[0]["created_at"], "expires_at": null}])
    );
}

#[test]
fn the_poller_closes_the_database_without_any_request() {
    let server = Server::start();
    std::fs::write(&server.flag, "").unwrap();
    let mut conn = Connection::open(&server.db).unwrap();
    // An exclusive lock needs every other connection gone or idle; a pending
    // WAL read would also show here. No request is sent meanwhile.
    let locked = can_lock_exclusively(&mut conn);
    assert!(locked);
    std::fs::remove_file(&server.flag).unwrap();
}
