//! Encryption at rest seen from the operator's tools: a value stored through
//! the real backend is in neither a `cargo xtask backup` of the SQLite
//! database nor a `cargo xtask db copy` Postgres target, whose rows the
//! backend (with the same key file) still reveals.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::fs;

use serde_json::json;
use support::{pg::*, *};

const VALUE: &str = "sealed-copies-distinctive-value-7731";

/// A site whose database holds `VALUE`, stored through the real backend
/// beside the site's two sealed rows; `backend seal` finds nothing left.
fn site_with_sealed_value() -> Site {
    let site = Site::new();
    let backend = site.start_backend();
    let response = agent()
        .post(format!("{}/api/secrets", backend.base))
        .header("Authorization", site.bearer("sealed-copies"))
        .send_json(json!({ "name": "api-key", "value": VALUE }))
        .unwrap();
    assert_eq!(response.status(), 201);
    let out = std::process::Command::new(backend_binary())
        .arg("seal")
        .env("DATABASE_URL", site.url())
        .env("SECRETS_KEY_FILE", test_key_file())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    drop(backend.stop());
    site
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_backup_holds_no_stored_value() {
    let site = site_with_sealed_value();
    let out = site.xtask(&["backup"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let backups = site.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let bytes = fs::read(&backups[0]).unwrap();
    assert!(!contains(&bytes, VALUE), "the backup holds the value");
    assert!(!contains(&fs::read(&site.db).unwrap(), VALUE));
    // The backup is a real copy of the data: it holds the sealed rows.
    let conn = rusqlite::Connection::open(&backups[0]).unwrap();
    let sealed: i64 = conn
        .query_row(
            "SELECT count(*) FROM secrets WHERE sealed_value IS NOT NULL AND key_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sealed, 3);
}

#[test]
fn a_db_copy_target_holds_no_stored_value_and_still_reveals() {
    let server = server!("a_db_copy_target_holds_no_stored_value_and_still_reveals");
    let source = site_with_sealed_value();
    let target = PgSite::empty(&server);
    target.migrate_fully();
    let out = target.copy_from(&source);
    assert!(out.status.success(), "{}", text(&out));
    let holding = target.db.count(&format!(
        "SELECT count(*) FROM secrets WHERE position(convert_to('{VALUE}', 'UTF8') IN sealed_value) > 0"
    ));
    assert_eq!(holding, 0, "the copy holds the value");
    assert_eq!(
        target
            .db
            .count("SELECT count(*) FROM secrets WHERE sealed_value IS NOT NULL"),
        3
    );
    let backend = target.start_backend();
    let mut response = agent()
        .get(format!("{}/api/secrets/api-key", backend.base))
        .header("Authorization", target.bearer("reader"))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.body_mut().read_to_string().unwrap();
    assert!(body.contains(VALUE), "{body}");
}
