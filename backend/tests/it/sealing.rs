//! Encryption at rest through the real binary: the key file it refuses to
//! start without, values sealed in the database (never the plaintext, in
//! the file or its copies), ciphertexts that do not open on another row,
//! rows the previous release wrote, and `backend seal` (the backfill and
//! the rotation), killed and re-run. Each store test runs on both engines.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::common;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use common::{
    Backend, Engine, PgDatabase, agent, backend_binary, backend_command, create_token, migrated_db,
    postgres_server, sqlite_url,
};
use rusqlite::Connection;
use serde_json::json;
use tempfile::TempDir;

both!(
    stored_values_are_sealed_and_never_in_the_database,
    a_ciphertext_moved_to_another_row_does_not_open,
    previous_release_rows_reveal_and_seal_backfills_them,
    reveals_keep_answering_while_seal_commits_batches,
    a_contract_applied_while_serving_is_picked_up_without_a_restart,
    a_key_file_that_does_not_open_the_rows_is_refused_by_the_service_and_seal,
    seal_killed_midway_completes_when_run_again,
    rotation_reseals_every_row_under_the_new_key,
);

/// A migrated database of `engine` with its own key file (made by
/// `backend key generate`), and the commands to run against both.
struct Site {
    dir: TempDir,
    url: String,
    sqlite: Option<PathBuf>,
    pg: Option<PgDatabase>,
    key_file: PathBuf,
    /// The bearer token every API request of these tests carries.
    token: String,
    /// Whether `secrets.value` exists (schema V5).
    plaintext_column: bool,
}

/// The running service, and the token its API requests carry.
struct Served {
    backend: Backend,
    token: String,
}

impl Served {
    fn stop(self) -> String {
        self.backend.stop()
    }
}

impl Site {
    /// At `version` (None: the latest). None when the Postgres test is
    /// skipped (no server configured).
    fn new(engine: Engine, test: &str, version: Option<i32>) -> Option<Site> {
        let dir = TempDir::new().unwrap();
        let (url, sqlite, pg) = match engine {
            Engine::Sqlite => {
                let db = migrated_db(dir.path(), version);
                (sqlite_url(&db), Some(db), None)
            }
            Engine::Postgres => {
                let pg = PgDatabase::create(&postgres_server(test)?);
                pg.migrate(version);
                (pg.url.clone(), None, Some(pg))
            }
        };
        let key_file = dir.path().join("secrets.key");
        let site = Site {
            dir,
            url,
            sqlite,
            pg,
            key_file,
            token: String::new(),
            plaintext_column: version.is_some(),
        };
        let out = site.run(&["key", "generate", site.key_file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        let token = create_token(&site.url, "sealing-tests");
        Some(Site { token, ..site })
    }

    /// The backend binary with this site's database and key file, nothing else.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = backend_command(backend_binary(), &self.url, "127.0.0.1:0");
        cmd.args(args)
            .env("SECRETS_KEY_FILE", &self.key_file)
            .env("SECRETS_FRONTEND_DIR", self.dir.path().join("no-ui"))
            .env("SECRETS_MAINTENANCE_FLAG", self.dir.path().join("flag"));
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn serve(&self) -> Served {
        Served {
            backend: Backend::start(self.command(&[])),
            token: self.token.clone(),
        }
    }

    /// Runs statements on the database, whichever engine.
    fn exec(&self, sql: &str) {
        match &self.pg {
            Some(pg) => pg.client().batch_execute(sql).unwrap(),
            None => Connection::open(self.sqlite.as_ref().unwrap())
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
        }
    }

    /// The integer a one-row, one-column query returns.
    fn count(&self, sql: &str) -> i64 {
        match &self.pg {
            Some(pg) => pg.count(sql),
            None => Connection::open(self.sqlite.as_ref().unwrap())
                .unwrap()
                .query_row(sql, [], |row| row.get(0))
                .unwrap(),
        }
    }

    /// Every `(name, key_id)`, by name.
    fn key_ids(&self) -> Vec<(String, Option<String>)> {
        let sql = "SELECT name, key_id FROM secrets ORDER BY name";
        match &self.pg {
            Some(pg) => pg
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
            None => {
                let conn = Connection::open(self.sqlite.as_ref().unwrap()).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
        }
    }

    /// Rows as the previous release wrote them: plaintext `value`, nothing sealed.
    fn insert_legacy(&self, count: u32) {
        let rows = if self.pg.is_some() {
            format!("generate_series(1, {count}) AS s(i)")
        } else {
            format!(
                "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) SELECT i FROM s)"
            )
        };
        self.exec(&format!(
            "INSERT INTO secrets (name, value, created_at) \
             SELECT 'legacy-' || i, 'plaintext-' || i || '-value', '2026-01-01T00:00:00Z' FROM {rows}"
        ));
    }

    /// Rows whose plaintext column or sealed bytes hold `needle`.
    fn rows_holding(&self, needle: &str) -> i64 {
        let plaintext = match self.plaintext_column {
            true => format!("value LIKE '%{needle}%' OR "),
            false => String::new(),
        };
        let sql = if self.pg.is_some() {
            format!(
                "SELECT count(*) FROM secrets WHERE {plaintext}\
                 position(convert_to('{needle}', 'UTF8') IN COALESCE(sealed_value, '')) > 0"
            )
        } else {
            format!(
                "SELECT count(*) FROM secrets WHERE {plaintext}\
                 instr(COALESCE(sealed_value, x''), CAST('{needle}' AS BLOB)) > 0"
            )
        };
        self.count(&sql)
    }

    /// SQLite only: every byte of the database files (main file and WAL).
    fn file_bytes(&self) -> Vec<u8> {
        let db = self.sqlite.as_ref().unwrap();
        let mut bytes = fs::read(db).unwrap();
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        bytes.extend(fs::read(wal).unwrap_or_default());
        bytes
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn store(served: &Served, name: &str, value: &str) {
    let response = agent()
        .post(format!("{}/api/secrets", served.backend.base))
        .header("Authorization", format!("Bearer {}", served.token))
        .send_json(json!({ "name": name, "value": value }))
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// Status and body of a reveal.
fn reveal(served: &Served, name: &str) -> (u16, String) {
    let mut response = agent()
        .get(format!("{}/api/secrets/{name}", served.backend.base))
        .header("Authorization", format!("Bearer {}", served.token))
        .call()
        .unwrap();
    let body = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), body)
}

fn revealed_value(backend: &Served, name: &str) -> String {
    let (status, body) = reveal(backend, name);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["value"].as_str().unwrap().to_owned()
}

/// `site_on!(engine, test)`: a site at the latest schema (V6: no plaintext
/// column); `site_on!(engine, test, at V5)`: at the expand step, where the
/// previous release's plaintext rows live. Returns from the test when
/// Postgres is skipped.
macro_rules! site_on {
    ($engine:expr, $test:expr) => {
        match Site::new($engine, $test, None) {
            Some(site) => site,
            None => return,
        }
    };
    ($engine:expr, $test:expr, at V5) => {
        match Site::new($engine, $test, Some(EXPAND)) {
            Some(site) => site,
            None => return,
        }
    };
}

/// The expand migration: sealed columns beside the plaintext `value`.
const EXPAND: i32 = 5;

// --- the key file ---------------------------------------------------------

/// Starts the service with `key_file`; returns its stderr, having checked
/// that it refused to start.
fn start_refused(key_file: &Path) -> String {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), None);
    let out = backend_command(backend_binary(), &sqlite_url(&db), "127.0.0.1:0")
        .env("SECRETS_KEY_FILE", key_file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with {}", key_file.display());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn refuses_to_start_without_a_key_file_naming_the_command() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.key");
    let stderr = start_refused(&missing);
    let shown = missing.display().to_string();
    assert!(
        stderr.contains(&format!("key file {shown} does not exist")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("backend key generate {shown}")),
        "{stderr}"
    );
}

#[test]
fn refuses_a_key_file_others_can_read_naming_chmod() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("open.key");
    let out = Command::new(backend_binary())
        .args(["key", "generate"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = start_refused(&path);
    assert!(stderr.contains("mode 0644"), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", path.display())),
        "{stderr}"
    );
}

#[test]
fn refuses_a_malformed_key_file_naming_the_line_never_the_key() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bad.key");
    let secret_part = "c2VjcmV0LWJ1dC10b28tc2hvcnQ=";
    fs::write(&path, format!("# a comment\nk1 {secret_part}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let stderr = start_refused(&path);
    assert!(
        stderr.contains(&format!("key file {}, line 2", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("not 32"), "{stderr}");
    assert!(!stderr.contains(secret_part), "{stderr}");
}

#[test]
fn key_generate_is_private_never_overwrites_and_never_prints_the_key() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("new.key");
    let run = || {
        Command::new(backend_binary())
            .args(["key", "generate"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out));
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let content = fs::read_to_string(&path).unwrap();
    let line = content.lines().find(|l| !l.starts_with('#')).unwrap();
    let (id, key) = line.split_once(' ').unwrap();
    let printed = text(&out);
    assert!(printed.contains(id) && printed.contains(&path.display().to_string()));
    assert!(!printed.contains(key), "the key was printed: {printed}");
    let again = run();
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    assert_eq!(fs::read_to_string(&path).unwrap(), content, "overwritten");
}

/// `key add` run ten times at once keeps every key it reports, writes
/// through a symlinked key file into its target, and an empty key file is
/// refused with a way out that works.
#[test]
fn key_add_keeps_every_key_follows_a_symlink_and_an_empty_file_says_what_to_do() {
    let dir = TempDir::new().unwrap();
    let target = dir.path().join("real.key");
    let link = dir.path().join("link.key");
    let generated = Command::new(backend_binary())
        .args(["key", "generate"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", text(&generated));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let adds: Vec<_> = (0..10)
        .map(|_| {
            Command::new(backend_binary())
                .args(["key", "add"])
                .arg(&link)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = adds
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert!(out.status.success(), "{}", text(out));
    }
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    let content = fs::read_to_string(&target).unwrap();
    let keys = content
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert_eq!(keys, 11, "{content}");
    let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let empty = dir.path().join("empty.key");
    fs::write(&empty, "").unwrap();
    fs::set_permissions(&empty, fs::Permissions::from_mode(0o600)).unwrap();
    let said = start_refused(&empty);
    assert!(
        said.contains("holds no key") && said.contains("backend key generate"),
        "{said}"
    );
}

// --- sealing ----------------------------------------------------------------

fn stored_values_are_sealed_and_never_in_the_database(engine: Engine) {
    let site = site_on!(engine, "stored_values_are_sealed_and_never_in_the_database", at V5);
    let backend = site.serve();
    let value = "correct-horse-battery-staple-42";
    store(&backend, "db-password", value);
    assert_eq!(revealed_value(&backend, "db-password"), value);
    assert_eq!(site.rows_holding(value), 0);
    assert_eq!(
        site.count("SELECT count(*) FROM secrets WHERE value = '(sealed)' AND key_id IS NOT NULL AND sealed_value IS NOT NULL"),
        1
    );
    if let Some(db) = &site.sqlite {
        drop(backend.stop());
        // The files as they are on disk (WAL included), and a copy of them
        // after a checkpoint: what a file-level backup holds.
        assert!(
            !contains(&site.file_bytes(), value),
            "plaintext in the database files"
        );
        site.exec("PRAGMA wal_checkpoint(TRUNCATE);");
        let copy = site.dir.path().join("copy.db");
        fs::copy(db, &copy).unwrap();
        assert!(
            !contains(&fs::read(&copy).unwrap(), value),
            "plaintext in the copy"
        );
    }
}

fn a_ciphertext_moved_to_another_row_does_not_open(engine: Engine) {
    let site = site_on!(engine, "a_ciphertext_moved_to_another_row_does_not_open");
    let backend = site.serve();
    store(&backend, "alpha", "alpha-value-1");
    store(&backend, "beta", "beta-value-2");
    site.exec(
        "UPDATE secrets SET sealed_value = (SELECT sealed_value FROM secrets WHERE name = 'beta') \
         WHERE name = 'alpha'",
    );
    let (status, body) = reveal(&backend, "alpha");
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("beta-value-2"), "{body}");
    assert_eq!(revealed_value(&backend, "beta"), "beta-value-2");
    let log = backend.stop();
    let key_id = site.key_ids()[0].1.clone().unwrap();
    assert!(
        log.contains(&format!("secret `alpha` (key id `{key_id}`)")),
        "{log}"
    );
    assert!(
        !log.contains("beta-value-2") && !log.contains("alpha-value-1"),
        "{log}"
    );
    let logged = site.count(
        "SELECT count(*) FROM secret_access_log l JOIN secrets s ON s.id = l.secret_id WHERE s.name = 'alpha'",
    );
    assert_eq!(logged, 0, "a read that failed is not logged as a read");
}

/// A key file regenerated under the same id, or one missing the key the
/// rows were sealed with: the service and `backend seal` refuse it, naming
/// the key id, before anything is read or written (a write would be sealed
/// under a key no backup holds; `seal` would re-seal the old rows under it).
fn a_key_file_that_does_not_open_the_rows_is_refused_by_the_service_and_seal(engine: Engine) {
    let site = site_on!(
        engine,
        "a_key_file_that_does_not_open_the_rows_is_refused_by_the_service_and_seal",
        at V5
    );
    let backend = site.serve();
    store(&backend, "alpha", "alpha-value");
    drop(backend.stop());
    site.insert_legacy(1);
    let id = site.key_ids()[0].1.clone().unwrap();
    let other_key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    for (file, said) in [
        (
            format!("{id} {other_key}\n"),
            format!("key `{id}` does not open"),
        ),
        (
            format!("other {other_key}\n"),
            format!("sealed under key `{id}`, which the key file does not hold"),
        ),
    ] {
        fs::write(&site.key_file, file).unwrap();
        fs::set_permissions(&site.key_file, fs::Permissions::from_mode(0o600)).unwrap();
        for args in [&[][..], &["seal"][..]] {
            let out = site.command(args).stdin(Stdio::null()).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{args:?} ran with the wrong key file: {stderr}"
            );
            assert!(stderr.contains(&said), "{args:?}: {stderr}");
            assert!(!stderr.contains(other_key), "{stderr}");
        }
    }
    // Nothing was written: the old row is still unsealed, alpha still under its key.
    assert_eq!(
        site.count("SELECT count(*) FROM secrets WHERE sealed_value IS NULL"),
        1
    );
}

/// V6 applied while the service serves (on Postgres, `migrate --job
/// --allow-contract`): the next write and read that meet the missing
/// plaintext column learn it is gone and succeed, without a restart.
fn a_contract_applied_while_serving_is_picked_up_without_a_restart(engine: Engine) {
    let site = site_on!(
        engine,
        "a_contract_applied_while_serving_is_picked_up_without_a_restart",
        at V5
    );
    let backend = site.serve();
    store(&backend, "before", "before-value");
    let out = site.run(&["seal"]);
    assert!(out.status.success(), "{}", text(&out));
    let contract = match engine {
        Engine::Sqlite => "V6__drop_plaintext_values.sql",
        Engine::Postgres => "postgres/V6__drop_plaintext_values.sql",
    };
    site.exec(&fs::read_to_string(common::migrations_dir().join(contract)).unwrap());
    store(&backend, "after", "after-value");
    assert_eq!(revealed_value(&backend, "before"), "before-value");
    assert_eq!(revealed_value(&backend, "after"), "after-value");
}

/// The backfill commits a batch at a time beside the service: a reveal (a
/// read, then its access-log write) must never fail because a batch
/// committed between the two (SQLite refuses such an upgrade at once).
fn reveals_keep_answering_while_seal_commits_batches(engine: Engine) {
    let site = site_on!(
        engine,
        "reveals_keep_answering_while_seal_commits_batches",
        at V5
    );
    let rows = 5000;
    site.insert_legacy(rows);
    let backend = site.serve();
    let mut sealing = site
        .command(&["seal", "--batch-size", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut reveals = 0;
    while sealing.try_wait().unwrap().is_none() {
        let i = 1 + reveals % rows;
        let (status, body) = reveal(&backend, &format!("legacy-{i}"));
        assert_eq!(status, 200, "reveal {reveals} during the backfill: {body}");
        assert!(body.contains(&format!("plaintext-{i}-value")), "{body}");
        reveals += 1;
    }
    assert!(sealing.wait().unwrap().success());
    assert!(
        reveals > 0,
        "the backfill ended before the reveals began ({reveals})"
    );
}

fn previous_release_rows_reveal_and_seal_backfills_them(engine: Engine) {
    let site = site_on!(
        engine,
        "previous_release_rows_reveal_and_seal_backfills_them",
        at V5
    );
    site.insert_legacy(7);
    let backend = site.serve();
    assert_eq!(revealed_value(&backend, "legacy-3"), "plaintext-3-value");
    store(&backend, "new", "new-value");
    let out = site.run(&["seal", "--batch-size", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("sealed 3 of 7 rows"), "{printed}");
    assert!(printed.contains("done: sealed 7 rows"), "{printed}");
    assert_eq!(site.rows_holding("plaintext-"), 0);
    assert_eq!(
        site.count("SELECT count(*) FROM secrets WHERE sealed_value IS NULL"),
        0
    );
    for i in 1..=7 {
        let name = format!("legacy-{i}");
        assert_eq!(
            revealed_value(&backend, &name),
            format!("plaintext-{i}-value")
        );
    }
    assert_eq!(revealed_value(&backend, "new"), "new-value");
    let again = site.run(&["seal"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("done: sealed 0 rows"),
        "{}",
        text(&again)
    );
    if site.sqlite.is_some() {
        drop(backend.stop());
        site.exec("PRAGMA wal_checkpoint(TRUNCATE);");
        assert!(
            !contains(&site.file_bytes(), "plaintext-"),
            "plaintext left in the file"
        );
    }
}

fn seal_killed_midway_completes_when_run_again(engine: Engine) {
    use std::io::{BufRead, BufReader};
    let site = site_on!(engine, "seal_killed_midway_completes_when_run_again", at V5);
    let rows = 3000;
    site.insert_legacy(rows);
    let mut child = site
        .command(&["seal", "--batch-size", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // Killed once it has sealed some rows but (at 10 a batch) far from all.
    let progress = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("sealed 50 of"));
    assert!(progress.is_some(), "no progress line");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = site.count("SELECT count(*) FROM secrets WHERE sealed_value IS NULL");
    assert!(left > 0 && left < i64::from(rows), "{left} rows left");
    let out = site.run(&["seal", "--batch-size", "500"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{left} rows to seal")),
        "{}",
        text(&out)
    );
    assert_eq!(
        site.count("SELECT count(*) FROM secrets WHERE sealed_value IS NULL"),
        0
    );
    assert_eq!(site.rows_holding("plaintext-"), 0);
    let backend = site.serve();
    assert_eq!(revealed_value(&backend, "legacy-1"), "plaintext-1-value");
    let last = format!("legacy-{rows}");
    assert_eq!(
        revealed_value(&backend, &last),
        format!("plaintext-{rows}-value")
    );
}

fn rotation_reseals_every_row_under_the_new_key(engine: Engine) {
    let site = site_on!(engine, "rotation_reseals_every_row_under_the_new_key", at V5);
    site.insert_legacy(2);
    let backend = site.serve();
    store(&backend, "before", "before-value");
    let old_id = site.key_ids()[0].1.clone().unwrap();
    drop(backend.stop());
    let out = site.run(&["key", "add", site.key_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let content = fs::read_to_string(&site.key_file).unwrap();
    let new_id = content
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(new_id, old_id);
    assert!(!text(&out).contains(content.lines().last().unwrap().split(' ').nth(1).unwrap()));
    // Restarted with both keys: old rows still open, new ones seal under the new key.
    let backend = site.serve();
    assert_eq!(revealed_value(&backend, "before"), "before-value");
    store(&backend, "after", "after-value");
    let ids = site.key_ids();
    assert!(
        ids.contains(&("before".into(), Some(old_id.clone()))),
        "{ids:?}"
    );
    assert!(
        ids.contains(&("after".into(), Some(new_id.clone()))),
        "{ids:?}"
    );
    let out = site.run(&["seal"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("done: sealed 3 rows"), "{}", text(&out));
    for (name, key_id) in site.key_ids() {
        assert_eq!(key_id.as_deref(), Some(new_id.as_str()), "{name}");
    }
    assert_eq!(revealed_value(&backend, "before"), "before-value");
    assert_eq!(revealed_value(&backend, "legacy-2"), "plaintext-2-value");
    assert_eq!(revealed_value(&backend, "after"), "after-value");
}
