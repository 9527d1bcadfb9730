//! `cargo xtask migrate --job` on a busy Postgres server (#12, items 7 and
//! 9): a `-- xtask: no-transaction` file (CREATE INDEX CONCURRENTLY) runs
//! alone outside a transaction; a failed concurrent build's INVALID index is
//! named on the next run; a table lock held by another session is waited
//! for within a retry budget, naming the session; SIGTERM cancels the
//! statement on the server. The real binary against the real server, each
//! test in a database of its own.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    fs,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use support::{pg::*, *};

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
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    add_with_twin(
        &site,
        &mig(next() + 1, "index_created_at"),
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
        log.contains(&format!(
            "{} applied (transaction), {} applied (no transaction)",
            mig_name(next(), "secret_note"),
            mig_name(next() + 1, "index_created_at")
        )),
        "{log}"
    );
    assert_eq!(site.db.versions(), versions_to(next() + 1));
    assert_eq!(index_state(&site, "secrets_created_at"), Some(true));
    // The session-level timeouts were reset: nothing else runs with them.
    let again = site.xtask(&["migrate", "--job"], &[]);
    assert!(
        text(&again).contains(&format!("up to date at schema version {}", next() + 1)),
        "{}",
        text(&again)
    );
}

#[test]
fn a_no_transaction_file_with_two_statements_is_refused_and_nothing_runs() {
    let server = server!("a_no_transaction_file_with_two_statements_is_refused_and_nothing_runs");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    add_with_twin(
        &site,
        &mig(next() + 1, "two_indexes"),
        "CREATE INDEX a ON secrets (created_at);\nCREATE INDEX b ON secrets (name);\n",
        "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY a ON secrets (created_at);\n\
         CREATE INDEX CONCURRENTLY b ON secrets (name);\n",
    );
    for args in [&["migrate", "--job"][..], &["migrate", "status"]] {
        let out = site.xtask(args, &[]);
        let log = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {log}");
        assert!(
            log.contains(&format!("postgres/{}", mig(next() + 1, "two_indexes")))
                && log.contains("holds 2 statements")
                && log.contains("one file per statement"),
            "{args:?}: {log}"
        );
    }
    assert_eq!(
        site.db.versions(),
        shipped(),
        "the first new migration did not run either"
    );
    assert_eq!(index_state(&site, "a"), None);
}

#[test]
fn a_failed_concurrent_build_leaves_an_invalid_index_the_next_run_names() {
    let server = server!("a_failed_concurrent_build_leaves_an_invalid_index_the_next_run_names");
    let site = PgSite::new(&server);
    // Two secrets created at the same instant: a unique index cannot be built.
    site.insert_sealed("gamma", "v4lue-never-printed", "2026-01-01T00:00:00Z");
    add_with_twin(
        &site,
        &mig(next(), "unique_created_at"),
        "CREATE UNIQUE INDEX IF NOT EXISTS secrets_created_unique ON secrets (created_at);\n",
        "-- xtask: no-transaction\n\
         CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS secrets_created_unique ON secrets (created_at);\n",
    );
    // --allow-contract: a unique index refuses the previous release's
    // duplicate writes, a contract change for the lint.
    let first = site.xtask(&["migrate", "--job", "--allow-contract"], &[]);
    let log = text(&first);
    assert_eq!(first.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&mig_name(next(), "unique_created_at")),
        "{log}"
    );
    assert!(
        !log.contains("v4lue-never-printed"),
        "a stored value leaked: {log}"
    );
    assert_eq!(index_state(&site, "secrets_created_unique"), Some(false));
    assert_eq!(site.db.versions(), shipped());
    // The next run must neither trip on "already exists" nor, through
    // IF NOT EXISTS, record the migration with an index Postgres does not use.
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
    assert_eq!(site.db.versions(), shipped());
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
    assert_eq!(site.db.versions(), versions_to(next()));
}

#[test]
fn a_lock_held_for_three_seconds_is_waited_for_and_the_blocker_named() {
    let server = server!("a_lock_held_for_three_seconds_is_waited_for_and_the_blocker_named");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
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
    assert_eq!(site.db.versions(), versions_to(next()));
}

#[test]
fn a_lock_held_beyond_the_budget_fails_naming_the_blocker_and_the_setting() {
    let server = server!("a_lock_held_beyond_the_budget_fails_naming_the_blocker_and_the_setting");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
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
    assert_eq!(site.db.versions(), shipped());
}

#[test]
fn sigterm_cancels_the_blocked_statement_on_the_server() {
    let server = server!("sigterm_cancels_the_blocked_statement_on_the_server");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
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
    assert_eq!(site.db.versions(), shipped());
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
        &mig(next(), "index_created_at"),
        "-- xtask: no-transaction\nCREATE INDEX secrets_created_at ON secrets (created_at);\n",
    );
    for args in [&["migrate"][..], &["migrate", "status"]] {
        let out = site.xtask(args, &[]);
        let log = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {log}");
        assert!(
            log.contains(&mig(next(), "index_created_at"))
                && log.contains("SQLite")
                && log.contains(&format!("postgres/{}", mig(next(), "index_created_at"))),
            "{args:?}: {log}"
        );
    }
    assert_eq!(site.versions(), shipped());
    assert!(site.backups().is_empty(), "nothing ran, not even a backup");
}

/// The window (without --job) runs the same driver: the no-transaction file
/// alone after the transaction before it commits, and says so.
#[test]
fn the_window_applies_a_no_transaction_file_on_postgres_too() {
    let server = server!("the_window_applies_a_no_transaction_file_on_postgres_too");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    add_with_twin(
        &site,
        &mig(next() + 1, "index_created_at"),
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
    assert_eq!(site.db.versions(), versions_to(next() + 1));
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
        &mig(next(), "index_name_created"),
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
    assert_eq!(site.db.versions(), shipped());
    writer.batch_execute("ROLLBACK").unwrap();
}

/// An open write transaction on `secrets`: a concurrent build waits for it
/// with its index already in the catalog, INVALID.
fn open_writer(site: &PgSite) -> postgres::Client {
    let mut writer = site.db.client();
    writer
        .batch_execute("BEGIN; UPDATE secrets SET created_at = created_at WHERE name = 'alpha'")
        .unwrap();
    writer
}

/// #12 item 7: a quoted mixed-case index name. The build's lock wait
/// times out with the index INVALID: the job must not retry (IF NOT EXISTS
/// would skip the INVALID index and record the file), must name it, and a
/// later run must refuse too.
#[test]
fn a_lock_timeout_that_leaves_a_quoted_invalid_index_is_not_retried_nor_recorded() {
    let server =
        server!("a_lock_timeout_that_leaves_a_quoted_invalid_index_is_not_retried_nor_recorded");
    let site = PgSite::new(&server);
    add_with_twin(
        &site,
        &mig(next(), "created_index"),
        "CREATE INDEX IF NOT EXISTS \"Secrets_Created_Ix\" ON secrets (created_at);\n",
        "-- xtask: no-transaction\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS \"Secrets_Created_Ix\" ON secrets (created_at);\n",
    );
    let mut writer = open_writer(&site);
    let env = [
        ("MIGRATE_PG_LOCK_TIMEOUT_SECS", "1"),
        ("MIGRATE_PG_LOCK_RETRY_SECS", "30"),
    ];
    let start = Instant::now();
    let out = site.xtask(&["migrate", "--job"], &env);
    let took = start.elapsed();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("INVALID index Secrets_Created_Ix")
            && log.contains("DROP INDEX CONCURRENTLY public.\"Secrets_Created_Ix\";")
            && log.contains("not recorded"),
        "{log}"
    );
    assert!(
        !log.contains("retrying") && !log.contains("rolled back"),
        "{log}"
    );
    assert!(!log.contains("Nothing was changed"), "{log}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(index_state(&site, "Secrets_Created_Ix"), Some(false));
    assert_eq!(site.db.versions(), shipped());
    writer.batch_execute("ROLLBACK").unwrap();
    // The writer is gone: IF NOT EXISTS would now skip the INVALID index.
    let again = site.xtask(&["migrate", "--job"], &env);
    let log = text(&again);
    assert_eq!(again.status.code(), Some(1), "{log}");
    assert!(log.contains("INVALID index Secrets_Created_Ix"), "{log}");
    assert_eq!(site.db.versions(), shipped());
}

/// #12 item 8: a cancelled build of an index whose name holds `$` is named
/// with the fix, and the job does not say a plain re-run will do.
#[test]
fn sigint_during_a_build_names_an_index_with_a_dollar_and_asks_to_drop_it() {
    let server = server!("sigint_during_a_build_names_an_index_with_a_dollar_and_asks_to_drop_it");
    let site = PgSite::new(&server);
    add_with_twin(
        &site,
        &mig(next(), "value_index"),
        "CREATE INDEX secrets_name$created ON secrets (name, created_at);\n",
        "-- xtask: no-transaction\n\
         CREATE INDEX CONCURRENTLY secrets_name$created ON secrets (name, created_at);\n",
    );
    let mut writer = open_writer(&site);
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
    while index_state(&site, "secrets_name$created").is_none() {
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
        log.contains("INVALID index secrets_name$created")
            && log.contains("DROP INDEX CONCURRENTLY public.\"secrets_name$created\";")
            && log.contains("Drop that index"),
        "{log}"
    );
    assert_eq!(index_state(&site, "secrets_name$created"), Some(false));
    assert_eq!(site.db.versions(), shipped());
    writer.batch_execute("ROLLBACK").unwrap();
}

/// #12 item 9: a run killed during its build can leave the index VALID
/// without its history row; the next run names it and both fixes, and the
/// second fix (IF NOT EXISTS) adopts the index.
#[test]
fn an_index_left_without_its_history_row_is_named_with_both_fixes() {
    let server = server!("an_index_left_without_its_history_row_is_named_with_both_fixes");
    let site = PgSite::new(&server);
    let shared = "CREATE INDEX secrets_created_ix ON secrets (created_at);\n";
    add_with_twin(
        &site,
        &mig(next(), "created_index"),
        shared,
        "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY secrets_created_ix ON secrets (created_at);\n",
    );
    // What the killed run's build finished on the server.
    site.db.client().batch_execute(shared).unwrap();
    let out = site.xtask(&["migrate", "--job"], &[]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("secrets_created_ix")
            && log.contains("already exists")
            && log.contains("DROP INDEX CONCURRENTLY secrets_created_ix;")
            && log.contains("IF NOT EXISTS"),
        "{log}"
    );
    assert!(!log.contains("named below"), "{log}");
    assert_eq!(site.db.versions(), shipped());
    add_with_twin(
        &site,
        &mig(next(), "created_index"),
        "CREATE INDEX IF NOT EXISTS secrets_created_ix ON secrets (created_at);\n",
        "-- xtask: no-transaction\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS secrets_created_ix ON secrets (created_at);\n",
    );
    let fixed = site.xtask(&["migrate", "--job"], &[]);
    assert!(fixed.status.success(), "{}", text(&fixed));
    assert_eq!(site.db.versions(), versions_to(next()));
    assert_eq!(index_state(&site, "secrets_created_ix"), Some(true));
}

/// #12 item 13: each Postgres timeout is checked against its own range
/// (0 is "no limit" to Postgres; it takes no more than 2147483 s) before
/// anything runs, naming the variable and the value.
#[test]
fn postgres_timeouts_out_of_range_are_refused_naming_the_variable() {
    let server = server!("postgres_timeouts_out_of_range_are_refused_naming_the_variable");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    for name in [
        "MIGRATE_PG_LOCK_TIMEOUT_SECS",
        "MIGRATE_PG_STATEMENT_TIMEOUT_SECS",
    ] {
        for value in ["0", "99999999999", "abc", "-1", "0.5"] {
            let out = site.xtask(&["migrate", "--job"], &[(name, value)]);
            let log = text(&out);
            assert_eq!(out.status.code(), Some(1), "{name}={value}: {log}");
            assert!(
                log.contains(&format!("{name}={value}")) && log.contains("from 1 to 2147483"),
                "{name}={value}: {log}"
            );
        }
    }
    assert_eq!(site.db.versions(), shipped());
    let out = site.xtask(
        &["migrate", "--job"],
        &[
            ("MIGRATE_PG_LOCK_TIMEOUT_SECS", "2147483"),
            ("MIGRATE_PG_STATEMENT_TIMEOUT_SECS", "1"),
        ],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("statement_timeout 1 s, lock_timeout 2147483 s"),
        "{log}"
    );
    assert_eq!(site.db.versions(), versions_to(next()));
}

/// #12 item 14: SIGTERM between two attempts has no statement to cancel,
/// and the job says so instead of claiming one.
#[test]
fn sigterm_during_the_retry_wait_does_not_claim_a_running_statement() {
    use std::io::{BufRead, BufReader};
    let server = server!("sigterm_during_the_retry_wait_does_not_claim_a_running_statement");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    let (_holder, _) = hold_secrets_table(&site);
    let mut job = site
        .command(
            &["migrate", "--job"],
            &[
                ("MIGRATE_PG_LOCK_TIMEOUT_SECS", "1"),
                ("MIGRATE_PG_LOCK_RETRY_SECS", "60"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(job.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("retrying in") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no retry: {seen}");
        seen.push_str(&line);
    }
    let status = Command::new("kill")
        .args(["-TERM", &job.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = job.wait_with_output().unwrap();
    let log = format!("{seen}{}", text(&out));
    assert_eq!(out.status.code(), Some(143), "{log}");
    assert!(!log.contains("cancelling the running statement"), "{log}");
    assert!(log.contains("no statement was running"), "{log}");
    assert_eq!(site.db.versions(), shipped());
}
