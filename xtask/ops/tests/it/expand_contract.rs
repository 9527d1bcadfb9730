//! Issue #14's upgrade walked end to end on both engines, as an operator
//! would: the previous release's plaintext rows (V4) → expand V5 (`migrate
//! --to 5`; on Postgres the rolling-deploy job) → the new backend serving
//! while `backend seal` backfills under write and read traffic (on Postgres
//! two instances and two backfills at once) → contract V6, refused while any
//! row is unsealed, then run in the window → every value, old and new,
//! still reveals the same through the API, and none is stored in the clear.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{
    collections::BTreeMap,
    process::{Command, Output},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

use rusqlite::Connection;
use serde_json::json;
use support::{pg::*, *};

/// Rows the previous release wrote: enough for several backfill batches.
const OLD_ROWS: usize = 240;

fn old_value(i: usize) -> String {
    format!("old-release-plaintext-{i:04}-q7")
}

/// `backend seal` on `url`, in small batches so that traffic interleaves.
fn seal(url: &str) -> Command {
    let mut cmd = Command::new(backend_binary());
    cmd.args(["seal", "--batch-size", "16"])
        .env_clear()
        .env("DATABASE_URL", url)
        .env("SECRETS_KEY_FILE", test_key_file());
    cmd
}

fn succeeded(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

/// Writes new secrets and reads old ones through `bases` until `stop`;
/// returns every value it stored. A failed request fails the test.
fn traffic(
    bases: Vec<String>,
    bearer: String,
    stop: Arc<AtomicBool>,
    prefix: &'static str,
) -> thread::JoinHandle<BTreeMap<String, String>> {
    thread::spawn(move || {
        let mut stored = BTreeMap::new();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) || i < 20 {
            let base = &bases[i % bases.len()];
            let (name, value) = (format!("{prefix}-{i}"), format!("{prefix}-value-{i}-z3"));
            let created = agent()
                .post(format!("{base}/api/secrets"))
                .header("Authorization", &bearer)
                .send_json(json!({ "name": name, "value": value }))
                .unwrap();
            assert_eq!(created.status(), 201, "storing {name}");
            stored.insert(name, value);
            let old = (i * 7) % OLD_ROWS;
            assert_eq!(reveal(base, &bearer, &format!("old-{old}")), old_value(old));
            i += 1;
        }
        stored
    })
}

fn reveal(base: &str, bearer: &str, name: &str) -> String {
    let mut response = agent()
        .get(format!("{base}/api/secrets/{name}"))
        .header("Authorization", bearer)
        .call()
        .unwrap();
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "revealing {name}: {text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    body["value"].as_str().unwrap().to_owned()
}

/// Every old and every new value reveals as it was stored.
fn all_reveal(base: &str, bearer: &str, new: &BTreeMap<String, String>) {
    for i in 0..OLD_ROWS {
        assert_eq!(reveal(base, bearer, &format!("old-{i}")), old_value(i));
    }
    for (name, value) in new {
        assert_eq!(&reveal(base, bearer, name), value);
    }
}

fn refused_with_count(out: &Output, count: usize) {
    let said = text(out);
    assert!(!out.status.success(), "V6 ran over unsealed rows:\n{said}");
    assert!(
        said.contains(&format!(
            "V6__drop_plaintext_values refuses to run: {count} row(s)"
        )),
        "{said}"
    );
    assert!(said.contains("backend seal"), "{said}");
}

#[test]
fn sqlite_old_rows_expand_backfill_under_traffic_then_contract() {
    let site = Site::new_empty();
    succeeded(&site.xtask(&["migrate", "--create", "--to", "4"], &[]));
    let conn = Connection::open(&site.db).unwrap();
    for i in 0..OLD_ROWS {
        conn.execute(
            "INSERT INTO secrets (name, value, created_at) VALUES (?1, ?2, '2026-01-01T00:00:00Z')",
            rusqlite::params![format!("old-{i}"), old_value(i)],
        )
        .unwrap();
    }
    drop(conn);
    // Straight to V6 from V4 is refused before anything goes down: the
    // rehearsal applies V5, then V6 counts every old row unsealed.
    let jump = site.xtask(&["migrate"], &[]);
    refused_with_count(&jump, OLD_ROWS);
    assert!(text(&jump).contains("--to 5"), "{}", text(&jump));
    assert_eq!(site.versions(), versions_to(4));

    succeeded(&site.xtask(&["migrate", "--to", "5"], &[]));
    assert_eq!(site.versions(), versions_to(5));
    let backend = site.start_backend();
    let bearer = site.bearer("upgrade");
    let env = site.maintenance_env();
    // With the service serving, the window's preflight refuses V6.
    let early = site.xtask(&["migrate"], &env_refs(&env));
    refused_with_count(&early, OLD_ROWS);
    assert_eq!(site.versions(), versions_to(5));

    let stop = Arc::new(AtomicBool::new(false));
    let writer = traffic(
        vec![backend.base.clone()],
        bearer.clone(),
        stop.clone(),
        "new",
    );
    succeeded(&seal(&site.url()).output().unwrap());
    stop.store(true, Ordering::Relaxed);
    let new = writer
        .join()
        .unwrap_or_else(|_| panic!("traffic failed; the service said:\n{}", backend.log()));

    let contract = site.xtask(&["migrate"], &env_refs(&env));
    succeeded(&contract);
    assert_eq!(site.versions(), versions_to(6));
    all_reveal(&backend.base, &bearer, &new);
    drop(backend.stop());
    let values: Vec<String> = new
        .values()
        .cloned()
        .chain((0..OLD_ROWS).map(old_value))
        .collect();
    assert_eq!(files_holding(&site, &values), Vec::<String>::new());
}

/// The database's files (main, WAL) that hold one of `values`, with the first value found.
fn files_holding(site: &Site, values: &[String]) -> Vec<String> {
    let files = [
        site.db.clone(),
        std::path::PathBuf::from(format!("{}-wal", site.db.display())),
    ];
    files
        .iter()
        .filter_map(|file| {
            let bytes = std::fs::read(file).unwrap_or_default();
            let found = values
                .iter()
                .find(|v| bytes.windows(v.len()).any(|w| w == v.as_bytes()))?;
            Some(format!("{} holds {found}", file.display()))
        })
        .collect()
}

#[test]
fn postgres_old_rows_expand_backfill_by_two_instances_then_contract() {
    let server = server!("postgres_old_rows_expand_backfill_by_two_instances_then_contract");
    let site = PgSite::empty(&server);
    succeeded(&site.xtask(&["migrate", "--job", "--allow-contract", "--to", "4"], &[]));
    let mut client = site.db.client();
    for i in 0..OLD_ROWS {
        client
            .execute(
                "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, now())",
                &[&format!("old-{i}"), &old_value(i)],
            )
            .unwrap();
    }
    // The window waits for every session to leave: this one too.
    drop(client);
    // The rolling-deploy job applies the expand step while the old release serves.
    succeeded(&site.xtask(&["migrate", "--job", "--to", "5"], &[]));
    assert_eq!(site.db.versions(), versions_to(5));
    let first = site.start_backend();
    let second = {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = backend_command(&backend_binary(), &site.db.url, &addr);
        cmd.env("SECRETS_MAINTENANCE_FLAG", site.flag());
        Backend::start(cmd)
    };
    let bearer = site.bearer("upgrade");
    // The contract is refused by the job (it is one) and, while rows are
    // unsealed, by the window's preflight and inside --allow-contract's transaction.
    let job = site.xtask(&["migrate", "--job"], &[]);
    assert_eq!(job.status.code(), Some(3), "{}", text(&job));
    let allowed = site.xtask(&["migrate", "--job", "--allow-contract"], &[]);
    assert_eq!(allowed.status.code(), Some(3), "{}", text(&allowed));
    refused_with_count(&allowed, OLD_ROWS);
    let env = site.maintenance_env();
    refused_with_count(&site.xtask(&["migrate"], &env_refs(&env)), OLD_ROWS);
    assert_eq!(site.db.versions(), versions_to(5));

    let stop = Arc::new(AtomicBool::new(false));
    let bases = vec![first.base.clone(), second.base.clone()];
    let writer = traffic(bases, bearer.clone(), stop.clone(), "new");
    let sealers: Vec<_> = (0..2)
        .map(|_| seal(&site.db.url).spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = sealers
        .into_iter()
        .map(|s| s.wait_with_output().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    let new = writer.join().unwrap_or_else(|_| {
        panic!(
            "traffic failed; the services said:\n{}\n{}",
            first.log(),
            second.log()
        )
    });
    outputs.iter().for_each(succeeded);
    assert_eq!(
        site.db
            .count("SELECT count(*) FROM secrets WHERE sealed_value IS NULL"),
        0
    );

    drop(second.stop());
    let filenode = "SELECT pg_relation_filenode('secrets')::int8";
    let before = site.db.count(filenode);
    let contract = site.xtask(&["migrate"], &env_refs(&env));
    succeeded(&contract);
    assert_eq!(site.db.versions(), versions_to(6));
    all_reveal(&first.base, &bearer, &new);
    // Not in any row, and not in the table's file either: the old row
    // versions the backfill replaced went with the old file, which V6's
    // rewrite replaced (dead row versions are not reliably left behind to
    // find, so the new file is checked for too).
    assert_ne!(
        site.db.count(filenode),
        before,
        "V6 did not rewrite the table"
    );
    let mut client = site.db.client();
    client.batch_execute("CHECKPOINT").unwrap();
    let file: Vec<u8> = client
        .query_one(
            "SELECT pg_read_binary_file(pg_relation_filepath('secrets'))",
            &[],
        )
        .unwrap()
        .get(0);
    let values: Vec<String> = new
        .values()
        .cloned()
        .chain((0..OLD_ROWS).map(old_value))
        .collect();
    let in_clear: Vec<&String> = values
        .iter()
        .filter(|v| file.windows(v.len()).any(|w| w == v.as_bytes()))
        .collect();
    assert!(
        in_clear.is_empty(),
        "the table's file holds {} value(s), e.g. {:?}",
        in_clear.len(),
        in_clear.first()
    );
    assert!(!file.is_empty());
}
