//! Migration preconditions (`-- xtask: refuse-unless-zero:`, `hint:`,
//! `check-backfill:`) and `migrate --to N`, through the real binary on real
//! SQLite files: a count that is not zero refuses with the count and the
//! hint and changes nothing; malformed markers are refused before anything
//! is touched; `migrations check` runs the stand-in on its sample rows and
//! fails without one; `--to` applies a prefix and never goes back.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::fs;

use rusqlite::Connection;
use support::{
    Site, mig, mig_name, next,
    pg::{PgSite, server},
    shipped_latest, text, versions_to,
};

/// A contract migration after the shipped ones that may run only once
/// `count` (a condition on `secrets`) matches no row.
fn guarded(count: &str, hint: &str, stand_in: Option<&str>) -> String {
    let stand_in = stand_in.map_or_else(String::new, |sql| {
        format!("-- xtask: check-backfill: {sql}\n")
    });
    format!(
        "-- contract: a guarded change\n\
         -- xtask: refuse-unless-zero: SELECT count(*) FROM secrets WHERE {count}\n\
         -- xtask: hint: {hint}\n{stand_in}\
         CREATE INDEX secrets_guarded ON secrets (expires_at);\n"
    )
}

/// `migrations check` on the site's migrations.
fn check(site: &Site) -> std::process::Output {
    support::xtask_command()
        .args(["migrations", "check", "--migrations"])
        .arg(&site.migrations)
        .output()
        .unwrap()
}

#[test]
fn a_count_that_is_not_zero_refuses_before_anything_goes_down_and_changes_nothing() {
    let site = Site::new();
    site.add_migration(
        &mig(next(), "expiry_required"),
        &guarded("expires_at IS NULL", "give every secret an expiry", None),
    );
    let before = fs::read(&site.db).unwrap();
    let out = site.xtask(&["migrate"], &[]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "{} refuses to run: 2 row(s) still in the way",
            mig_name(next(), "expiry_required")
        )),
        "{said}"
    );
    assert!(said.contains("give every secret an expiry"), "{said}");
    assert!(said.contains("Nothing went down"), "{said}");
    assert!(!said.contains("[3/7]"), "the service was touched: {said}");
    assert_eq!(site.versions(), versions_to(shipped_latest()));
    assert_eq!(fs::read(&site.db).unwrap(), before, "the database changed");
    // Once the count is zero, the same migration runs.
    Connection::open(&site.db)
        .unwrap()
        .execute_batch("UPDATE secrets SET expires_at = '2099-01-01T00:00:00Z'")
        .unwrap();
    let out = site.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("precondition holds (0)"),
        "{}",
        text(&out)
    );
    assert_eq!(site.versions(), versions_to(next()));
}

#[test]
fn malformed_markers_are_refused_naming_the_file_before_anything_is_touched() {
    let cases = [
        (
            "-- xtask: refuse-unless-zero: SELECT 1\nSELECT 1;\n",
            "needs a `-- xtask: hint:`",
        ),
        (
            "-- xtask: hint: run it\nSELECT 1;\n",
            "belong to a `-- xtask: refuse-unless-zero:",
        ),
        (
            "-- xtask: refuse-unless-zero: DELETE FROM secrets\n-- xtask: hint: x\nSELECT 1;\n",
            "one SELECT",
        ),
        (
            "-- xtask: refuse-unless-zero: SELECT 1; DROP TABLE secrets\n-- xtask: hint: x\nSELECT 1;\n",
            "one SELECT",
        ),
        (
            "-- xtask: refuse-unless-zero: SELECT 0\n-- xtask: refuse-unless-zero: SELECT 0\n-- xtask: hint: x\nSELECT 1;\n",
            "appears 2 times",
        ),
        // Misspelled, both lines alike: read as plain comments, the guard
        // would be ignored and the migration run unguarded.
        (
            "--xtask:refuse-unless-zero:SELECT 7\n--xtask:hint:x\nSELECT 1;\n",
            "looks like an xtask marker",
        ),
        (
            "-- XTASK: REFUSE-UNLESS-ZERO: SELECT 7\n-- XTASK: HINT: x\nSELECT 1;\n",
            "looks like an xtask marker",
        ),
    ];
    for (sql, said) in cases {
        let site = Site::new();
        let name = mig(next(), "marked");
        site.add_migration(&name, sql);
        let before = fs::read(&site.db).unwrap();
        for (args, out) in [
            ("migrate", site.xtask(&["migrate"], &[])),
            ("migrations check", check(&site)),
        ] {
            let text = text(&out);
            assert!(!out.status.success(), "{args:?} accepted {sql:?}: {text}");
            assert!(
                text.contains(&name) && text.contains(said),
                "{args:?} {sql:?}: {text}"
            );
        }
        assert_eq!(
            fs::read(&site.db).unwrap(),
            before,
            "{sql:?} changed the database"
        );
    }
}

/// What is not one count is refused before anything goes down, on both
/// engines: a second row or column would otherwise be ignored.
#[test]
fn a_count_that_is_not_one_count_is_refused_before_anything_goes_down() {
    let cases = [
        ("SELECT 0 UNION ALL SELECT 5", "more than one row"),
        ("SELECT 0, 5", "2 columns"),
        ("SELECT count(*) FROM no_such_table", "no_such_table"),
        ("SELECT NULL", "not an integer"),
        ("SELECT -1", "never negative"),
    ];
    for (count, said) in cases {
        let site = Site::new();
        let sql = format!(
            "-- contract: x\n-- xtask: refuse-unless-zero: {count}\n-- xtask: hint: x\nCREATE INDEX guarded ON secrets (name);\n"
        );
        site.add_migration(&mig(next(), "guarded"), &sql);
        let before = fs::read(&site.db).unwrap();
        let out = site.xtask(&["migrate"], &[]);
        let text = text(&out);
        assert!(!out.status.success(), "{count}: {text}");
        assert!(
            text.contains(said) && text.contains("Nothing went down"),
            "{count}: {text}"
        );
        assert_eq!(fs::read(&site.db).unwrap(), before, "{count}");
    }
}

#[test]
fn postgres_a_count_that_cannot_run_is_refused_in_the_preflight_and_an_int4_count_is_one() {
    let server = server!(
        "postgres_a_count_that_cannot_run_is_refused_in_the_preflight_and_an_int4_count_is_one"
    );
    let site = PgSite::new(&server);
    let guarded = |count: &str| {
        format!(
            "-- contract: x\n-- xtask: refuse-unless-zero: {count}\n-- xtask: hint: x\nCREATE INDEX guarded ON secrets (name);\n"
        )
    };
    let name = mig(next(), "guarded");
    for (count, said) in [
        ("SELECT count(*) FROM no_such_table", "no_such_table"),
        ("SELECT 0 UNION ALL SELECT 5", "2 rows"),
    ] {
        site.add_migration(&name, &guarded(count));
        for args in [&["migrate", "--dry-run"][..], &["migrate"][..]] {
            let out = site.xtask(args, &[]);
            let text = text(&out);
            assert!(!out.status.success(), "{args:?} {count}: {text}");
            assert!(
                text.contains(said) && text.contains("Nothing went down"),
                "{args:?} {count}: {text}"
            );
            assert!(!text.contains("[3/7]"), "the service was touched: {text}");
        }
    }
    site.add_migration(&name, &guarded("SELECT 0::int"));
    let out = site.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.db.versions(), versions_to(next()));
}

#[test]
fn the_upgrade_check_runs_the_stand_in_and_fails_without_one() {
    let site = Site::new();
    let name = mig(next(), "keys_checked");
    let count = "key_id <> 'checked'";
    site.add_migration(&name, &guarded(count, "check every key", None));
    let out = check(&site);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("upgrade path") && said.contains("refuses to run"),
        "{said}"
    );
    let stand_in = "UPDATE secrets SET key_id = 'checked'";
    site.add_migration(&name, &guarded(count, "check every key", Some(stand_in)));
    let out = check(&site);
    let said = text(&out);
    assert!(said.contains("ok       upgrade path"), "{said}");
}

#[test]
fn to_applies_a_prefix_never_goes_back_and_names_a_version_that_is_not_there() {
    let site = Site::new_empty();
    let out = site.xtask(&["migrate", "--create", "--to", "2"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.versions(), versions_to(2));
    let missing = next() + 5;
    let out = site.xtask(&["migrate", "--to", &missing.to_string()], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("there is no V{missing}__*.sql")),
        "{}",
        text(&out)
    );
    let out = site.xtask(&["migrate", "--to", "0"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = site.xtask(&["migrate", "--to", "3"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let back = site.xtask(&["migrate", "--to", "1"], &[]);
    assert!(!back.status.success());
    assert!(text(&back).contains("only go forward"), "{}", text(&back));
    assert_eq!(site.versions(), versions_to(3));
    let status = site.xtask(&["migrate", "--to", "3", "status"], &[]);
    assert!(!status.status.success());
    assert!(
        text(&status).contains("not with `migrate status`"),
        "{}",
        text(&status)
    );
}
