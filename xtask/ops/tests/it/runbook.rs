//! `cargo xtask migrate` as the maintenance-window runbook, and `migrate
//! status`, `backup`, `restore`: the real xtask binary, a real backend process
//! (built from this workspace) taken down through maintenance mode or through
//! stop/start scripts, real HTTP health checks, real SQLite files.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use rusqlite::Connection;
use support::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn maintenance_mode_window_migrates_backs_up_and_verifies_health() {
    let site = Site::new();
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    for step in [
        "[2/7] preflight",
        "[1/7] take the migration lock",
        "[3/7] take the service down",
        "[4/7] back up",
        "[5/7] migrate",
        "[6/7] bring the service up",
        "[7/7] done",
    ] {
        assert!(report.contains(step), "missing {step}:\n{report}");
    }
    assert!(
        report.contains(&format!(
            "rehearsal {}",
            mig_name(next(), "index_created_at")
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("schema_version {}", next())),
        "{report}"
    );
    assert_eq!(site.versions(), versions_to(next()));
    assert_eq!(
        site.secrets(),
        [
            ("alpha".into(), "one".into()),
            ("beta".into(), "two".into())
        ]
    );
    assert_eq!(
        status_of(&site.health_url()),
        Some(200),
        "the service serves again"
    );
    assert!(
        !site.db.with_extension("db.maintenance").exists(),
        "the flag is gone"
    );

    let backups = site.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(mode(&backups[0]), 0o600);
    let restored_view = Connection::open(&backups[0]).unwrap();
    let backed_up: i64 = restored_view
        .query_row(
            "SELECT MAX(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        backed_up,
        i64::from(shipped_latest()),
        "the backup holds the pre-migration database"
    );
    assert_eq!(mode(&site.dir.path().join("migrate.journal")), 0o600);
    let journal = site.journal();
    assert!(
        journal.lines().count() >= 7
            && journal.contains("[5/7] migrate")
            && journal.contains("\tok\t"),
        "{journal}"
    );

    let again = site.xtask(&["migrate"], &env_refs(&env));
    assert!(
        again.status.success() && text(&again).contains("up to date"),
        "{}",
        text(&again)
    );
    assert_eq!(
        site.backups().len(),
        1,
        "nothing pending: no downtime, no backup"
    );
}

#[test]
fn stop_and_start_commands_window() {
    let site = Site::new();
    let env = site.service_scripts("");
    site.start_scripted();
    let pid_before = fs::read_to_string(site.dir.path().join("backend.pid")).unwrap();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let out = site.xtask(&["migrate"], &env_refs(&env));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ran `sh"), "{}", text(&out));
    assert_ne!(
        fs::read_to_string(site.dir.path().join("backend.pid")).unwrap(),
        pid_before,
        "the service was restarted"
    );
    assert_eq!(status_of(&site.health_url()), Some(200));
    assert_eq!(site.versions(), versions_to(next()));
}

#[test]
fn a_migration_failing_in_the_window_changes_nothing_restores_nothing_and_brings_the_service_back()
{
    let site = Site::new();
    // Passes the rehearsal (the seeded names, alpha and beta, start with
    // different letters); fails on the two rows written after it (below),
    // gamma and gecko.
    site.add_migration(
        &mig(next(), "unique_initials"),
        "CREATE UNIQUE INDEX secrets_initial_unique ON secrets (substr(name, 1, 1));\n",
    );
    let bearer = format!("authorization: {}", site.bearer("window"));
    let write_duplicate = ["gamma", "gecko"]
        .map(|name| {
            format!(
                "curl -sf -X POST -H 'content-type: application/json' -H '{bearer}' -d '{{\"name\":\"{name}\",\"value\":\"one\"}}' http://127.0.0.1:{}/api/secrets >/dev/null || exit 9",
                site.port
            )
        })
        .join("\n");
    let env = site.service_scripts(&write_duplicate);
    site.start_scripted();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("[5/7] migrate") && report.contains("UNIQUE constraint failed"),
        "{report}"
    );
    // It rolled back: restoring the backup would only risk the file's owner,
    // links and the writes of a busy disk, for nothing (#11).
    assert!(
        report.contains("the database was not changed (its transaction rolled back)")
            && !report.contains("restored from"),
        "{report}"
    );
    assert_eq!(site.versions(), shipped(), "back on the old schema");
    assert_eq!(
        site.secrets().len(),
        4,
        "the writes made before the window survive"
    );
    wait_for_health(&site.health_url(), 200);
    assert!(
        !site.journal().contains("restore backup"),
        "{}",
        site.journal()
    );
}

#[test]
fn an_unhealthy_service_after_the_migration_is_not_restored_and_the_command_is_printed() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let nowhere = format!("http://127.0.0.1:{}/health", free_port());
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_HEALTH_URL", &nowhere),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "1"),
        ],
    );
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("NOT restored automatically") && report.contains("cargo xtask restore"),
        "{report}"
    );
    assert_eq!(site.versions(), versions_to(next()), "the migration stays");
    assert_eq!(site.backups().len(), 1);
}

#[test]
fn a_service_that_keeps_the_database_locked_fails_the_window_and_changes_nothing() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let holder = Connection::open(&site.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = site.xtask(&["migrate"], &[("MIGRATE_LOCK_TIMEOUT_SECS", "1")]);
    let report = text(&out);
    assert!(!out.status.success());
    assert!(
        report.contains("still in use by another process"),
        "{report}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(site.versions(), shipped());
    assert!(site.backups().is_empty());
}

#[test]
fn a_failing_stop_command_brings_the_service_back_and_changes_nothing() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let started = site.dir.path().join("started");
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_STOP", "false"),
            ("MIGRATE_START", &format!("touch {}", started.display())),
        ],
    );
    let report = text(&out);
    assert!(!out.status.success());
    assert!(
        report.contains("the stop command failed") && report.contains("`false` exited"),
        "{report}"
    );
    assert!(
        started.exists(),
        "the start command ran to bring the service back"
    );
    assert_eq!(site.versions(), shipped());
}

#[test]
fn a_hanging_stop_command_times_out() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_STOP", "sleep 30"),
            ("MIGRATE_START", "true"),
            ("MIGRATE_COMMAND_TIMEOUT_SECS", "1"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("did not finish within 1 s"),
        "{}",
        text(&out)
    );
    assert_eq!(site.versions(), shipped());
}

#[test]
fn preflight_failures_stop_before_any_downtime() {
    type BreakIt = Box<dyn Fn(&Site)>;
    let cases: Vec<(&str, BreakIt, &str)> = vec![
        (
            "sql error",
            Box::new(|s: &Site| {
                s.add_migration(
                    &mig(next() + 1, "broken"),
                    "ALTER TABLE nope ADD COLUMN x TEXT;\n",
                )
            }),
            "rehearsal",
        ),
        (
            "edited applied",
            Box::new(|s: &Site| s.add_migration("V2__add_secret_expiry.sql", "-- edited\n")),
            "file changed since",
        ),
        (
            "duplicate version",
            Box::new(|s: &Site| s.add_migration("V4__again.sql", NEXT_INDEX)),
            "version 4 is also used by",
        ),
        (
            "stray file",
            Box::new(|s: &Site| s.add_migration("V5_missing_underscore.sql", NEXT_INDEX)),
            "refinery would skip it silently",
        ),
        ("corrupt database", Box::new(corrupt), "cargo xtask restore"),
    ];
    for (case, break_it, expected) in cases {
        let site = Site::new();
        site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
        break_it(&site);
        let before = fs::read(&site.db).unwrap();
        let flag = PathBuf::from(format!("{}.maintenance", site.db.display()));
        let out = site.xtask(&["migrate"], &[("MIGRATE_MAINTENANCE", "1")]);
        let report = text(&out);
        assert!(!out.status.success(), "{case}: {report}");
        assert!(
            report.contains("[2/7] preflight") && report.contains(expected),
            "{case}: {report}"
        );
        assert!(
            !report.contains("[3/7]"),
            "{case}: the service must not go down:\n{report}"
        );
        assert!(!flag.exists(), "{case}");
        assert_eq!(
            fs::read(&site.db).unwrap(),
            before,
            "{case}: the database changed"
        );
        assert!(site.backups().is_empty(), "{case}");
    }
}

/// Flips bytes inside the secrets table's page (not the header).
fn corrupt(site: &Site) {
    let mut bytes = fs::read(&site.db).unwrap();
    for b in bytes.iter_mut().skip(4096).take(4096) {
        *b ^= 0x5a;
    }
    fs::write(&site.db, bytes).unwrap();
}

#[test]
fn bad_database_urls_and_files_are_refused() {
    let site = Site::new();
    let missing = site.dir.path().join("missing.db");
    let out = xtask_command()
        .args([
            "migrate",
            "--database-url",
            &format!("sqlite:///{}", missing.display()),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("--create"),
        "{}",
        text(&out)
    );
    assert!(!missing.exists());
    let out = xtask_command()
        .args(["migrate", "--database-url", "mysql://x"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("sqlite:////absolute"),
        "{}",
        text(&out)
    );
    let not_sqlite = site.dir.path().join("notes.db");
    fs::write(&not_sqlite, "not a database at all\n".repeat(300)).unwrap();
    let out = xtask_command()
        .args([
            "migrate",
            "--database-url",
            &format!("sqlite:///{}", not_sqlite.display()),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("not a usable SQLite database"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unwritable_backup_folder_stops_the_preflight() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let blocker = site.dir.path().join("not-a-folder");
    fs::write(&blocker, "x").unwrap();
    let out = site.xtask(
        &["migrate"],
        &[(
            "MIGRATE_BACKUP_DIR",
            blocker.join("backups").to_str().unwrap(),
        )],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("creating the backup folder")
            && text(&out).contains("MIGRATE_BACKUP_DIR"),
        "{}",
        text(&out)
    );
    assert_eq!(site.versions(), shipped());
}

#[test]
fn a_created_backup_folder_is_private() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let backups = site.dir.path().join("vault/backups");
    let out = site.xtask(
        &["migrate"],
        &[("MIGRATE_BACKUP_DIR", backups.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&backups), 0o700);
    assert_eq!(
        fs::read_dir(&backups)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".bak"))
            .count(),
        1
    );
}

#[test]
fn a_second_run_fails_at_once_naming_the_holder_and_a_dead_holder_is_taken_over() {
    use std::io::Write;
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let lock_path = PathBuf::from(format!("{}.migrate.lock", site.db.display()));
    let mut held = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.write_all(b"cargo xtask migrate by pid 4242 on ops-host since 20260101T000000.000Z")
        .unwrap();
    held.lock().unwrap();
    let out = site.xtask(&["migrate"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("pid 4242 on ops-host since 20260101T000000.000Z"),
        "{}",
        text(&out)
    );
    assert_eq!(site.versions(), shipped());

    held.unlock().unwrap();
    drop(held);
    let out = site.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "took over a migration lock left by a run that is gone (cargo xtask migrate by pid 4242"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn dry_run_rehearses_and_changes_nothing() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let before = fs::read(&site.db).unwrap();
    let out = site.xtask(&["migrate", "--dry-run"], &[("MIGRATE_MAINTENANCE", "1")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "apply     {} (rehearsal",
            mig_name(next(), "index_created_at")
        )),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("nothing was changed"));
    assert_eq!(fs::read(&site.db).unwrap(), before);
    assert!(site.backups().is_empty() && site.journal().is_empty());
}

#[test]
fn a_dry_run_never_creates_the_database() {
    let site = Site::new();
    let missing = site.dir.path().join("new/secrets.db");
    let out = xtask_command()
        .args([
            "migrate",
            "--create",
            "--dry-run",
            "--database-url",
            &format!("sqlite:///{}", missing.display()),
            "--migrations",
        ])
        .arg(&site.migrations)
        .output()
        .unwrap();
    // It plans the first deploy (#13) and still creates nothing.
    assert!(
        out.status.success() && text(&out).contains("does not exist yet"),
        "{}",
        text(&out)
    );
    assert!(!missing.exists() && !missing.parent().unwrap().exists());
}

#[test]
fn status_is_a_deploy_gate() {
    let site = Site::new();
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        out.status.success() && text(&out).contains("up to date"),
        "{}",
        text(&out)
    );
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        !out.status.success()
            && text(&out).contains(&format!(
                "pending  {}",
                mig_name(next(), "index_created_at")
            )),
        "{}",
        text(&out)
    );
    fs::remove_file(site.migrations.join(mig(next(), "index_created_at"))).unwrap();
    site.add_migration("V2__add_secret_expiry.sql", "-- edited\n");
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        !out.status.success() && text(&out).contains("CHANGED  V2__add_secret_expiry"),
        "{}",
        text(&out)
    );
}

#[test]
fn online_backups_are_verified_private_and_rotated() {
    let site = Site::new();
    let _backend = site.start_backend();
    for _ in 0..3 {
        let out = site.xtask(&["backup"], &[("MIGRATE_KEEP_BACKUPS", "2")]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("quick_check ok"));
        std::thread::sleep(Duration::from_millis(5));
    }
    let backups = site.backups();
    assert_eq!(backups.len(), 2, "rotated to the newest two: {backups:?}");
    for backup in &backups {
        assert_eq!(mode(backup), 0o600);
        let conn = Connection::open(backup).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}

#[test]
fn restore_refuses_a_database_in_use_then_restores_and_keeps_the_replaced_file() {
    let site = restore_site();
    {
        let _backend = site.start_backend();
        wait_for_health(&site.health_url(), 200);
        let out = site.xtask(&["restore"], &[]);
        assert!(
            !out.status.success() && text(&out).contains("refusing to restore a database in use"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(site.secrets().len(), 1);
    let out = site.xtask(&["restore"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("verified byte for byte")
            && text(&out).contains("the replaced database was kept as"),
        "{}",
        text(&out)
    );
    assert_eq!(site.secrets().len(), 2, "alpha is back");
    assert_eq!(
        site.backups().len(),
        2,
        "the replaced database became one more backup"
    );
    let out = site.xtask(&["restore", "/nonexistent/x.bak"], &[]);
    assert!(
        !out.status.success() && text(&out).contains("does not exist"),
        "{}",
        text(&out)
    );
}

/// A tmpfs of `kib` KiB mounted at `path` (the tests run as root, as CI does),
/// unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: PathBuf, kib: u64) -> SmallDisk {
        fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs needs root: {}",
            text(&out)
        );
        SmallDisk { path }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_disk_that_fills_during_the_backup_leaves_no_partial_backup_and_the_database_unchanged() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let disk = SmallDisk::mount(site.dir.path().join("backups"), 4096);
    let before = fs::read(&site.db).unwrap();
    // The preflight sees room; then, with the service going down, another
    // writer fills the disk to within 16 KiB, less than the database's size.
    let filler = disk.path.join("filler");
    let fill = format!(
        "dd if=/dev/zero of={} bs=1024 count={}",
        filler.display(),
        4096 - 16
    );
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_BACKUP_DIR", disk.path.to_str().unwrap()),
            ("MIGRATE_STOP", &fill),
            ("MIGRATE_START", "true"),
        ],
    );
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("[4/7] back up") && report.contains("No space left on device"),
        "{report}"
    );
    assert!(report.contains("the database was not changed"), "{report}");
    let left: Vec<String> = fs::read_dir(&disk.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["filler", "migrate.journal"],
        "nothing but the filler and the journal: {left:?}"
    );
    assert_eq!(site.versions(), shipped());
    assert_eq!(
        fs::read(&site.db).unwrap(),
        before,
        "the database file is byte-identical"
    );
}

/// Writes secrets continuously while the window runs through maintenance
/// mode: every acknowledged write survives, the window answers only 503 with
/// Retry-After (never a 500 or a dropped connection), and the window the
/// client sees matches the downtime the runbook reports.
#[test]
fn writes_during_the_window_are_never_lost_and_see_only_503() {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
        time::Instant,
    };
    let site = Site::new();
    let bearer = site.bearer("writer");
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    // A migration slow enough (a 400 000-row table) for the window to be seen.
    site.add_migration(
        &mig(next(), "filler"),
        "CREATE TABLE filler AS\nWITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000)\nSELECT x FROM c;\n",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let base = format!("http://127.0.0.1:{}", site.port);
    let client = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let agent = agent_with_timeout(Duration::from_secs(5));
            let start = Instant::now();
            let mut log = Vec::new();
            for i in 0..20_000u32 {
                if stop.load(Ordering::Relaxed) || start.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let body =
                    serde_json::json!({"name": format!("load-{i}"), "value": format!("value-{i}")});
                let at = start.elapsed();
                let answer = agent
                    .post(format!("{base}/api/secrets"))
                    .header("authorization", &bearer)
                    .send_json(&body)
                    .map(|r| {
                        (
                            r.status().as_u16(),
                            r.headers()
                                .get("retry-after")
                                .map(|v| v.to_str().unwrap_or("").to_owned()),
                        )
                    });
                log.push((i, at, answer.map_err(|e| e.to_string())));
            }
            log
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let log = client.join().unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{report}");

    let transport_errors: Vec<_> = log.iter().filter(|(_, _, a)| a.is_err()).collect();
    assert!(
        transport_errors.is_empty(),
        "dropped connections: {transport_errors:?}"
    );
    let answers: Vec<(u32, Duration, u16, Option<String>)> = log
        .into_iter()
        .map(|(i, at, a)| {
            let (status, retry) = a.unwrap();
            (i, at, status, retry)
        })
        .collect();
    assert!(
        answers
            .iter()
            .all(|(_, _, status, _)| *status == 201 || *status == 503),
        "only 201 or 503 may be answered"
    );
    let unavailable: Vec<_> = answers
        .iter()
        .filter(|(_, _, status, _)| *status == 503)
        .collect();
    assert!(!unavailable.is_empty(), "the client never saw the window");
    assert!(
        unavailable
            .iter()
            .all(|(_, _, _, retry)| retry.as_deref() == Some("5")),
        "every 503 carries Retry-After"
    );
    let acknowledged: Vec<String> = answers
        .iter()
        .filter(|(_, _, s, _)| *s == 201)
        .map(|(i, _, _, _)| format!("load-{i}"))
        .collect();
    let stored: Vec<String> = site
        .secrets()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|n| n.starts_with("load-"))
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|name| !stored.contains(name))
        .collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    let before = answers.iter().take_while(|(_, _, s, _)| *s == 201).count();
    assert!(
        before > 0 && answers.last().unwrap().2 == 201,
        "writes happened before and after the window"
    );

    let observed = unavailable.last().unwrap().1 - unavailable.first().unwrap().1;
    let reported: f64 = report
        .split("downtime ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let reported = Duration::from_secs_f64(reported);
    let slack = Duration::from_millis(150).max(reported / 4);
    assert!(
        observed <= reported + slack && observed + slack >= reported,
        "client saw {observed:?}, the runbook reported {reported:?}"
    );
    eprintln!(
        "load: {} writes acknowledged, {} found after; {} answered 503 with Retry-After; window seen {observed:?}, reported {reported:?}",
        acknowledged.len(),
        acknowledged.len() - missing.len(),
        unavailable.len()
    );
}

#[test]
fn credentials_in_the_health_url_never_reach_output_or_journal() {
    let site = Site::new();
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let with_credentials = format!(
        "http://operator:hunter2-s3cret@127.0.0.1:{}/health",
        site.port
    );
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_MAINTENANCE", "1"),
            ("MIGRATE_HEALTH_URL", &with_credentials),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // And when the URL is part of an error.
    let dead = format!(
        "http://operator:hunter2-s3cret@127.0.0.1:{}/health",
        free_port()
    );
    site.add_migration(
        &mig(next() + 1, "index_name"),
        "CREATE INDEX secrets_key_id ON secrets (key_id);\n",
    );
    let failed = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_MAINTENANCE", "1"),
            ("MIGRATE_HEALTH_URL", &dead),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "1"),
        ],
    );
    assert!(!failed.status.success());
    for (what, seen) in [
        ("output", text(&out)),
        ("error output", text(&failed)),
        ("journal", site.journal()),
    ] {
        assert!(
            !seen.contains("hunter2"),
            "the password leaked into the {what}:\n{seen}"
        );
    }
    assert!(text(&failed).contains("***@127.0.0.1"), "{}", text(&failed));
}

#[test]
fn a_truncated_database_or_a_hand_edited_history_is_refused_before_any_downtime() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    Connection::open(&site.db)
        .unwrap()
        .execute(
            "UPDATE refinery_schema_history SET applied_on = 'last tuesday' WHERE version = 2",
            [],
        )
        .unwrap();
    let out = site.xtask(&["migrate"], &[("MIGRATE_MAINTENANCE", "1")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("row for version 2") && text(&out).contains("edited by hand"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("[3/7]"));

    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    Connection::open(&site.db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let bytes = fs::read(&site.db).unwrap();
    fs::write(&site.db, &bytes[..bytes.len() / 2]).unwrap();
    let truncated = fs::read(&site.db).unwrap();
    let out = site.xtask(&["migrate"], &[("MIGRATE_MAINTENANCE", "1")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("cargo xtask restore")
            || text(&out).contains("not a usable SQLite database"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("[3/7]"));
    assert_eq!(
        fs::read(&site.db).unwrap(),
        truncated,
        "the truncated file was left as it was"
    );
}

#[test]
fn a_wal_left_by_a_crashed_writer_is_carried_into_the_backup_and_the_migration() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let bearer = site.bearer("writer");
    let mut backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    let agent = ureq::agent();
    agent
        .post(format!("http://127.0.0.1:{}/api/secrets", site.port))
        .header("authorization", &bearer)
        .send_json(serde_json::json!({"name": "in-the-wal", "value": "x"}))
        .unwrap();
    backend.child.kill().unwrap(); // SIGKILL: no checkpoint, the -wal file stays
    backend.child.wait().unwrap();
    let wal = PathBuf::from(format!("{}-wal", site.db.display()));
    assert!(
        fs::metadata(&wal).unwrap().len() > 0,
        "the crashed writer left a WAL"
    );
    let out = site.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(site.secrets().iter().any(|(n, _)| n == "in-the-wal"));
    let backup = Connection::open(&site.backups()[0]).unwrap();
    let n: i64 = backup
        .query_row(
            "SELECT COUNT(*) FROM secrets WHERE name = 'in-the-wal'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1, "the backup holds the WAL's committed write");
}

#[test]
fn a_read_only_database_folder_is_refused_with_its_cause() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    Connection::open(&site.db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let disk = SmallDisk::mount(site.dir.path().join("ro"), 4096);
    let db = disk.path.join("secrets.db");
    fs::copy(&site.db, &db).unwrap();
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&disk.path)
        .status()
        .unwrap();
    assert!(remount.success());
    let before = fs::read(&db).unwrap();
    let out = xtask_command()
        .args([
            "migrate",
            "--database-url",
            &format!("sqlite:///{}", db.display()),
            "--migrations",
        ])
        .arg(&site.migrations)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("Read-only file system") && text(&out).contains("writable"),
        "{}",
        text(&out)
    );
    assert_eq!(fs::read(&db).unwrap(), before);
}

#[test]
fn a_health_url_that_hangs_times_out() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut streams = Vec::new();
        for stream in silent.incoming().take(20) {
            streams.push(stream);
        }
    });
    let start = std::time::Instant::now();
    let out = site.xtask(
        &["migrate"],
        &[
            ("MIGRATE_HEALTH_URL", &url),
            ("MIGRATE_HEALTH_TIMEOUT_SECS", "2"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("did not report healthy within 2 s"),
        "{}",
        text(&out)
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    drop(held);
}

/// Rotation is housekeeping: an old backup that cannot be deleted (here an
/// immutable file, `chattr +i`: the tests run as root) is a warning after a
/// successful window or backup, never a failure that claims the database
/// was not changed; and the backups after it are still rotated away.
#[test]
fn a_rotation_failure_is_a_warning_and_every_statement_stays_true() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let stuck = site.dir.path().join("secrets.db.20200101T000000.000Z.bak");
    let later = site.dir.path().join("secrets.db.20200102T000000.000Z.bak");
    fs::copy(&site.db, &stuck).unwrap();
    fs::copy(&site.db, &later).unwrap();
    /// Makes the file removable again however the test ends.
    struct Immutable(PathBuf);
    fn chattr(flag: &str, path: &Path) -> bool {
        let done = std::process::Command::new("chattr")
            .arg(flag)
            .arg(path)
            .status();
        done.is_ok_and(|s| s.success())
    }
    impl Drop for Immutable {
        fn drop(&mut self) {
            chattr("-i", &self.0);
        }
    }
    assert!(
        chattr("+i", &stuck),
        "chattr +i failed: run as root on ext4 or tmpfs"
    );
    let _guard = Immutable(stuck.clone());
    let keep_one = [("MIGRATE_KEEP_BACKUPS", "1")];
    let out = site.xtask(&["migrate"], &keep_one);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(site.versions(), versions_to(next()), "{report}");
    assert!(
        report.contains("warning: rotating old backups failed")
            && report.contains("20200101T000000.000Z"),
        "{report}"
    );
    assert!(!report.contains("not changed"), "{report}");
    assert!(
        site.journal().contains("[5/7] migrate"),
        "{}",
        site.journal()
    );
    let again = site.xtask(&["backup"], &keep_one);
    let said = text(&again);
    assert!(again.status.success(), "{said}");
    assert!(
        said.contains("warning: rotating old backups failed")
            && !said.contains("no partial backup"),
        "{said}"
    );
    assert!(
        !later.exists(),
        "rotation stopped at the file it could not remove"
    );
    assert!(stuck.exists());
}

/// The restore command printed after an unhealthy start is safe to paste:
/// a path with spaces, quotes and `$(…)` stays one word and runs nothing.
#[test]
fn the_printed_restore_command_is_quoted_and_works_when_pasted() {
    let site = Site::new();
    let odd = site.dir.path().join("a b $(touch PWNED) it's");
    fs::create_dir(&odd).unwrap();
    let db = odd.join("secrets.db");
    fs::copy(&site.db, &db).unwrap();
    let url = format!("sqlite:///{}", db.display());
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let nowhere = format!("http://127.0.0.1:{}/health", free_port());
    let out = xtask_command()
        .args(["migrate", "--database-url", &url, "--migrations"])
        .arg(&site.migrations)
        .env("MIGRATE_HEALTH_URL", &nowhere)
        .env("MIGRATE_HEALTH_TIMEOUT_SECS", "1")
        .output()
        .unwrap();
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    let printed = report
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo xtask restore "))
        .unwrap_or_else(|| panic!("no restore command printed:\n{report}"));
    let pasted = printed.replacen(
        "cargo xtask",
        &format!("'{}'", support::workspace_binary("xtask").display()),
        1,
    );
    let restored = Command::new("sh")
        .arg("-c")
        .arg(&pasted)
        .env("SECRETS_OPS", env!("CARGO_BIN_EXE_secrets-ops"))
        // Pasted where `cargo xtask` works: in the checkout.
        .current_dir(support::repo_root())
        .output()
        .unwrap();
    assert!(restored.status.success(), "{pasted}\n{}", text(&restored));
    let conn = Connection::open(&db).unwrap();
    let versions: i64 = conn
        .query_row(
            "SELECT MAX(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        versions,
        i64::from(shipped_latest()),
        "the pasted command restored the backup"
    );
    assert!(
        !site.dir.path().join("PWNED").exists() && !odd.join("PWNED").exists(),
        "the pasted command ran a substitution: {pasted}"
    );
}

/// Health settings are checked before anything goes down: a URL that is not
/// one, or no time to answer, is refused with the database untouched.
#[test]
fn bad_health_settings_are_refused_before_any_downtime() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let before = fs::read(&site.db).unwrap();
    for (key, value, named) in [
        ("MIGRATE_HEALTH_URL", "not a url", "MIGRATE_HEALTH_URL"),
        (
            "MIGRATE_HEALTH_URL",
            "ftp://127.0.0.1/health",
            "MIGRATE_HEALTH_URL",
        ),
        (
            "MIGRATE_HEALTH_TIMEOUT_SECS",
            "0",
            "MIGRATE_HEALTH_TIMEOUT_SECS",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = site.xtask(&["migrate"], &[(key, value)]);
        let report = text(&out);
        assert!(!out.status.success(), "{key}={value}: {report}");
        assert!(report.contains(named), "{key}={value}: {report}");
        assert!(
            !report.contains("[3/7]"),
            "{key}={value}: went down: {report}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{key}={value}: waited"
        );
        assert_eq!(site.versions(), shipped(), "{key}={value}");
        assert!(
            site.backups().is_empty(),
            "{key}={value}: a backup was taken"
        );
    }
    assert_eq!(fs::read(&site.db).unwrap(), before);
}

/// A maintenance flag an operator set before the run (with a note in it) is
/// theirs: the window leaves it byte for byte, the service stays in
/// maintenance, and the output says so instead of "kept" then removing it.
#[test]
fn an_operators_own_maintenance_flag_is_left_exactly_as_it_was() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let flag = site.dir.path().join("secrets.db.maintenance");
    let note = "deploy freeze until 18:00 -- alice\n";
    fs::write(&flag, note).unwrap();
    let _backend = site.start_backend();
    wait_for_health(&site.health_url(), 503);
    let env = site.maintenance_env();
    let out = site.xtask(&["migrate"], &env_refs(&env));
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(site.versions(), versions_to(next()), "{report}");
    assert_eq!(fs::read_to_string(&flag).unwrap(), note, "{report}");
    assert!(
        report.contains("set by someone else") && report.contains("stays in maintenance"),
        "{report}"
    );
    assert!(!report.contains("removed maintenance flag"), "{report}");
    assert_eq!(
        status_of(&site.health_url()),
        Some(503),
        "still in maintenance"
    );
}

/// The live database holds every secret: `--create` makes it (and the
/// folders it creates) private, and a database other users can read is
/// warned about in the preflight.
#[test]
fn a_new_database_is_private_and_a_readable_one_is_warned_about() {
    let site = Site::new();
    let folder = site.dir.path().join("new").join("deeper");
    let db = folder.join("secrets.db");
    let url = format!("sqlite:///{}", db.display());
    let out = xtask_command()
        .args([
            "migrate",
            "--create",
            "--database-url",
            &url,
            "--migrations",
        ])
        .arg(&site.migrations)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&site.dir.path().join("new")), 0o700);
    assert_eq!(mode(&folder), 0o700);
    for file in ["secrets.db", "secrets.db-wal", "secrets.db-shm"] {
        let path = folder.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let out = xtask_command()
        .args([
            "migrate",
            "--dry-run",
            "--database-url",
            &url,
            "--migrations",
        ])
        .arg(&site.migrations)
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("readable by every user") && report.contains("chmod 600"),
        "{report}"
    );
}

/// Credentials in a stop or start command are redacted in every line the
/// window prints, the header and the dry run's plan included.
#[test]
fn credentials_in_service_commands_are_never_printed() {
    let site = Site::new();
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let env = [
        (
            "MIGRATE_STOP",
            "true http://admin:StopLEAK@127.0.0.1:9/stop",
        ),
        (
            "MIGRATE_START",
            "true http://admin:StopLEAK@127.0.0.1:9/start",
        ),
    ];
    for args in [&["migrate", "--dry-run"][..], &["migrate"]] {
        let out = site.xtask(args, &env);
        let report = text(&out);
        assert!(out.status.success(), "{args:?}: {report}");
        assert!(!report.contains("StopLEAK"), "{args:?}: {report}");
        assert!(
            report.contains("http://admin:***@127.0.0.1:9/stop"),
            "{args:?}: {report}"
        );
    }
    assert!(!site.journal().contains("StopLEAK"), "{}", site.journal());
}

/// A restore keeps what the service needs to open the database: the owner,
/// group and mode of the file it replaces, and a symbolic link at the
/// database's path (the real file is restored, the link kept).
#[test]
fn restore_keeps_the_owner_mode_and_a_symlinked_path() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        text(&uid).trim(),
        "0",
        "this test changes file owners: run it as root, as CI does"
    );
    let site = Site::new();
    let out = site.xtask(&["backup"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let backup = site.backups().pop().unwrap();
    let conn = Connection::open(&site.db).unwrap();
    support::insert_sealed(&conn, "later", "x", "2026-01-03T00:00:00Z");
    drop(conn);
    std::os::unix::fs::chown(&site.db, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&site.db, fs::Permissions::from_mode(0o640)).unwrap();
    let link = site.dir.path().join("link.db");
    std::os::unix::fs::symlink(&site.db, &link).unwrap();
    let out = xtask_command()
        .arg("restore")
        .arg(&backup)
        .args(["--database-url", &format!("sqlite:///{}", link.display())])
        .env("MIGRATE_BACKUP_DIR", site.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    let meta = fs::metadata(&site.db).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (65534, 65534, 0o640)
    );
    assert_eq!(site.secrets().len(), 2, "the real file holds the backup");
}

/// A healthy database on a read-only filesystem is not called corrupt (and
/// no restore is advised): the message says what is wrong.
#[test]
fn a_read_only_database_is_not_called_corrupt() {
    let site = Site::new();
    let folder = site.dir.path().join("ro");
    fs::create_dir(&folder).unwrap();
    fs::copy(&site.db, folder.join("secrets.db")).unwrap();
    let path = folder.to_str().unwrap();
    let mounted = Command::new("mount")
        .args(["--bind", path, path])
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "bind mount (the tests run as root, as CI does)"
    );
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro,bind", path])
        .status()
        .unwrap();
    let url = format!("sqlite:///{}/secrets.db", path);
    let out = xtask_command()
        .args(["migrate", "status", "--database-url", &url])
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(path).status();
    assert!(remounted.success(), "read-only remount");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("cannot be opened for writing") && said.contains("read-only"),
        "{said}"
    );
    assert!(
        !said.contains("corrupt") && !said.contains("restore a backup"),
        "{said}"
    );
}

/// Temp files never accumulate: a successful backup leaves none (no `-wal`
/// or `-shm` named after its temp file), a rejected restore source gets none
/// beside it, and what a killed backup or restore left is removed by the
/// next backup or restore, which says so.
#[test]
fn temp_files_never_accumulate() {
    let site = Site::new();
    let strays = |site: &Site| -> Vec<String> {
        fs::read_dir(site.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.contains(".xtask-tmp")
                    || (n.contains(".bak") && (n.ends_with("-wal") || n.ends_with("-shm")))
            })
            .collect()
    };
    let out = site.xtask(&["backup"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(strays(&site), Vec::<String>::new(), "after a backup");
    let junk = site.dir.path().join("not-a-backup.bak");
    fs::write(&junk, "this is not a database").unwrap();
    let out = site.xtask(&["restore", junk.to_str().unwrap()], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let beside: Vec<String> = ["-wal", "-shm"]
        .iter()
        .map(|s| format!("not-a-backup.bak{s}"))
        .filter(|n| site.dir.path().join(n).exists())
        .collect();
    assert!(beside.is_empty(), "a rejected source got {beside:?}");
    // What killed runs leave: a full-size temp backup with its journal, an
    // unfinished pre-restore copy.
    for name in [
        ".secrets.db.20260101T000000.000Z.bak.xtask-tmp",
        ".secrets.db.20260101T000000.000Z.bak.xtask-tmp-journal",
        ".secrets.db.20260101T000000.000Z.pre-restore.bak.xtask-tmp",
    ] {
        fs::write(site.dir.path().join(name), "left by a dead run").unwrap();
    }
    let out = site.xtask(&["backup"], &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("recovered: removed"), "{said}");
    assert_eq!(strays(&site), Vec::<String>::new(), "{said}");
}

/// Backups are ordered by fact: one named by a clock a year ahead is not
/// taken for the newest by `restore` nor kept over real ones by rotation;
/// `restore` without an argument says which it chose and why.
#[test]
fn backups_are_ordered_by_fact_not_by_the_clock() {
    let site = Site::new();
    let out = site.xtask(&["backup"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    // What a run with its clock far ahead would have left (an older state).
    let ahead = site.dir.path().join("secrets.db.20991231T000000.000Z.bak");
    fs::copy(site.backups()[0].clone(), &ahead).unwrap();
    let conn = Connection::open(&site.db).unwrap();
    support::insert_sealed(&conn, "newer", "x", "2026-01-03T00:00:00Z");
    drop(conn);
    let out = site.xtask(&["backup"], &[("MIGRATE_KEEP_BACKUPS", "2")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !ahead.exists(),
        "rotation kept the clock-ahead backup over a real one"
    );
    let out = site.xtask(&["restore"], &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("the last taken of the 2 backup(s)") && said.contains("by sequence number"),
        "{said}"
    );
    assert_eq!(
        site.secrets().len(),
        3,
        "the newest backup (with `newer`) was restored: {said}"
    );
}

/// An online backup finishes under steady writes: a writer committing as
/// fast as it can (far above 100 commits/s) does not restart it. Bounded:
/// the backup must finish within 60 s (its idle time is well under 1 s).
#[test]
fn an_online_backup_finishes_under_steady_writes() {
    let site = Site::new();
    // About 64 MB: a paged backup takes many steps, each a chance to restart.
    fill_with_16_kib_secrets(&site, 4000);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (site.db.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut commits = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                conn.execute(
                    "INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES (?1, x'77', 'test', '2026-01-01T00:00:00Z')",
                    [format!("w-{commits}")],
                )
                .unwrap();
                commits += 1;
            }
            commits
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let mut backup = site.command(&["backup"], &[]).spawn().unwrap();
    let finished = loop {
        if let Some(status) = backup.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = backup.kill();
            let _ = backup.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let commits = writer.join().unwrap();
    let status = finished
        .unwrap_or_else(|| panic!("the backup did not finish in 60 s under {commits} commits"));
    assert!(status.success());
    assert!(commits > 100, "the writer committed only {commits} times");
    let newest = site.backups().pop().unwrap();
    let copy = Connection::open(&newest).unwrap();
    let ok: String = copy
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// Long steps draw progress on a terminal (here a pseudo-terminal through
/// `script`), and only there: piped output keeps plain `[n/7]` lines.
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let site = Site::new();
    fill_with_16_kib_secrets(&site, 6000);
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    let mut piped = site.command(&["migrate", "--dry-run"], &[]);
    let plain = text(&piped.output().unwrap());
    assert!(
        !plain.contains('\r') && !plain.contains("[#") && !plain.contains("[."),
        "{plain}"
    );
    let command = site.command(&["migrate"], &[]);
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm");
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let out = script.output().unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    // A bar: `  back up   [#####.....] 12/94 MiB`, redrawn with `\r`.
    let bar = shown.contains("[#") || shown.contains("[.");
    assert!(bar && shown.contains("[4/7] back up"), "{shown}");
    assert_eq!(site.versions(), versions_to(next()));
}

/// `rows` more secrets of 16 KiB each, in one transaction.
fn fill_with_16_kib_secrets(site: &Site, rows: usize) {
    let conn = Connection::open(&site.db).unwrap();
    let value = vec![b'v'; 16 * 1024];
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..rows {
        conn.execute(
            "INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES (?1, ?2, 'test', '2026-01-01T00:00:00Z')",
            rusqlite::params![format!("bulk-{i}"), &value],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
}
