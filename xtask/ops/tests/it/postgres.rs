//! Postgres as the second engine: the runbook, `migrate --job`, `backup` and
//! `restore`, `migrations check --postgres` and `db copy`, with the real
//! xtask binary, a real backend process and a real Postgres server
//! (`TEST_POSTGRES_URL`). Each test works in a database of its own, dropped
//! afterwards; without a server each test says it was skipped.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use rusqlite::Connection;
use support::{pg::*, *};

#[test]
fn the_window_backs_up_migrates_and_brings_the_service_back_healthy() {
    let server = server!("the_window_backs_up_migrates_and_brings_the_service_back_healthy");
    let site = PgSite::new(&server);
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    for step in [
        "[1/7] take the migration lock",
        "[3/7] take the service down",
        "[4/7] back up",
        "[5/7] migrate",
        "[6/7] bring the service up",
        "[7/7] done",
    ] {
        assert!(log.contains(step), "missing {step}: {log}");
    }
    assert!(log.contains("lock_timeout 5 s"), "{log}");
    assert_eq!(site.db.versions(), versions_to(next()));
    assert_eq!(site.db.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'secrets' AND column_name = 'note'"), 1);
    let backups = site.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        fs::metadata(&backups[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let listing = Command::new("pg_restore")
        .arg("--list")
        .arg(&backups[0])
        .output()
        .unwrap();
    assert!(listing.status.success());
    assert!(String::from_utf8_lossy(&listing.stdout).contains("TABLE DATA public secrets"));
    assert!(!site.flag().exists(), "maintenance must be over");
    let health: serde_json::Value = agent_with_timeout(Duration::from_secs(5))
        .get(site.health_url())
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["schema_version"], next());
    assert_eq!(site.secrets().len(), 2);
    // A second run finds nothing to do and leaves the service alone.
    let again = site.xtask(&["migrate"], &env_refs(&env));
    assert!(
        again.status.success()
            && text(&again).contains(&format!("up to date at schema version {}", next())),
        "{}",
        text(&again)
    );
    // A password in the URL never reaches the output (trust auth accepts it).
    let with_password = site
        .db
        .url
        .replacen("://postgres@", "://postgres:hunter2@", 1);
    assert_ne!(
        with_password, site.db.url,
        "TEST_POSTGRES_URL is expected as postgres://postgres@…"
    );
    let status = site.xtask(&["migrate", "status"], &[("DATABASE_URL", &with_password)]);
    let shown = text(&status);
    assert!(
        status.status.success() && shown.contains("up to date"),
        "{shown}"
    );
    assert!(
        shown.contains("postgres://postgres:***@") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn a_failing_migration_rolls_back_whole_and_the_service_comes_back() {
    let server = server!("a_failing_migration_rolls_back_whole_and_the_service_comes_back");
    let site = PgSite::new(&server);
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(
        &mig(next(), "half_done"),
        "CREATE TABLE t5 (id BIGINT PRIMARY KEY);\nCREATE INDEX t5_missing ON no_such_table (x);\n",
    );
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&mig(next(), "half_done")) && log.contains("no_such_table"),
        "{log}"
    );
    assert!(log.contains("the database was not changed"), "{log}");
    assert_eq!(site.db.versions(), shipped());
    assert_eq!(
        site.db
            .count("SELECT count(*) FROM pg_tables WHERE tablename = 't5'"),
        0
    );
    assert!(!site.flag().exists());
    wait_for_health(&site.health_url(), 200);
    let status = site.xtask(&["migrate", "status"], &[]);
    assert!(
        !status.status.success(),
        "a pending migration must fail status"
    );
    assert!(
        text(&status).contains(&format!("pending  {}", mig_name(next(), "half_done"))),
        "{}",
        text(&status)
    );
}

#[test]
fn a_blocked_table_lock_fails_fast_instead_of_stalling_traffic() {
    let server = server!("a_blocked_table_lock_fails_fast_instead_of_stalling_traffic");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    // A long transaction that read `secrets`: ALTER TABLE must wait for it.
    let mut holder = site.db.client();
    let mut tx = holder.transaction().unwrap();
    tx.query("SELECT count(*) FROM secrets", &[]).unwrap();
    let start = Instant::now();
    let out = site.xtask(
        &["migrate", "--job"],
        &[
            ("MIGRATE_PG_LOCK_TIMEOUT_SECS", "1"),
            ("MIGRATE_PG_LOCK_RETRY_SECS", "0"),
        ],
    );
    let waited = start.elapsed();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("lock_timeout") && log.contains("rolled back"),
        "{log}"
    );
    assert!(waited < Duration::from_secs(20), "took {waited:?}");
    tx.rollback().unwrap();
    assert_eq!(site.db.versions(), shipped());
    // With the transaction gone the same job goes through.
    let out = site.xtask(&["migrate", "--job"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.db.versions(), versions_to(next()));
}

#[test]
fn jobs_started_together_migrate_exactly_once() {
    let server = server!("jobs_started_together_migrate_exactly_once");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    let children: Vec<_> = (0..8)
        .map(|_| {
            site.command(&["migrate", "--job"], &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert!(out.status.success(), "{}", text(out));
    }
    let applied = outputs
        .iter()
        .filter(|o| text(o).contains("applied 1 migration"))
        .count();
    let idle = outputs
        .iter()
        .filter(|o| text(o).contains(&format!("up to date at schema version {}", next())))
        .count();
    assert_eq!(
        (applied, idle),
        (1, 7),
        "{:?}",
        outputs.iter().map(text).collect::<Vec<_>>()
    );
    assert_eq!(site.db.versions(), versions_to(next()));
}

#[test]
fn the_job_refuses_contract_migrations_unless_allowed() {
    let server = server!("the_job_refuses_contract_migrations_unless_allowed");
    let site = PgSite::empty(&server);
    // Ship V1–V2 first (expand only), as a release before V3 would have:
    // every later shipped migration is parked.
    let parked = site.dir.path().join("parked");
    fs::create_dir_all(parked.join("postgres")).unwrap();
    let later: Vec<String> = test_support::migration_files(&site.migrations)
        .iter()
        .filter(|f| test_support::migration_version(f).is_some_and(|v| v > 2))
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(later.len() >= 2, "V3 and V4 at least: {later:?}");
    for name in &later {
        for sub in ["", "postgres"] {
            fs::rename(
                site.migrations.join(sub).join(name),
                parked.join(sub).join(name),
            )
            .unwrap();
        }
    }
    // V2's twin builds an index under a write lock, marked for a first deploy.
    let out = site.xtask(&["migrate", "--job", "--allow-contract"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.db.versions(), vec![1, 2]);
    for name in &later {
        for sub in ["", "postgres"] {
            fs::rename(
                parked.join(sub).join(name),
                site.migrations.join(sub).join(name),
            )
            .unwrap();
        }
    }
    let refused = site.xtask(&["migrate", "--job"], &[]);
    let log = text(&refused);
    assert_eq!(refused.status.code(), Some(3), "{log}");
    assert!(
        log.contains("V3__secrets_check_constraints") && log.contains("--allow-contract"),
        "{log}"
    );
    assert!(
        !log.contains("V4__create_secret_access_log ("),
        "V4 is an expand migration: {log}"
    );
    assert_eq!(site.db.versions(), vec![1, 2], "a refusal changes nothing");
    let allowed = site.xtask(&["migrate", "--job", "--allow-contract"], &[]);
    assert!(allowed.status.success(), "{}", text(&allowed));
    assert_eq!(site.db.versions(), shipped());
}

#[test]
fn job_is_refused_on_sqlite_with_the_reason() {
    let site = Site::new();
    let out = site.xtask(&["migrate", "--job"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("--job needs Postgres"),
        "{}",
        text(&out)
    );
}

#[test]
fn backup_and_restore_round_trip_in_one_transaction() {
    let server = server!("backup_and_restore_round_trip_in_one_transaction");
    let site = PgSite::new(&server);
    let out = site.xtask(&["backup"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let backup = site.backups().pop().unwrap();
    assert_eq!(
        fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // After the backup: a row goes, and a migration adds a table.
    site.db
        .client()
        .batch_execute("DELETE FROM secrets WHERE name = 'alpha'")
        .unwrap();
    site.add_migration(
        &mig(next(), "extra_table"),
        "CREATE TABLE extra (id BIGINT PRIMARY KEY);\n",
    );
    assert!(site.xtask(&["migrate", "--job"], &[]).status.success());
    // A live session (the service) blocks the restore.
    let _backend = site.start_backend();
    let refused = site.xtask(&["restore"], &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("refusing to restore a database in use"),
        "{}",
        text(&refused)
    );
    drop(_backend);
    std::thread::sleep(Duration::from_millis(200));
    // A corrupt archive is refused before anything happens.
    let bogus = site.dir.path().join("bogus.dump");
    fs::write(&bogus, b"not a dump").unwrap();
    let bad = site.xtask(&["restore", bogus.to_str().unwrap()], &[]);
    assert!(
        !bad.status.success() && text(&bad).contains("not a readable pg_dump archive"),
        "{}",
        text(&bad)
    );
    assert_eq!(site.db.versions(), versions_to(next()));
    let out = site.xtask(&["restore", backup.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        site.secrets(),
        vec![
            ("alpha".into(), "one".into()),
            ("beta".into(), "two".into())
        ]
    );
    assert_eq!(site.db.versions(), shipped());
    assert_eq!(
        site.db
            .count("SELECT count(*) FROM pg_tables WHERE tablename = 'extra'"),
        0
    );
    let kept: Vec<_> = site
        .backups()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".pre-restore.bak"))
        .collect();
    assert_eq!(kept.len(), 1, "the replaced contents are kept");
}

#[test]
fn migrations_check_proves_both_engines_end_at_the_same_schema() {
    let server = server!("migrations_check_proves_both_engines_end_at_the_same_schema");
    let site = PgSite::empty(&server);
    let ok = site.xtask(&["migrations", "check", "--postgres", &server], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    // As many twins and tables as the shipped migrations have.
    let twins = test_support::migration_files(&site.migrations.join("postgres")).len();
    let snapshot = fs::read_to_string(site.migrations.join("schema.sql")).unwrap();
    let tables = snapshot.matches("CREATE TABLE ").count();
    assert!(
        text(&ok).contains(&format!("{twins} Postgres twin(s)"))
            && text(&ok).contains(&format!("{tables} tables match")),
        "{}",
        text(&ok)
    );
    let skipped = site
        .command(&["migrations", "check"], &[])
        .env_remove("MIGRATIONS_POSTGRES_URL")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        text(&skipped).contains("skipped  postgres"),
        "{}",
        text(&skipped)
    );
    // A postgres:// DATABASE_URL serves as the server, and stays untouched.
    let beside = site
        .command(&["migrations", "check"], &[])
        .env_remove("MIGRATIONS_POSTGRES_URL")
        .output()
        .unwrap();
    assert!(
        beside.status.success() && text(&beside).contains("ok       postgres"),
        "{}",
        text(&beside)
    );
    assert!(
        site.db.versions().is_empty(),
        "the database itself was not migrated"
    );
    // A twin that drifts: `created_at` nullable on Postgres only.
    let twin = site.migrations.join("postgres/V1__create_secrets.sql");
    let sql = fs::read_to_string(&twin)
        .unwrap()
        .replace("created_at TIMESTAMPTZ NOT NULL", "created_at TIMESTAMPTZ");
    fs::write(&twin, sql).unwrap();
    let drift = site.xtask(&["migrations", "check", "--postgres", &server], &[]);
    assert!(!drift.status.success());
    assert!(
        text(&drift).contains("secrets.created_at: NOT NULL on SQLite, nullable on Postgres"),
        "{}",
        text(&drift)
    );
    // A twin without a shared migration breaks the one history.
    fs::write(
        site.migrations.join("postgres/V9__orphan.sql"),
        "SELECT 1;\n",
    )
    .unwrap();
    let orphan = site.xtask(&["migrations", "check", "--postgres", &server], &[]);
    assert!(
        text(&orphan).contains("V9__orphan.sql: no shared migration"),
        "{}",
        text(&orphan)
    );
    // No scratch database is left behind.
    let left = postgres::Client::connect(&server, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'xtask_check_%'",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(left, 0);
}

/// A SQLite site with rows in both tables and values to convert.
fn sqlite_source() -> Site {
    let site = Site::new();
    let conn = Connection::open(&site.db).unwrap();
    let (sealed, key_id) = seal("gamma", "multi\nline \"quoted\" ünïcode");
    conn.execute(
        "INSERT INTO secrets (id, name, sealed_value, key_id, created_at, expires_at) VALUES \
           (10, 'gamma', ?1, ?2, '2026-03-04T05:06:07Z', '2099-01-01T00:00:00Z')",
        rusqlite::params![sealed, key_id],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO secret_access_log (secret_id, action, accessed_at) VALUES \
           (10, 'read', '2026-03-04 05:06:08'), (1, 'read', '2026-03-05T00:00:00Z');",
    )
    .unwrap();
    site
}

#[test]
fn db_copy_moves_every_row_verified_and_the_service_serves_it() {
    let server = server!("db_copy_moves_every_row_verified_and_the_service_serves_it");
    let source = sqlite_source();
    let target = PgSite::empty(&server);
    target.migrate_fully();
    let out = target.copy_from(&source);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("secrets") && log.contains("3 rows") && log.contains("checksums match"),
        "{log}"
    );
    assert_eq!(target.db.count("SELECT count(*) FROM secrets"), 3);
    assert_eq!(target.db.count("SELECT count(*) FROM secret_access_log"), 2);
    // Text timestamps, RFC 3339 or SQLite's own form, became real ones in UTC.
    assert_eq!(
        target
            .db
            .count("SELECT extract(epoch FROM created_at)::int8 FROM secrets WHERE name = 'gamma'"),
        1_772_600_767
    );
    assert_eq!(
        target.db.count("SELECT extract(epoch FROM accessed_at)::int8 FROM secret_access_log WHERE secret_id = 10"),
        1_772_600_768
    );
    // Sequences continue after the largest id copied.
    let id: i64 = target
        .db
        .client()
        .query_one(
            "INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES ('new', '\\x00', 'test', now()) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(id, 11);
    target
        .db
        .client()
        .batch_execute("DELETE FROM secrets WHERE name = 'new'")
        .unwrap();
    // The service answers the same on both engines (each with a token of
    // its own, created after the copy).
    let sqlite_bearer = source.bearer("sqlite-reader");
    let pg_bearer = target.bearer("pg-reader");
    let sqlite_backend = source.start_backend();
    let sqlite_list = agent_with_timeout(Duration::from_secs(5))
        .get(format!("http://127.0.0.1:{}/api/secrets", source.port))
        .header("authorization", &sqlite_bearer)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    drop(sqlite_backend);
    let _pg_backend = target.start_backend();
    let base = format!("http://127.0.0.1:{}", target.port);
    let pg_list = agent_with_timeout(Duration::from_secs(5))
        .get(format!("{base}/api/secrets"))
        .header("authorization", &pg_bearer)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(pg_list, sqlite_list);
    let gamma: serde_json::Value = agent_with_timeout(Duration::from_secs(5))
        .get(format!("{base}/api/secrets/gamma"))
        .header("authorization", &pg_bearer)
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(gamma["value"], "multi\nline \"quoted\" ünïcode");
    assert_eq!(gamma["created_at"], "2026-03-04T05:06:07Z");
}

#[test]
fn db_copy_refuses_a_target_that_is_not_ready_and_changes_nothing() {
    let server = server!("db_copy_refuses_a_target_that_is_not_ready_and_changes_nothing");
    let source = sqlite_source();
    // Not migrated at all.
    let target = PgSite::empty(&server);
    let out = target.copy_from(&source);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("target at 0") && text(&out).contains("migrate both"),
        "{}",
        text(&out)
    );
    // Migrated, but not empty.
    let full = PgSite::new(&server);
    let out = full.copy_from(&source);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("the target is not empty: secrets (2 rows)"),
        "{}",
        text(&out)
    );
    assert_eq!(full.secrets().len(), 2);
    // The wrong way round.
    let out = full.xtask(
        &["db", "copy", "--from", &full.db.url, "--to", &source.url()],
        &[],
    );
    assert!(
        !out.status.success() && text(&out).contains("--from must be a SQLite database"),
        "{}",
        text(&out)
    );
}

#[test]
fn db_copy_names_the_bad_row_and_rolls_the_target_back() {
    let server = server!("db_copy_names_the_bad_row_and_rolls_the_target_back");
    let source = sqlite_source();
    Connection::open(&source.db)
        .unwrap()
        .execute(
            "UPDATE secret_access_log SET accessed_at = 'yesterday' WHERE secret_id = 1",
            [],
        )
        .unwrap();
    let target = PgSite::empty(&server);
    target.migrate_fully();
    let out = target.copy_from(&source);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("copying table secret_access_log"), "{log}");
    // Table, rowid and column are named; the value never is (#12: values
    // may be secrets).
    assert!(
        log.contains("column accessed_at")
            && log.contains("is not a timestamp")
            && !log.contains("yesterday"),
        "{log}"
    );
    assert!(log.contains("rowid 2"), "{log}");
    // `secrets` had been copied before the failure: rolled back with the rest.
    assert_eq!(target.db.count("SELECT count(*) FROM secrets"), 0);
    assert_eq!(target.db.count("SELECT count(*) FROM secret_access_log"), 0);
}

#[test]
fn db_copy_a_dangling_reference_fails_the_key_check_and_rolls_back() {
    let server = server!("db_copy_a_dangling_reference_fails_the_key_check_and_rolls_back");
    let source = sqlite_source();
    // SQLite enforces foreign keys only when asked: a file can hold this.
    Connection::open(&source.db)
        .unwrap()
        .execute_batch(
            "PRAGMA foreign_keys = OFF; INSERT INTO secret_access_log (secret_id, action, accessed_at) VALUES (999, 'read', '2026-01-01T00:00:00Z');",
        )
        .unwrap();
    let target = PgSite::empty(&server);
    target.migrate_fully();
    let out = target.copy_from(&source);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    // The constraint is named; the server's DETAIL, which quotes the row's
    // values, is not printed.
    assert!(
        log.contains("secret_access_log_secret_id_fkey") && !log.contains("(secret_id)=(999)"),
        "{log}"
    );
    assert!(log.contains("rolled back"), "{log}");
    assert_eq!(target.db.count("SELECT count(*) FROM secrets"), 0);
    // The keys and indexes dropped for the load are all still there.
    assert_eq!(
        target.db.count(
            "SELECT count(*) FROM pg_indexes WHERE tablename IN ('secrets', 'secret_access_log')"
        ),
        5,
        "secrets: pkey, name key, expires_at; secret_access_log: pkey, secret_id"
    );
}

#[test]
fn db_copy_converts_booleans_and_blobs_by_the_target_columns_type() {
    let server = server!("db_copy_converts_booleans_and_blobs_by_the_target_columns_type");
    // A migration after the shipped ones that both engines run, with a
    // Postgres twin for the blob type.
    let pin_and_icon = "ALTER TABLE secrets ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;\n\
              ALTER TABLE secrets ADD COLUMN icon BLOB;\n";
    let source = sqlite_source();
    source.add_migration(&mig(next(), "pin_and_icon"), pin_and_icon);
    let out = source.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    Connection::open(&source.db)
        .unwrap()
        .execute_batch(
            "UPDATE secrets SET pinned = 1, icon = x'00ff10' WHERE name = 'alpha';
             UPDATE secrets SET pinned = 0, icon = NULL WHERE name = 'beta';",
        )
        .unwrap();
    let target = PgSite::empty(&server);
    target.add_migration(&mig(next(), "pin_and_icon"), pin_and_icon);
    fs::write(
        target
            .migrations
            .join(format!("postgres/{}", mig(next(), "pin_and_icon"))),
        "ALTER TABLE secrets ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT FALSE;\n\
         ALTER TABLE secrets ADD COLUMN icon BYTEA;\n",
    )
    .unwrap();
    target.migrate_fully();
    let out = target.copy_from(&source);
    assert!(out.status.success(), "{}", text(&out));
    let rows = target
        .db
        .client()
        .query("SELECT name, pinned, icon FROM secrets ORDER BY name", &[])
        .unwrap();
    let got: Vec<(String, bool, Option<Vec<u8>>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("alpha".into(), true, Some(vec![0x00, 0xff, 0x10])),
            ("beta".into(), false, None),
            ("gamma".into(), false, None),
        ]
    );
    // A value the target type cannot hold is named, and nothing is kept.
    let again = PgSite::empty(&server);
    again.add_migration(&mig(next(), "pin_and_icon"), pin_and_icon);
    fs::copy(
        target
            .migrations
            .join(format!("postgres/{}", mig(next(), "pin_and_icon"))),
        again
            .migrations
            .join(format!("postgres/{}", mig(next(), "pin_and_icon"))),
    )
    .unwrap();
    again.migrate_fully();
    Connection::open(&source.db)
        .unwrap()
        .execute("UPDATE secrets SET pinned = 7 WHERE name = 'beta'", [])
        .unwrap();
    let out = again.copy_from(&source);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("column pinned") && log.contains("cannot be converted to bool"),
        "{log}"
    );
    assert_eq!(again.db.count("SELECT count(*) FROM secrets"), 0);
}

#[test]
fn a_job_that_cannot_get_the_lock_names_the_session_holding_it() {
    let server = server!("a_job_that_cannot_get_the_lock_names_the_session_holding_it");
    let site = PgSite::new(&server);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    // Another host's run, as the server sees it: a session holding the key.
    let mut holder = site.db.client();
    holder
        .batch_execute("SET application_name = 'migrate on host-b'")
        .unwrap();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&0x7365_6372_6574_7321_i64])
        .unwrap();
    let out = site.xtask(
        &["migrate", "--job"],
        &[("MIGRATE_JOB_LOCK_WAIT_SECS", "1")],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("server pid {pid}"))
            && log.contains("migrate on host-b")
            && log.contains("MIGRATE_JOB_LOCK_WAIT_SECS"),
        "{log}"
    );
    assert_eq!(site.db.versions(), shipped());
    drop(holder);
    assert!(site.xtask(&["migrate", "--job"], &[]).status.success());
    assert_eq!(site.db.versions(), versions_to(next()));
}

/// A failing migration on Postgres never prints or journals a stored value:
/// the server's DETAIL ("Key (value)=(…) is duplicated", "Failing row
/// contains (…)") is left out; table, column and constraint are named.
#[test]
fn a_failing_migration_never_prints_a_stored_value() {
    let server = server!("a_failing_migration_never_prints_a_stored_value");
    let secret = "S3CRET-DO-NOT-PRINT";
    let cases = [
        (
            &mig(next(), "unique_values"),
            "CREATE UNIQUE INDEX secrets_key_id_u ON secrets (key_id);\n",
        ),
        (
            &mig(next(), "as_json"),
            "SELECT key_id::json FROM secrets;\n",
        ),
        (
            &mig(next(), "bad_expiry"),
            "UPDATE secrets SET expires_at = created_at - interval '1 day' WHERE name = 'd1';\n",
        ),
    ];
    for (file, sql) in cases {
        let site = PgSite::new(&server);
        site.db
            .client()
            .batch_execute(&format!(
                "INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES \
                 ('d1', '\\x00', '{secret}', now()), ('d2', '\\x00', '{secret}', now())"
            ))
            .unwrap();
        site.add_migration(file, sql);
        // --allow-contract: the lint refuses the unique index (a write lock)
        // before it runs; here it must run, and fail on the duplicates.
        for args in [&["migrate"][..], &["migrate", "--job", "--allow-contract"]] {
            let out = site.xtask(args, &[]);
            let report = text(&out);
            assert!(!out.status.success(), "{file} {args:?}: {report}");
            // A cast names no table; constraint errors do.
            assert!(
                file.contains("json") || report.contains("secrets"),
                "{file} {args:?}: the table is named: {report}"
            );
            assert!(
                !report.contains(secret),
                "{file} {args:?}: printed a value: {report}"
            );
        }
        let journal =
            std::fs::read_to_string(site.dir.path().join("migrate.journal")).unwrap_or_default();
        assert!(
            !journal.contains(secret),
            "{file}: journaled a value: {journal}"
        );
        assert_eq!(site.db.versions(), shipped());
    }
}

/// A password given as `?password=` is never printed, journaled or passed as
/// a program argument (where `ps` shows it): pg_dump gets it through its
/// environment. A wrapper first on PATH records pg_dump's arguments.
#[test]
fn a_query_string_password_never_reaches_output_or_arguments() {
    let server = server!("a_query_string_password_never_reaches_output_or_arguments");
    let site = PgSite::new(&server);
    let log_dir = tempfile::TempDir::new().unwrap();
    let log = log_dir.path().join("args.log");
    let (_wrappers, path) = wrapped_first_on_path("pg_dump", |real| {
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec {real} \"$@\"\n",
            log.display()
        )
    });
    let secret = "QpLEAK2";
    for (url, args) in [
        (
            format!("{}?password={secret}", site.db.url),
            &["backup"][..],
        ),
        (
            format!("{}?password={secret}", site.db.url),
            &["migrate", "status"],
        ),
        // libpq decodes keys: this is the password too.
        (format!("{}?pass%77ord={secret}", site.db.url), &["backup"]),
    ] {
        let out = xtask_command()
            .args(args)
            .args(["--database-url", &url])
            .env("MIGRATE_BACKUP_DIR", site.dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        let shown = text(&out);
        assert!(out.status.success(), "{args:?}: {shown}");
        assert!(
            !shown.contains(secret) && shown.contains("=***"),
            "{args:?}: {shown}"
        );
    }
    let recorded = std::fs::read_to_string(&log).unwrap();
    assert!(recorded.contains("--dbname"), "{recorded}");
    assert!(
        !recorded.contains(secret),
        "pg_dump's arguments: {recorded}"
    );
    let journal = std::fs::read_to_string(site.dir.path().join("backup.journal"))
        .or_else(|_| std::fs::read_to_string(site.dir.path().join("migrate.journal")))
        .unwrap_or_default();
    assert!(!journal.contains(secret), "{journal}");
}

/// A pg_restore that stops early (here at its first COPY) and exits 1 must
/// not leave a committed half restore: the transaction rolls back, every row
/// is still there, and the error says what failed with pg_restore's words.
#[test]
fn a_failing_pg_restore_rolls_back_and_says_so() {
    let server = server!("a_failing_pg_restore_rolls_back_and_says_so");
    let site = PgSite::new(&server);
    let out = site.xtask(&["backup"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let backup = site.backups().pop().unwrap();
    let (_wrappers, path) = wrapped_first_on_path("pg_restore", |real| {
        format!(
            "#!/bin/sh\ncase \"$1\" in --list) exec {real} \"$@\";; esac\n{real} \"$@\" | awk '/^COPY /{{exit}} {{print}}'\necho 'pg_restore: error: simulated failure' >&2\nexit 1\n"
        )
    });
    let before = site.secrets();
    let out = site
        .command(&["restore", backup.to_str().unwrap()], &[("PATH", &path)])
        .output()
        .unwrap();
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("pg_restore failed")
            && report.contains("simulated failure")
            && report.contains("rolled back"),
        "{report}"
    );
    assert_eq!(site.secrets(), before, "{report}");
    assert_eq!(site.db.versions(), shipped(), "{report}");
}

/// `migrate --job --dry-run` prints the plan (each pending migration as the
/// lint classifies it, and whether the job would refuse) and changes
/// nothing (#12; it used to be refused as a usage error).
#[test]
fn a_job_dry_run_prints_the_plan_and_changes_nothing() {
    let server = server!("a_job_dry_run_prints_the_plan_and_changes_nothing");
    let site = PgSite::new(&server);
    site.add_migration(
        &mig(next(), "secret_note"),
        "ALTER TABLE secrets ADD COLUMN note TEXT;\n",
    );
    site.add_migration(
        &mig(next() + 1, "drop_note"),
        "-- contract: nothing reads note yet\nALTER TABLE secrets DROP COLUMN note;\n",
    );
    let out = site.xtask(&["migrate", "--job", "--dry-run"], &[]);
    let plan = text(&out);
    assert!(out.status.success(), "{plan}");
    assert!(
        plan.contains(&format!("expand    {}", mig_name(next(), "secret_note")))
            && plan.contains(&format!("contract  {}", mig_name(next() + 1, "drop_note")))
            && plan.contains("refuse (exit 3)")
            && plan.contains("nothing was changed"),
        "{plan}"
    );
    assert_eq!(site.db.versions(), shipped(), "{plan}");
}

/// Rolling a release back: the database was expanded by a newer release
/// (the next migration applied, its file unknown here). Status says "ahead by 1" and exits
/// 0, `--job` and the window have nothing to do; an unknown migration in the
/// middle of the history stays an error (#12).
#[test]
fn an_older_release_runs_on_a_database_a_newer_one_expanded() {
    let server = server!("an_older_release_runs_on_a_database_a_newer_one_expanded");
    let site = PgSite::new(&server);
    site.add_migration(
        &mig(next(), "secret_note"),
        "ALTER TABLE secrets ADD COLUMN note TEXT;\n",
    );
    let out = site.xtask(&["migrate", "--job"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(site.migrations.join(mig(next(), "secret_note"))).unwrap();
    for (args, expected) in [
        (&["migrate", "status"][..], "ahead by 1"),
        (&["migrate", "--job"], "ahead of this release by 1"),
        (&["migrate"], "ahead of this release by 1"),
    ] {
        let out = site.xtask(args, &[]);
        let said = text(&out);
        assert!(out.status.success(), "{args:?}: {said}");
        assert!(said.contains(expected), "{args:?}: {said}");
    }
    // A hole in the middle is not a newer release: still refused.
    std::fs::remove_file(site.migrations.join("V3__secrets_check_constraints.sql")).unwrap();
    let postgres_v3 = site
        .migrations
        .join("postgres/V3__secrets_check_constraints.sql");
    let _ = std::fs::remove_file(postgres_v3);
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        !out.status.success() && text(&out).contains("MISSING"),
        "{}",
        text(&out)
    );
    assert_eq!(site.db.versions(), versions_to(next()));
}

/// A script named `program`, made by `script(real program's path)`, in a
/// temp folder put first on PATH; the folder (keep it alive) and that PATH.
fn wrapped_first_on_path(
    program: &str,
    script: impl FnOnce(&str) -> String,
) -> (tempfile::TempDir, String) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    let real = String::from_utf8(found.stdout).unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let wrapper = dir.path().join(program);
    std::fs::write(&wrapper, script(real.trim())).unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    (dir, path)
}

/// Restore points (server-side copies named `<db>_restorepoint_<time>`) of
/// the site's database that exist on the server.
fn restore_points(site: &PgSite) -> Vec<String> {
    site.db
        .client()
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '\\_restorepoint\\_%'",
            &[&site.db.name],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `backup` restored into a fresh database: its secrets and versions.
fn restored(server: &str, backup: &std::path::Path) -> (Vec<(String, String)>, Vec<i32>) {
    let target = PgDatabase::create(server);
    let out = Command::new("pg_restore")
        .arg("--dbname")
        .arg(&target.url)
        .arg("--no-owner")
        .arg(backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets = target
        .client()
        .query(
            "SELECT name, key_id, sealed_value FROM secrets ORDER BY name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let value = open_sealed(&name, r.get(1), r.get(2));
            (name, value)
        })
        .collect();
    (secrets, target.versions())
}

#[test]
fn the_window_makes_a_restore_point_and_saves_it_once_the_service_is_up() {
    let server = server!("the_window_makes_a_restore_point_and_saves_it_once_the_service_is_up");
    let site = PgSite::new(&server);
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    let before = site.secrets();
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("restore point: a server-side copy"), "{log}");
    assert!(log.contains("restore point: server-side copy"), "{log}");
    assert!(
        log.contains("save the restore point") && log.contains("and dropped"),
        "{log}"
    );
    assert!(
        restore_points(&site).is_empty(),
        "left {:?}",
        restore_points(&site)
    );
    assert_eq!(site.db.versions(), versions_to(next()));
    let backups = site.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        fs::metadata(&backups[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The file holds the database as it was before the migration.
    let (secrets, versions) = restored(&server, &backups[0]);
    assert_eq!(secrets, before);
    assert_eq!(versions, shipped());
    // The journal has the line too.
    let journal = fs::read_dir(site.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("journal"))
        .map(|p| fs::read_to_string(p).unwrap_or_default())
        .collect::<String>();
    assert!(journal.contains("save the restore point"), "{journal}");
}

#[test]
fn a_restore_point_left_by_a_dead_run_is_saved_and_dropped_by_the_next_run() {
    let server = server!("a_restore_point_left_by_a_dead_run_is_saved_and_dropped_by_the_next_run");
    let site = PgSite::new(&server);
    // What a run killed right after its copy leaves on the server.
    let leftover = format!("{}_restorepoint_1700000000", site.db.name);
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {leftover} TEMPLATE {}",
            site.db.name
        ))
        .unwrap();
    assert_eq!(restore_points(&site), vec![leftover.clone()]);
    site.db
        .client()
        .batch_execute("DELETE FROM secrets WHERE name = 'alpha'")
        .unwrap();
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "restore point {leftover} left by a run that died: saved to"
        )),
        "{log}"
    );
    assert!(
        restore_points(&site).is_empty(),
        "left {:?}",
        restore_points(&site)
    );
    // Two files: the dead run's restore point (both secrets) and this run's.
    let backups = site.backups();
    assert_eq!(backups.len(), 2, "{backups:?}");
    let contents: Vec<_> = backups
        .iter()
        .map(|b| restored(&server, b).0.len())
        .collect();
    assert!(
        contents.contains(&2) && contents.contains(&1),
        "{contents:?}"
    );
}

#[test]
fn without_createdb_the_window_dumps_inside_it_and_says_why() {
    let server = server!("without_createdb_the_window_dumps_inside_it_and_says_why");
    let site = PgSite::new(&server);
    let role = format!("{}_nocreatedb", site.db.name);
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOCREATEDB; GRANT postgres TO {role}"
        ))
        .unwrap();
    let url = site
        .db
        .url
        .replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(
        url, site.db.url,
        "TEST_POSTGRES_URL is expected as postgres://postgres@…"
    );
    site.add_migration(&mig(next(), "secret_note"), NEXT_EXPAND);
    let out = site.xtask(&["migrate"], &[("DATABASE_URL", &url)]);
    let log = text(&out);
    drop(admin.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE IF EXISTS {role}")));
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("the user `{role}` lacks CREATEDB")),
        "{log}"
    );
    assert!(log.contains("pg_dump inside the window instead"), "{log}");
    assert!(!log.contains("save the restore point"), "{log}");
    assert_eq!(site.db.versions(), versions_to(next()));
    let backups = site.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(restored(&server, &backups[0]).1, shipped());
}

/// V5's columns on both engines: the sealed value (BLOB → BYTEA, NUL and
/// 0xff bytes included), its key id, an API token's hash and times, and the
/// token name in the access log arrive byte-exact, and the identity of
/// `api_tokens` continues after the copied ids.
#[test]
fn db_copy_moves_sealed_values_and_api_tokens_byte_exact() {
    let server = server!("db_copy_moves_sealed_values_and_api_tokens_byte_exact");
    let source = sqlite_source();
    let sealed: Vec<u8> = (0..=255u8).rev().chain([0, 0, 0x10]).collect();
    let hash: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x80).collect();
    let conn = Connection::open(&source.db).unwrap();
    conn.execute(
        "UPDATE secrets SET sealed_value = ?1, key_id = 'key-2026-01' WHERE name = 'alpha'",
        [&sealed],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO api_tokens (id, name, token_hash, created_at, revoked_at) \
         VALUES (7, 'deploy bot', ?1, '2026-02-01T10:00:00Z', '2026-02-03T11:30:00Z')",
        [&hash],
    )
    .unwrap();
    conn.execute_batch(
        "UPDATE secret_access_log SET token_name = 'deploy bot' WHERE secret_id = 10;",
    )
    .unwrap();
    let in_source: Vec<(String, Option<Vec<u8>>, Option<String>)> = conn
        .prepare("SELECT name, sealed_value, key_id FROM secrets ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(conn);
    let target = PgSite::empty(&server);
    target.migrate_fully();
    let out = target.copy_from(&source);
    assert!(out.status.success(), "{}", text(&out));
    let mut client = target.db.client();
    let secrets: Vec<(String, Option<Vec<u8>>, Option<String>)> = client
        .query(
            "SELECT name, sealed_value, key_id FROM secrets ORDER BY name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(secrets, in_source);
    assert_eq!(
        secrets[0],
        ("alpha".into(), Some(sealed), Some("key-2026-01".into()))
    );
    let utc = |column: &str| {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
    };
    let token = client
        .query_one(
            &format!(
                "SELECT id, name, token_hash, {}, {} FROM api_tokens",
                utc("created_at"),
                utc("revoked_at")
            ),
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            token.get::<_, i64>(0),
            token.get::<_, String>(1),
            token.get::<_, Vec<u8>>(2),
            token.get::<_, String>(3),
            token.get::<_, String>(4)
        ),
        (
            7,
            "deploy bot".into(),
            hash,
            "2026-02-01T10:00:00Z".into(),
            "2026-02-03T11:30:00Z".into()
        )
    );
    let names: Vec<Option<String>> = client
        .query(
            "SELECT token_name FROM secret_access_log ORDER BY secret_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, vec![None, Some("deploy bot".into())]);
    // The next token the service creates gets an id after the copied one.
    let next_id: i64 = client
        .query_one(
            "INSERT INTO api_tokens (name, token_hash, created_at) \
             VALUES ('new', decode(repeat('ab', 32), 'hex'), now()) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        next_id > 7,
        "the identity restarted below a copied id: {next_id}"
    );
}
