//! 50 trials of two `cargo xtask migrate` runs started together against one
//! database: exactly one migrates, the other exits non-zero at once naming
//! the holder, and the database ends fully migrated with one intact backup.
//! (The same for `release` is in release.rs, beside its repository fixture.)

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::process::Stdio;

use rusqlite::Connection;
use support::*;

/// Slow enough (a 200 000-row table) that two runs started together overlap.
const SLOW_NEXT: &str = "CREATE TABLE filler AS\nWITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)\nSELECT x FROM c;\n";

#[test]
fn two_migrations_started_together_serialize_50_times() {
    for trial in 0..50 {
        let site = Site::new();
        site.add_migration(&mig(next(), "filler"), SLOW_NEXT);
        let spawn = || {
            site.command(&["migrate"], &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (first, second) = (spawn(), spawn());
        let outputs = [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ];
        let winners = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            winners,
            1,
            "trial {trial}: {}\n---\n{}",
            text(&outputs[0]),
            text(&outputs[1])
        );
        let loser = outputs.iter().find(|o| !o.status.success()).unwrap();
        let message = text(loser);
        assert!(
            message.contains("another run holds the lock")
                && message.contains("cargo xtask migrate by pid"),
            "trial {trial}: {message}"
        );
        assert_eq!(site.versions(), versions_to(next()), "trial {trial}");
        let backups = site.backups();
        assert_eq!(backups.len(), 1, "trial {trial}: {backups:?}");
        let ok: String = Connection::open(&backups[0])
            .unwrap()
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "trial {trial}");
    }
}
