//! `cargo xtask migrate --job` on a busy Postgres server (#12, items 7 and
//! 9): a `-- xtask: no-transaction` file (CREATE INDEX CONCURRENTLY) runs
//! alone outside a transaction; a failed concurrent build's INVALID index is
//! named on the next run; a table lock held by another session is waited
//! for within a retry budget, naming the session; SIGTERM cancels the
//! statement on the server. The real binary against the real server, each
//! test in a database of its own.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

mod support;

use std::{
    fs,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use support::{pg::*, *};

/// The test server, or return: the test was skipped (and said so).
macro_rules! server {
    ($test:expr) => {
        match server($test) {
            Some(url) => url,
            None => return,
        }
    };
}

/// An expand migration both engines accept.
const V5_NOTE: &str = "ALTER TABLE secrets ADD COLUMN note TEXT;\n";

/// Adds migration `name` as SQLite runs it (`shared`) and its Postgres twin.
fn add_with_twin(site: &PgSite, name: &str, shared: &str, postgres: &str) {
    site.add_migration(name, shared);
    fs::write(site.migrations.join("postgres").join(name), postgres).unwrap();
}

/// Whether index `name` exists, and whether Postgres marks it valid.
fn index_state(site: &PgSite, name: &str) -> Option<bool> {
    site.db
        .client()
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = $1",
            &[&name],
        )
        .unwrap()
        .map(|r| r.get(0))
}

/// A session that read `secrets` in an open transaction, so an ALTER TABLE
/// waits for it; named like a report someone left running.
fn hold_secrets_table(site: &PgSite) -> (postgres::Client, i32) {
    let mut holder = site.db.client();
    holder
        .batch_execute(
            "SET application_name = 'nightly report'; BEGIN; SELECT count(*) FROM secrets",
        )
        .unwrap();
    let pid = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    (holder, pid)
}

#[test]
fn a_concurrent_index_in_a_no_transaction_file_is_applied_by_the_job() {
    let server = server!("a_concurrent_index_in_a_no_transaction_file_is_applied_by_the_job");
    let site = PgSite::new(&server);
    site.add_migration("V5__secret_note.sql", V5_NOTE);
    add_with_twin(
        &site,
        "V6__index_created_at.sql",
        "CREATE INDEX secrets_created_at ON secrets (created_at);\n",
        "-- Built without blocking writes to secrets.\n-- xtask: no-transaction\n\
         CREATE INDEX CONCURRENTLY secrets_created_at ON secrets (created_at);\n",
    );
    let out = site.xtask(&["migrate", "--job"], &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("statement_timeout 300 s, lock_timeout 5 s, retry budget 60 s"),
        "{log}"
    );
    assert!(
        log.contains(
            "V5__secret_note applied (transaction), V6__index_created_at applied (no transaction)"
        ),
        "{log}"
    );
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(index_state(&site, "secrets_created_at"), Some(true));
    // The session-level timeouts were reset: nothing else runs with them.
    let again = site.xtask(&["migrate", "--job"], &[]);
    assert!(
        text(&again).contains("up to date at schema version 6"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_no_transaction_file_with_two_statements_is_refused_and_nothing_runs() {
    let server = server!("a_no_transaction_file_with_two_statements_is_refused_and_nothing_runs");
    let site = PgSite::new(&server);
    site.add_migration("V5__secret_note.sql", V5_NOTE);
    add_with_twin(
        &site,
        "V6__two_indexes.sql",
        "CREATE INDEX a ON secrets (created_at);\nCREATE INDEX b ON secrets (name);\n",
        "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY a ON secrets (created_at);\n\
         CREATE INDEX CONCURRENTLY b ON secrets (name);\n",
    );
    for args in [&["migrate", "--job"][..], &["migrate", "status"]] {
        let out = site.xtask(args, &[]);
        let log = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {log}");
        assert!(
            log.contains("postgres/V6__two_indexes.sql")
                && log.contains("holds 2 statements")
                && log.contains("one file per statement"),
            "{args:?}: {log}"
        );
    }
    assert_eq!(
        site.db.versions(),
        vec![1, 2, 3, 4],
        "V5 did not run either"
    );
    assert_eq!(index_state(&site, "a"), None);
}

#[test]
fn a_failed_concurrent_build_leaves_an_invalid_index_the_next_run_names() {
    let server = server!("a_failed_concurrent_build_leaves_an_invalid_index_the_next_run_names");
    let site = PgSite::new(&server);
    // Two secrets created at the same instant: a unique index cannot be built.
    site.db
        .client()
        .batch_execute(
            "INSERT INTO secrets (name, value, created_at) VALUES ('gamma', 'v4lue-never-printed', '2026-01-01T00:00:00Z')",
        )
        .unwrap();
    add_with_twin(
        &site,
        "V5__unique_created_at.sql",
        "CREATE UNIQUE INDEX IF NOT EXISTS secrets_created_unique ON secrets (created_at);\n",
        "-- xtask: no-transaction\n\
         CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS secrets_created_unique ON secrets (created_at);\n",
    );
    // --allow-contract: a unique index refuses the previous release's
    // duplicate writes, a contract change for the lint.
    let first = site.xtask(&["migrate", "--job", "--allow-contract"], &[]);
    let log = text(&first);
    assert_eq!(first.status.code(), Some(1), "{log}");
    assert!(log.contains("V5__unique_created_at"), "{log}");
    assert!(
        !log.contains("v4lue-never-printed"),
        "a stored value leaked: {log}"
    );
    assert_eq!(index_state(&site, "secrets_created_unique"), Some(false));
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4]);
    // The next run must neither trip on "already exists" nor, through
    // IF NOT EXISTS, record V5 with an index Postgres does not use.
    for args in [
        &["migrate", "--job", "--allow-contract"][..],
        &["migrate", "status"],
    ] {
        let out = site.xtask(args, &[]);
        let log = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {log}");
        assert!(
            log.contains("INVALID index secrets_created_unique")
                && log.contains("DROP INDEX CONCURRENTLY public.secrets_created_unique;"),
            "{args:?}: {log}"
        );
        assert!(!log.contains("already exists"), "{args:?}: {log}");
    }
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4]);
    // The fix the message gives, then the re-run goes through.
    let mut client = site.db.client();
    client
        .batch_execute("DELETE FROM secrets WHERE name = 'gamma'")
        .unwrap();
    client
        .batch_execute("DROP INDEX CONCURRENTLY public.secrets_created_unique")
        .unwrap();
    let fixed = site.xtask(&["migrate", "--job", "--allow-contract"], &[]);
    assert!(fixed.status.success(), "{}", text(&fixed));
    assert_eq!(index_state(&site, "secrets_created_unique"), Some(true));
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_lock_held_for_three_seconds_is_waited_for_and_the_blocker_named() {
    let server = server!("a_lock_held_for_three_seconds_is_waited_for_and_the_blocker_named");
    let site = PgSite::new(&server);
    site.add_migration("V5__secret_note.sql", V5_NOTE);
    let (mut holder, pid) = hold_secrets_table(&site);
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_secs(3));
        holder.batch_execute("ROLLBACK").unwrap();
    });
    let start = Instant::now();
    let out = site.xtask(
        &["migrate", "--job"],
        &[("MIGRATE_PG_LOCK_TIMEOUT_SECS", "1")],
    );
    let took = start.elapsed();
    releaser.join().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("lock_timeout")
            && log.contains(&format!("pid {pid}"))
            && log.contains("nightly report")
            && log.contains("idle in transaction"),
        "{log}"
    );
    assert!(log.contains("retrying in 1.0 s"), "{log}");
    assert!(
        !log.contains("count(*)"),
        "the blocker's query text may hold a value: {log}"
    );
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_lock_held_beyond_the_budget_fails_naming_the_blocker_and_the_setting() {
    let server = server!("a_lock_held_beyond_the_budget_fails_naming_the_blocker_and_the_setting");
    let site = PgSite::new(&server);
    site.add_migration("V5__secret_note.sql", V5_NOTE);
    let (_holder, pid) = hold_secrets_table(&site);
    let start = Instant::now();
    let out = site.xtask(
        &["migrate", "--job"],
        &[
            ("MIGRATE_PG_LOCK_TIMEOUT_SECS", "1"),
            ("MIGRATE_PG_LOCK_RETRY_SECS", "3"),
        ],
    );
    let took = start.elapsed();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("pid {pid}"))
            && log.contains("nightly report")
            && log.contains("MIGRATE_PG_LOCK_RETRY_SECS")
            && log.contains("rolled back"),
        "{log}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4]);
}

#[test]
fn sigterm_cancels_the_blocked_statement_on_the_server() {
    let server = server!("sigterm_cancels_the_blocked_statement_on_the_server");
    let site = PgSite::new(&server);
    site.add_migration("V5__secret_note.sql", V5_NOTE);
    let (_holder, _) = hold_secrets_table(&site);
    let job = site
        .command(
            &["migrate", "--job"],
            &[("MIGRATE_PG_LOCK_TIMEOUT_SECS", "120")],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watcher = site.db.client();
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND application_name LIKE 'cargo xtask migrate --job%' AND state = 'active' \
                   AND query LIKE 'ALTER TABLE%'";
    let blocked_since = Instant::now();
    while watcher.query_one(waiting, &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(
            blocked_since.elapsed() < Duration::from_secs(20),
            "the job's ALTER TABLE never started"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &job.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    while watcher.query_one(waiting, &[]).unwrap().get::<_, i64>(0) > 0 {
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "the job's statement still runs on the server 2 s after SIGTERM"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let out = job.wait_with_output().unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(143), "{log}");
    assert!(
        log.contains("SIGTERM") && log.contains("cancelled") && log.contains("rolled back"),
        "{log}"
    );
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4]);
    let column: i64 = watcher
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'secrets' AND column_name = 'note'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(column, 0);
}

/// SQLite has no statement that needs the marker, and the window applies
/// its migrations in one transaction beside the backup: a marked file is
/// refused by the window and by status, and nothing changes.
#[test]
fn a_no_transaction_file_is_refused_on_sqlite() {
    let site = Site::new();
    site.add_migration(
        "V5__index_created_at.sql",
        "-- xtask: no-transaction\nCREATE INDEX secrets_created_at ON secrets (created_at);\n",
    );
    for args in [&["migrate"][..], &["migrate", "status"]] {
        let out = site.xtask(args, &[]);
        let log = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {log}");
        assert!(
            log.contains("V5__index_created_at.sql")
                && log.contains("SQLite")
                && log.contains("postgres/V5__index_created_at.sql"),
            "{args:?}: {log}"
        );
    }
    assert_eq!(site.versions(), vec![1, 2, 3, 4]);
    assert!(site.backups().is_empty(), "nothing ran, not even a backup");
}

/// The window (without --job) runs the same driver: the no-transaction file
/// alone after the transaction before it commits, and says so.
#[test]
fn the_window_applies_a_no_transaction_file_on_postgres_too() {
    let server = server!("the_window_applies_a_no_transaction_file_on_postgres_too");
    let site = PgSite::new(&server);
    site.add_migration("V5__secret_note.sql", V5_NOTE);
    add_with_twin(
        &site,
        "V6__index_created_at.sql",
        "CREATE INDEX secrets_created_at ON secrets (created_at);\n",
        "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY secrets_created_at ON secrets (created_at);\n",
    );
    let out = site.xtask(&["migrate"], &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("2 applied in order, 1 of them alone outside a transaction"),
        "{log}"
    );
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(index_state(&site, "secrets_created_at"), Some(true));
}

/// A concurrent build cancelled by a signal leaves an INVALID index: the
/// job's last words name it with the fix, and do not blame statement_timeout.
#[test]
fn sigint_during_a_concurrent_build_names_the_invalid_index_it_left() {
    let server = server!("sigint_during_a_concurrent_build_names_the_invalid_index_it_left");
    let site = PgSite::new(&server);
    add_with_twin(
        &site,
        "V5__index_name_created.sql",
        "CREATE INDEX secrets_name_created ON secrets (name, created_at);\n",
        "-- xtask: no-transaction\n\
         CREATE INDEX CONCURRENTLY secrets_name_created ON secrets (name, created_at);\n",
    );
    // An open write transaction: the concurrent build waits for it to end.
    let mut writer = site.db.client();
    writer
        .batch_execute("BEGIN; UPDATE secrets SET created_at = created_at WHERE name = 'alpha'")
        .unwrap();
    let job = site
        .command(
            &["migrate", "--job"],
            &[("MIGRATE_PG_LOCK_TIMEOUT_SECS", "120")],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while index_state(&site, "secrets_name_created").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the build never started"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &job.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = job.wait_with_output().unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(130), "{log}");
    assert!(
        log.contains("SIGINT")
            && log.contains("INVALID index secrets_name_created")
            && log.contains("DROP INDEX CONCURRENTLY public.secrets_name_created;"),
        "{log}"
    );
    assert!(!log.contains("ran past statement_timeout"), "{log}");
    assert_eq!(index_state(&site, "secrets_name_created"), Some(false));
    assert_eq!(site.db.versions(), vec![1, 2, 3, 4]);
    writer.batch_execute("ROLLBACK").unwrap();
}
