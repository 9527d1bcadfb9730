//! Fault injection: the real xtask, built with the `failpoints` feature, is
//! killed with SIGKILL at every named step boundary of `migrate` and
//! `restore`, or made to fail there; then the end state must be valid before
//! or valid after, and a plain re-run must finish the job and clean up.
//! Run with `make test-faults` (make test-faults).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

#[path = "it/support/mod.rs"]
mod support;

use std::{fs, path::PathBuf, process::Stdio, time::Duration};

use rusqlite::Connection;
use support::*;

/// Every failpoint of `migrate`, in runbook order.
const MIGRATE_POINTS: &[&str] = &[
    "after-lock",
    "after-service-down",
    "mid-backup",
    "after-backup",
    "mid-migration",
    "after-migration",
    "before-service-up",
    "after-service-up",
];

const RESTORE_POINTS: &[&str] = &[
    "restore-after-lock",
    "restore-after-keep",
    "restore-mid-copy",
    "restore-after-rename",
];

/// Runs the command until it reports the paused failpoint, then SIGKILLs it.
fn kill_at(cmd: std::process::Command, point: &str) {
    let mut child = paused_at(cmd, point);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Runs the command made to fail at `point`; asserts it failed; its output.
fn failing_at(mut cmd: std::process::Command, point: &str) -> String {
    let out = cmd
        .env("XTASK_FAILPOINT", format!("{point}=error"))
        .output()
        .unwrap();
    let report = text(&out);
    assert!(!out.status.success(), "{point}: {report}");
    report
}

/// Starts the command and returns it paused at the failpoint `point`.
fn paused_at(mut cmd: std::process::Command, point: &str) -> std::process::Child {
    let mut child = cmd
        .env("XTASK_FAILPOINT", format!("{point}=pause"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let wanted = format!("failpoint {point} reached");
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains(&wanted) => break,
            Ok(line) => seen.push_str(&format!("{line}\n")),
            Err(_) => {
                let _ = child.kill();
                panic!("{point} was never reached:\n{seen}");
            }
        }
    }
    child
}

fn leftovers(site: &Site) -> Vec<String> {
    fs::read_dir(site.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xtask-tmp") || n.starts_with(".xtask-rehearsal-"))
        .collect()
}

fn flag(site: &Site) -> PathBuf {
    PathBuf::from(format!("{}.maintenance", site.db.display()))
}

/// The database is valid before (the shipped latest) or valid after (the
/// next migration): integrity holds,
/// the secrets are all there, and "before" is byte-identical to the start.
fn assert_before_or_after(site: &Site, before: &[u8], point: &str) -> Vec<i64> {
    let versions = site.versions();
    let conn = Connection::open(&site.db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "{point}");
    assert_eq!(site.secrets().len(), 2, "{point}: rows lost");
    if versions == shipped() {
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        drop(conn);
        assert_eq!(
            fs::read(&site.db).unwrap(),
            before,
            "{point}: not byte-identical to before"
        );
    } else {
        assert_eq!(
            versions,
            versions_to(next()),
            "{point}: neither before nor after"
        );
    }
    versions
}

/// Every file under a backup's final name is a complete backup of the
/// shipped latest.
fn assert_backups_complete(site: &Site, point: &str) {
    for backup in site.backups() {
        let conn = Connection::open(&backup).unwrap();
        let ok: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap();
        let version: i64 = conn
            .query_row(
                "SELECT MAX(version) FROM refinery_schema_history",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            (ok.as_str(), version),
            ("ok", i64::from(shipped_latest())),
            "{point}: {} is not a complete backup",
            backup.display()
        );
    }
}

/// Sets up a serving site with the next migration pending; returns it, its backend and the
/// database's bytes (checkpointed).
fn serving_site() -> (Site, Backend, Vec<u8>) {
    let site = Site::new();
    let conn = Connection::open(&site.db).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(conn);
    let before = fs::read(&site.db).unwrap();
    let backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(&mig(next(), "index_created_at"), NEXT_INDEX);
    (site, backend, before)
}

fn rerun_finishes(site: &Site, env: &[(&str, &str)], point: &str) -> String {
    let out = site.xtask(&["migrate"], env);
    let report = text(&out);
    assert!(
        out.status.success(),
        "{point}: the re-run failed:\n{report}"
    );
    assert_eq!(site.versions(), versions_to(next()), "{point}");
    wait_for_health(&site.health_url(), 200);
    assert!(
        !flag(site).exists(),
        "{point}: the maintenance flag was left"
    );
    assert!(
        leftovers(site).is_empty(),
        "{point}: left {:?}",
        leftovers(site)
    );
    report
}

#[test]
fn migrate_killed_at_every_step_ends_valid_and_a_rerun_finishes_and_cleans_up() {
    for point in MIGRATE_POINTS {
        let (site, _backend, before) = serving_site();
        let env = site.maintenance_env();
        kill_at(site.command(&["migrate"], &env_refs(&env)), point);
        assert_before_or_after(&site, &before, point);
        assert_backups_complete(&site, point);
        let report = rerun_finishes(&site, &env_refs(&env), point);
        assert!(
            report.contains("took over a migration lock left by a run that is gone"),
            "{point}: {report}"
        );
    }
}

#[test]
fn migrate_failing_at_every_step_names_it_and_ends_valid_with_the_service_up() {
    for point in MIGRATE_POINTS {
        let (site, _backend, before) = serving_site();
        let env = site.maintenance_env();
        let report = failing_at(site.command(&["migrate"], &env_refs(&env)), point);
        assert!(
            report.contains(&format!("failpoint `{point}`")) && report.contains("failed"),
            "{point}: {report}"
        );
        let failed_step = report
            .lines()
            .find(|l| l.contains("FAILED"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            failed_step.starts_with('['),
            "{point}: the failed step is named: {report}"
        );
        assert_before_or_after(&site, &before, point);
        assert_backups_complete(&site, point);
        wait_for_health(&site.health_url(), 200);
        assert!(
            !flag(&site).exists(),
            "{point}: the service was left in maintenance"
        );
        rerun_finishes(&site, &env_refs(&env), point);
    }
}

fn assert_restore_state(site: &Site, point: &str) {
    let conn = Connection::open(&site.db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "{point}");
    let n = site.secrets().len();
    assert!(
        n == 1 || n == 2,
        "{point}: neither the old database nor the backup ({n} secrets)"
    );
}

#[test]
fn restore_killed_or_failing_at_every_step_ends_valid_and_a_rerun_finishes() {
    for point in RESTORE_POINTS {
        for mode in ["kill", "error"] {
            let site = restore_site();
            if mode == "kill" {
                kill_at(site.command(&["restore"], &[]), point);
            } else {
                let out = site
                    .command(&["restore"], &[])
                    .env("XTASK_FAILPOINT", format!("{point}=error"))
                    .output()
                    .unwrap();
                assert!(
                    !out.status.success() && text(&out).contains(&format!("failpoint `{point}`")),
                    "{point}: {}",
                    text(&out)
                );
            }
            assert_restore_state(&site, point);
            let out = site.xtask(&["restore"], &[]);
            assert!(
                out.status.success(),
                "{point} {mode}: the re-run failed:\n{}",
                text(&out)
            );
            assert_eq!(
                site.secrets().len(),
                2,
                "{point} {mode}: the re-run restored the wrong file"
            );
            assert!(
                leftovers(&site).is_empty(),
                "{point} {mode}: left {:?}",
                leftovers(&site)
            );
        }
    }
}

/// Every failpoint of `release` for the four files of `release_repo`.
fn release_points() -> Vec<String> {
    let mut points: Vec<String> = (1..=4)
        .map(|i| format!("release-after-write-{i}"))
        .collect();
    points.extend(
        [
            "release-after-commit",
            "release-before-tag",
            "release-before-publish",
            "release-after-publish",
        ]
        .map(String::from),
    );
    points.extend((1..=4).map(|i| format!("release-after-rename-{i}")));
    points
}

/// Tracked files, HEAD and tags: the repository as a user sees it.
fn repository(dir: &std::path::Path) -> (Vec<(String, Vec<u8>)>, String, String) {
    let files = git(dir, &["ls-files"])
        .lines()
        .map(|f| (f.to_owned(), fs::read(dir.join(f)).unwrap()))
        .collect();
    (
        files,
        git(dir, &["rev-parse", "HEAD"]),
        git(dir, &["tag", "--list"]),
    )
}

/// Untouched (same HEAD, no tag, tracked files byte-identical) or released
/// (the tag on a `Release v0.2.0` HEAD whose tree holds the new version).
fn assert_untouched_or_released(
    dir: &std::path::Path,
    before: &(Vec<(String, Vec<u8>)>, String, String),
    point: &str,
) -> bool {
    let now = repository(dir);
    if now.1 == before.1 {
        assert_eq!(
            &now, before,
            "{point}: HEAD did not move, so nothing may have changed"
        );
        return false;
    }
    assert_eq!(now.2, "v0.2.0", "{point}");
    assert_eq!(
        git(dir, &["rev-parse", "v0.2.0^{commit}"]),
        now.1,
        "{point}: the tag is on HEAD"
    );
    assert_eq!(
        git(dir, &["log", "-1", "--format=%s"]),
        "Release v0.2.0",
        "{point}"
    );
    assert_eq!(
        git(dir, &["show", "HEAD:VERSION.txt"]),
        "v=0.2.0",
        "{point}"
    );
    true
}

fn release_cmd(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = xtask_command();
    cmd.arg("--repo").arg(dir).args(["release", "0.2.0"]);
    cmd
}

fn assert_rerun_releases(dir: &std::path::Path, point: &str) {
    let out = release_cmd(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{point}: the re-run failed:\n{}",
        text(&out)
    );
    assert_eq!(
        git(dir, &["status", "--porcelain", "--untracked-files=all"]),
        "",
        "{point}: the tree is not clean"
    );
    assert_eq!(git(dir, &["tag", "--list"]), "v0.2.0", "{point}");
    assert_eq!(
        git(dir, &["log", "--format=%s"])
            .lines()
            .filter(|l| *l == "Release v0.2.0")
            .count(),
        1,
        "{point}"
    );
    assert_eq!(
        fs::read_to_string(dir.join("VERSION.txt")).unwrap(),
        "v=0.2.0\n",
        "{point}"
    );
}

#[test]
fn release_killed_or_failing_at_every_step_is_untouched_or_released_and_a_rerun_finishes() {
    for point in release_points() {
        for mode in ["kill", "error"] {
            let repo = release_repo();
            let dir = repo.path();
            let before = repository(dir);
            if mode == "kill" {
                kill_at(release_cmd(dir), &point);
            } else {
                let out = release_cmd(dir)
                    .env("XTASK_FAILPOINT", format!("{point}=error"))
                    .output()
                    .unwrap();
                assert!(!out.status.success(), "{point}: {}", text(&out));
                assert!(
                    text(&out).contains(&format!("failpoint `{point}`")),
                    "{point}: {}",
                    text(&out)
                );
            }
            let released = assert_untouched_or_released(dir, &before, &format!("{point} {mode}"));
            let published = ["release-after-publish", "release-after-rename"]
                .iter()
                .any(|p| point.starts_with(p));
            assert_eq!(
                released, published,
                "{point} {mode}: the ref transaction is the commit point"
            );
            assert_rerun_releases(dir, &format!("{point} {mode}"));
        }
    }
}

/// The Postgres window's failpoints, in runbook order (no `after-backup`:
/// the dump is published at its end).
const PG_MIGRATE_POINTS: &[&str] = &[
    "after-lock",
    "after-service-down",
    "after-restore-point",
    "mid-backup",
    "mid-migration",
    "after-migration",
    "before-service-up",
    "after-service-up",
];

/// A Postgres site with its backend serving and `V{next}__secret_note` pending.
fn serving_pg_site_with_v5_pending(server: &str) -> (pg::PgSite, Backend) {
    let site = pg::PgSite::new(server);
    let backend = site.start_backend();
    wait_for_health(&site.health_url(), 200);
    site.add_migration(
        &mig(next(), "secret_note"),
        "ALTER TABLE secrets ADD COLUMN note TEXT;\n",
    );
    (site, backend)
}

#[test]
fn postgres_migrate_killed_at_every_step_ends_valid_and_a_rerun_finishes_and_cleans_up() {
    let Some(server) = pg::server(
        "postgres_migrate_killed_at_every_step_ends_valid_and_a_rerun_finishes_and_cleans_up",
    ) else {
        return;
    };
    for point in PG_MIGRATE_POINTS {
        let (site, _backend) = serving_pg_site_with_v5_pending(&server);
        let env = site.maintenance_env();
        kill_at(site.command(&["migrate"], &env_refs(&env)), point);
        // Before or after, never between: one transaction.
        let versions = site.db.versions();
        assert!(
            versions == shipped() || versions == versions_to(next()),
            "{point}: {versions:?}"
        );
        assert_eq!(site.secrets().len(), 2, "{point}: rows lost");
        let out = site.xtask(&["migrate"], &env_refs(&env));
        let report = text(&out);
        assert!(
            out.status.success(),
            "{point}: the re-run failed:\n{report}"
        );
        assert!(
            report.contains("took over a migration lock left by a run that is gone"),
            "{point}: {report}"
        );
        assert_eq!(site.db.versions(), versions_to(next()), "{point}");
        assert_eq!(
            restore_points(&site.db),
            0,
            "{point}: a restore point was left"
        );
        wait_for_health(&site.health_url(), 200);
        assert!(
            !site.flag().exists(),
            "{point}: the maintenance flag was left"
        );
        let temp: Vec<_> = fs::read_dir(site.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".xtask-tmp"))
            .collect();
        assert!(temp.is_empty(), "{point}: left {temp:?}");
        for backup in site.backups() {
            let listing = std::process::Command::new("pg_restore")
                .arg("--list")
                .arg(&backup)
                .output()
                .unwrap();
            assert!(
                listing.status.success(),
                "{point}: {} is incomplete",
                backup.display()
            );
        }
    }
}

#[test]
fn postgres_restore_and_copy_killed_before_commit_leave_the_target_as_it_was() {
    let Some(server) =
        pg::server("postgres_restore_and_copy_killed_before_commit_leave_the_target_as_it_was")
    else {
        return;
    };
    // restore: killed with the script fed to psql but not committed.
    let site = pg::PgSite::new(&server);
    assert!(site.xtask(&["backup"], &[]).status.success());
    site.db
        .client()
        .batch_execute("DELETE FROM secrets WHERE name = 'alpha'")
        .unwrap();
    kill_at(site.command(&["restore"], &[]), "mid-restore");
    // psql outlives the xtask: wait until it has seen the end of its input
    // and left, so what it did (or did not) commit is final.
    wait_for_no_sessions(&site.db);
    assert_eq!(site.secrets(), [("beta".to_owned(), "two".to_owned())]);
    assert!(site.xtask(&["restore"], &[]).status.success());
    assert_eq!(site.secrets().len(), 2);
    // db copy: killed after the load and the checks, before the commit.
    let source = Site::new();
    let target = pg::PgSite::empty(&server);
    target.migrate_fully();
    kill_at(
        target.command(
            &[
                "db",
                "copy",
                "--from",
                &source.url(),
                "--to",
                &target.db.url,
            ],
            &[],
        ),
        "copy-before-commit",
    );
    wait_for_no_sessions(&target.db);
    assert_eq!(target.db.count("SELECT count(*) FROM secrets"), 0);
    let out = target.xtask(
        &[
            "db",
            "copy",
            "--from",
            &source.url(),
            "--to",
            &target.db.url,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(target.db.count("SELECT count(*) FROM secrets"), 2);
}

/// Waits until no session but the caller's is connected to the database.
fn wait_for_no_sessions(db: &pg::PgDatabase) {
    for _ in 0..200 {
        let others = db.count(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        );
        if others == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("sessions stayed connected to {}", db.name);
}

/// What a failed Postgres window says about the database is true: before
/// the commit it was not changed; after the commit (it used to say "not
/// changed" there too) it is at the new version, and the backup is named.
#[test]
fn postgres_a_failure_after_the_commit_is_reported_as_committed() {
    let Some(server) = pg::server("postgres_a_failure_after_the_commit_is_reported_as_committed")
    else {
        return;
    };
    for (point, committed) in [("mid-migration", false), ("after-migration", true)] {
        let (site, _backend) = serving_pg_site_with_v5_pending(&server);
        let env = site.maintenance_env();
        let report = failing_at(site.command(&["migrate"], &env_refs(&env)), point);
        if committed {
            assert_eq!(site.db.versions(), versions_to(next()), "{point}");
            assert!(
                report.contains(&format!(
                    "the migration had committed: the database is at schema version {}",
                    next()
                )) && report.contains("its backup from before the window is")
                    && !report.contains("not changed"),
                "{point}: {report}"
            );
            // The restore point was written to that file before the service came back.
            let backups = site.backups();
            assert_eq!(backups.len(), 1, "{point}: {backups:?}");
            assert!(
                report.contains(&backups[0].display().to_string()),
                "{point}: {report}"
            );
        } else {
            assert_eq!(site.db.versions(), shipped(), "{point}");
            assert!(
                report.contains("the database was not changed (its transaction rolled back)"),
                "{point}: {report}"
            );
        }
        assert_eq!(site.secrets().len(), 2, "{point}: rows lost");
        assert_eq!(
            restore_points(&site.db),
            0,
            "{point}: a restore point was left"
        );
        wait_for_health(&site.health_url(), 200);
    }
}

/// Restore points of `db` on the server (`<db>_restorepoint_<time>`).
fn restore_points(db: &pg::PgDatabase) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_restorepoint\\_%'",
        db.name
    ))
}

/// SQLite: what a failed window says about the database is true, and it
/// restores only what needs restoring: before the commit nothing changed
/// (no restore); after it, the verified backup is put back.
#[test]
fn sqlite_a_failure_before_or_after_the_commit_is_undone_as_needed_and_said_truly() {
    for (point, committed) in [("mid-migration", false), ("after-migration", true)] {
        let (site, _backend, _) = serving_site();
        let env = site.maintenance_env();
        let report = failing_at(site.command(&["migrate"], &env_refs(&env)), point);
        assert_eq!(site.versions(), shipped(), "{point}: {report}");
        assert_eq!(site.secrets().len(), 2, "{point}: rows lost");
        if committed {
            assert!(
                report.contains("the migration had committed; the database was restored from"),
                "{point}: {report}"
            );
            assert!(site.journal().contains("restore backup"), "{point}");
        } else {
            assert!(
                report.contains("the database was not changed (its transaction rolled back)")
                    && !report.contains("restored from"),
                "{point}: {report}"
            );
            assert!(!site.journal().contains("restore backup"), "{point}");
        }
        wait_for_health(&site.health_url(), 200);
    }
}

/// During someone else's window, `backup` and `migrate status` say the
/// database is locked by the running migration and name it, instead of
/// calling it corrupt and advising a restore (#11).
#[test]
fn commands_during_a_window_name_the_running_migration() {
    let site = Site::new();
    site.add_migration(
        &mig(next(), "index_created_at"),
        "CREATE INDEX secrets_created_at ON secrets (created_at);\n",
    );
    let mut window = paused_at(site.command(&["migrate"], &[]), "mid-backup");
    for args in [&["backup"][..], &["migrate", "status"]] {
        let out = site.xtask(args, &[]);
        let said = text(&out);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("cargo xtask migrate by pid"),
            "{args:?}: {said}"
        );
        assert!(
            !said.contains("corrupt") && !said.contains("restore a backup"),
            "{args:?}: {said}"
        );
    }
    window.kill().unwrap();
    window.wait().unwrap();
    // Mid-migration the database can be read: status is true for now, and
    // says a migration is running.
    let mut window = paused_at(site.command(&["migrate"], &[]), "mid-migration");
    let out = site.xtask(&["migrate", "status"], &[]);
    assert!(
        text(&out).contains("holds the migration lock right now: cargo xtask migrate by pid"),
        "{}",
        text(&out)
    );
    window.kill().unwrap();
    window.wait().unwrap();
}

/// A release killed after its commit point: a dry run says a recovery is
/// pending and changes nothing; the real run then finishes it.
#[test]
fn a_dry_run_after_a_killed_release_reports_the_pending_recovery() {
    let repo = release_repo();
    let dir = repo.path();
    kill_at(release_cmd(dir), "release-after-rename-1");
    let before = repository(dir);
    let mut dry = release_cmd(dir);
    let out = dry.arg("--dry-run").output().unwrap();
    assert!(
        text(&out).contains("a real run would first finish v0.2.0"),
        "{}",
        text(&out)
    );
    assert_eq!(repository(dir), before, "the dry run changed something");
    let out = release_cmd(dir).output().unwrap();
    assert!(
        out.status.success() && text(&out).contains("finished v0.2.0"),
        "{}",
        text(&out)
    );
}

/// When a needed restore fails (the migration had committed, then putting
/// the backup back failed), the run says to restore by hand before starting
/// the service, and does not start it (#11: it used to say so and start it).
#[test]
fn a_failed_restore_after_a_failed_window_leaves_the_service_down() {
    let (site, _backend, _) = serving_site();
    let env = site.maintenance_env();
    let out = site
        .command(&["migrate"], &env_refs(&env))
        .env(
            "XTASK_FAILPOINT",
            "after-migration=error,restore-mid-copy=error",
        )
        .output()
        .unwrap();
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("RESTORING")
            && report.contains("before starting the service")
            && report.contains("the service was left down"),
        "{report}"
    );
    assert!(
        flag(&site).exists(),
        "the service was started after all: {report}"
    );
    assert_eq!(status_of(&site.health_url()), Some(503), "{report}");
    assert_eq!(
        site.versions(),
        versions_to(next()),
        "valid after: {report}"
    );
}
