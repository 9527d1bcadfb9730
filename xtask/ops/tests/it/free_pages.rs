//! The free pages a table rebuild leaves in a SQLite file (issue #13, item
//! 12): reported after the window from the live database, with VACUUM's time
//! measured on the rehearsal snapshot, and reclaimed inside the window only
//! with `migrate --vacuum`. Real files of a few MB, the real binary.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use rusqlite::Connection;
use support::{Site, mig, next, text, versions_to, xtask_command};

/// A rebuild of `secrets` as V3 does it (create, copy, drop, rename), adding
/// a column: the old table's pages stay in the file as free pages.
const REBUILD: &str = "CREATE TABLE secrets_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    created_at TEXT NOT NULL,
    expires_at TEXT CHECK (expires_at IS NULL OR expires_at > created_at),
    sealed_value BLOB NOT NULL,
    key_id TEXT NOT NULL,
    owner TEXT
);

INSERT INTO secrets_new (id, name, created_at, expires_at, sealed_value, key_id)
SELECT id, name, created_at, expires_at, sealed_value, key_id FROM secrets;

DROP TABLE secrets;

ALTER TABLE secrets_new RENAME TO secrets;

CREATE INDEX secrets_expires_at ON secrets (expires_at);
";

/// The site's database grown to about 4 MiB of secrets, and a migration after
/// the shipped ones rebuilding them.
fn site_with_a_rebuild() -> Site {
    let site = Site::new();
    let conn = Connection::open(&site.db).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
         INSERT INTO secrets (name, sealed_value, key_id, created_at)
         SELECT 'bulk-' || i, randomblob(1000), 'test', '2026-01-03T00:00:00Z' FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    site.add_migration(&mig(next(), "rebuild_secrets_with_owner"), REBUILD);
    site
}

/// (free bytes, database bytes), read from the database as a user would.
fn free_pages(site: &Site) -> (u64, u64) {
    let conn = Connection::open(&site.db).unwrap();
    let pragma = |name: &str| -> u64 {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
            .unwrap()
            .try_into()
            .unwrap()
    };
    let page = pragma("page_size");
    (pragma("freelist_count") * page, pragma("page_count") * page)
}

fn secrets_count(site: &Site) -> i64 {
    let conn = Connection::open(&site.db).unwrap();
    conn.query_row("SELECT count(*) FROM secrets", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_rebuild_reports_the_free_pages_read_from_the_database_and_vacuum_is_never_the_default() {
    let site = site_with_a_rebuild();
    let out = site.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    let (free, total) = free_pages(&site);
    assert!(free > 1 << 20, "the rebuild left {free} bytes free");
    let expected = format!(
        "free pages: {} MiB free ({} % of the {} MiB database) after the window (read from the database)",
        free >> 20,
        free * 100 / total,
        total >> 20
    );
    assert!(
        said.contains(&expected),
        "expected {expected:?} in:\n{said}"
    );
    let preflight = said.lines().find(|l| l.starts_with("[2/7]")).unwrap();
    assert!(
        preflight.contains("VACUUM of the snapshot took "),
        "{preflight}"
    );
    assert!(
        said.contains("cargo xtask migrate --vacuum") && said.contains("free on disk"),
        "{said}"
    );
    assert_eq!(secrets_count(&site), 4002);
    assert_eq!(site.versions(), versions_to(next()));
}

#[test]
fn vacuum_reclaims_the_free_pages_inside_the_window() {
    let site = site_with_a_rebuild();
    let before = std::fs::metadata(&site.db).unwrap().len();
    let plan = site.xtask(&["migrate", "--dry-run", "--vacuum"], &[]);
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(
        text(&plan).contains("  vacuum    the database, after the migration"),
        "{}",
        text(&plan)
    );
    let out = site.xtask(&["migrate", "--vacuum"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    let step5 = said.lines().find(|l| l.starts_with("[5/7]")).unwrap();
    assert!(
        step5.contains("; VACUUM ") && step5.contains(" s: "),
        "{step5}"
    );
    assert!(!said.contains("free pages:"), "{said}");
    assert_eq!(free_pages(&site).0, 0, "{said}");
    let after = std::fs::metadata(&site.db).unwrap().len();
    assert!(after < before, "the file shrank: {before} -> {after}");
    assert_eq!(secrets_count(&site), 4002);
    assert_eq!(site.versions(), versions_to(next()));
    assert!(site.journal().contains("VACUUM"), "{}", site.journal());
}

#[test]
fn vacuum_is_refused_on_postgres_before_anything_is_touched() {
    let out = xtask_command()
        .args([
            "migrate",
            "--vacuum",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--vacuum is for SQLite") && !text(&out).contains("connect"),
        "{}",
        text(&out)
    );
}
