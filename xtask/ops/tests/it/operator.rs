//! What an operator's scripts read (#13): `--json` on `migrate status`,
//! `version` and `backup --list`, the exit statuses, and every environment
//! variable in the help of the commands that read it. The real binary on
//! real SQLite files, real git repositories and the real Postgres server.

#![allow(clippy::unwrap_used)]

use crate::support;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Output,
    time::SystemTime,
};

use serde_json::Value;
use support::{
    NEXT_INDEX, Site, mig, next, pg, release_repo, repo_root, shipped_latest, sqlite_url, text,
    xtask_command,
};

/// The whole of stdout, parsed: with `--json` nothing else may be there.
fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", text(out)))
}

/// Every file of a folder: its bytes and its modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let modified = fs::metadata(&p).unwrap().modified().unwrap();
            (p.clone(), (fs::read(&p).unwrap(), modified))
        })
        .collect()
}

fn list(site: &Site) -> (Output, Value) {
    let out = site.xtask(&["backup", "--list", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = json(&out);
    (out, listing)
}

/// `migrate status --json`: stdout is the document alone, and the exit
/// status is the one without `--json` (1 while a migration is pending or a
/// file changed, 0 when up to date).
#[test]
fn status_json_reports_the_history_and_keeps_the_exit_status() {
    let site = Site::new();
    let out = site.xtask(&["migrate", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = json(&out);
    assert_eq!(status["database"], site.url());
    assert_eq!(status["engine"], "sqlite");
    assert_eq!(status["schema_version"], shipped_latest());
    assert_eq!(status["up_to_date"], true);
    assert_eq!(status["pending"], 0);
    let migrations = status["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), shipped_latest() as usize, "{status}");
    for (m, version) in migrations.iter().zip(1..) {
        assert_eq!(m["version"], version, "{m}");
        assert_eq!(m["state"], "applied", "{m}");
        assert!(m["applied_on"].as_str().unwrap().ends_with('Z'), "{m}");
    }

    site.add_migration(&mig(next(), "created_at_index"), NEXT_INDEX);
    let out = site.xtask(&["migrate", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status = json(&out);
    assert_eq!(status["up_to_date"], false);
    assert_eq!(status["consistent"], true);
    assert_eq!(status["pending"], 1);
    let last = status["migrations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last,
        serde_json::json!({"version": next(), "name": "created_at_index", "state": "pending", "applied_on": null})
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 migration(s) pending"),
        "{}",
        text(&out)
    );
    let plain = site.xtask(&["migrate", "status"], &[]);
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain));

    let first = fs::read_dir(&site.migrations)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("V1__"))
        .unwrap();
    fs::write(
        &first,
        format!("{}\n-- edited\n", fs::read_to_string(&first).unwrap()),
    )
    .unwrap();
    let out = site.xtask(&["migrate", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status = json(&out);
    assert_eq!(status["consistent"], false);
    assert_eq!(status["migrations"][0]["state"], "changed", "{status}");
}

/// `version --json`: every place with its value, and drift as `agreed:
/// false` with the odd place marked, exit 1 as without `--json`.
#[test]
fn version_json_lists_every_place_and_reports_drift() {
    let repo = release_repo();
    let version = |args: &[&str]| {
        xtask_command()
            .arg("--repo")
            .arg(repo.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = version(&["version", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["version"], "0.1.0");
    assert_eq!(report["agreed"], true);
    let places = report["places"].as_array().unwrap();
    let paths: Vec<&str> = places.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["backend/Cargo.toml", "frontend/package.json", "VERSION.txt"]
    );
    assert!(
        places
            .iter()
            .all(|p| p["agrees"] == true && p["values"][0] == "0.1.0")
    );

    let package = repo.path().join("frontend/package.json");
    let drifted = fs::read_to_string(&package)
        .unwrap()
        .replace("0.1.0", "0.1.1");
    fs::write(&package, drifted).unwrap();
    let out = version(&["version", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["agreed"], false);
    assert_eq!(report["version"], Value::Null);
    let odd = &report["places"][1];
    assert_eq!(odd["path"], "frontend/package.json");
    assert_eq!(odd["values"][0], "0.1.1");
    assert_eq!(odd["agrees"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("version drift"));

    fs::remove_file(repo.path().join("VERSION.txt")).unwrap();
    let out = version(&["version", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert!(report["places"][2]["error"].is_string(), "{report}");
    assert_eq!(report["places"][2]["agrees"], false);
}

/// `backup --list`: every backup with both times, its size and schema
/// version and whether it verifies, restore's pick marked; the same pick
/// `restore` then makes; the folder byte-identical afterwards.
#[test]
fn backup_list_shows_every_backup_and_restores_pick_and_changes_nothing() {
    let site = Site::new();
    let dir = site.dir.path();
    assert!(site.xtask(&["backup"], &[]).status.success());
    site.add_migration(&mig(next(), "created_at_index"), NEXT_INDEX);
    let out = site.xtask(&["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(site.xtask(&["backup"], &[]).status.success());

    let before = snapshot(dir);
    let (_, listing) = list(&site);
    assert_eq!(snapshot(dir), before, "the listing changed the folder");
    let entries = listing["backups"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{listing}");
    for (entry, (sequence, schema)) in
        entries
            .iter()
            .zip([(1, shipped_latest()), (2, shipped_latest()), (3, next())])
    {
        let file = Path::new(entry["file"].as_str().unwrap());
        assert_eq!(entry["kind"], "backup");
        assert_eq!(entry["sequence"], sequence, "{entry}");
        assert_eq!(entry["schema_version"], schema, "{entry}");
        assert_eq!(entry["verifies"], true, "{entry}");
        assert_eq!(entry["size_bytes"], fs::metadata(file).unwrap().len());
        // secrets.db.000001.20261129T101500.123Z.bak: the stamp is the name's 4th and 5th parts.
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let parts: Vec<&str> = name.split('.').collect();
        let name_time = entry["name_time"].as_str().unwrap().replace(['-', ':'], "");
        assert_eq!(name_time, format!("{}.{}", parts[3], parts[4]), "{entry}");
        assert!(entry["modified_time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(entry["restore_default"], sequence == 3, "{entry}");
    }
    let pick = entries[2]["file"].as_str().unwrap().to_owned();
    assert_eq!(listing["restore_pick"], pick.as_str());

    let human = site.xtask(&["backup", "--list"], &[]);
    let said = text(&human);
    assert!(human.status.success(), "{said}");
    assert!(
        said.contains(&format!("restore without an argument picks {pick}")),
        "{said}"
    );
    let marked = said.lines().find(|l| l.starts_with(" *")).unwrap();
    assert!(
        pick.ends_with(marked.split_whitespace().last().unwrap()),
        "{said}"
    );

    // `restore` with no argument picks what the list said, and says why.
    let out = site.xtask(&["restore"], &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("no backup given: restoring {pick}")),
        "{said}"
    );
    assert!(said.contains("by sequence number"), "{said}");

    // A truncated file under a backup's name and a dead run's temp file.
    let broken = dir.join(format!("secrets.db.000004.{}.bak", "20261129T101500.000Z"));
    let bytes = fs::read(&pick).unwrap();
    fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let temp = dir.join(".secrets.db.000005.20261129T101600.000Z.bak.xtask-tmp");
    fs::write(&temp, &bytes[..100]).unwrap();
    let before = snapshot(dir);
    let (_, listing) = list(&site);
    assert_eq!(snapshot(dir), before, "the listing changed the folder");
    let kinds: Vec<&str> = listing["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "backup",
            "backup",
            "backup",
            "backup",
            "pre-restore",
            "unfinished"
        ]
    );
    let newest = &listing["backups"][3];
    assert_eq!(newest["file"], broken.display().to_string());
    assert_eq!(newest["verifies"], false);
    assert!(
        newest["problem"].as_str().unwrap().contains("000004"),
        "{newest}"
    );
    // Restore passes over a newest backup that does not verify.
    assert_eq!(newest["restore_default"], false);
    assert_eq!(listing["restore_pick"], pick.as_str());
    assert!(
        listing["restore_pick_reason"]
            .as_str()
            .unwrap()
            .contains("do not verify"),
        "{listing}"
    );
    let kept = &listing["backups"][4];
    assert_eq!(
        (&kept["verifies"], &kept["restore_default"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    assert_eq!(
        kept["schema_version"],
        next(),
        "the pre-restore copy held the next migration: {kept}"
    );
    let unfinished = &listing["backups"][5];
    assert_eq!(unfinished["file"], temp.display().to_string());
    assert_eq!(unfinished["verifies"], false);
    assert!(
        unfinished["problem"]
            .as_str()
            .unwrap()
            .contains("not a complete backup")
    );
    let out = site.xtask(&["restore"], &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("restoring {pick}")), "{said}");
    assert!(said.contains("passed over the 1 newer one(s)"), "{said}");
    assert!(said.contains("000004"), "{said}");
}

/// `DATABASE_URL` reaches the commands through clap, the flag still wins,
/// an empty one is still refused, and `--help` never shows its value.
#[test]
fn database_url_from_the_environment_the_flag_wins_and_help_hides_it() {
    let site = Site::new();
    let run = |env: &str, flag: Option<&str>| {
        let mut cmd = xtask_command();
        cmd.args(["backup", "--list", "--json"])
            .env("DATABASE_URL", env);
        if let Some(flag) = flag {
            cmd.args(["--database-url", flag]);
        }
        cmd.output().unwrap()
    };
    let out = run(&site.url(), None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["database"], site.url());
    let elsewhere = sqlite_url(&site.dir.path().join("elsewhere/other.db"));
    let out = run(&elsewhere, Some(&site.url()));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["database"], site.url());
    let out = run("", None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("DATABASE_URL is set but empty"),
        "{}",
        text(&out)
    );

    for command in [
        &["backup"][..],
        &["restore"],
        &["migrate"],
        &["migrate", "status"],
    ] {
        let out = xtask_command()
            .args(command)
            .arg("--help")
            .env(
                "DATABASE_URL",
                "postgres://app:hunter2-secret@db.example/secrets",
            )
            .env(
                "MIGRATIONS_POSTGRES_URL",
                "postgres://app:hunter2-secret@db.example/x",
            )
            .output()
            .unwrap();
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains("[env: DATABASE_URL]") && !said.contains("hunter2"),
            "{command:?}: {said}"
        );
    }
}

/// Usage errors exit 2, as each help says.
#[test]
fn usage_errors_exit_2() {
    for args in [
        &["backup", "--json"][..],
        &["version", "--bogus"],
        &["migrate", "status", "extra"],
    ] {
        let out = xtask_command().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
}

/// Commands that read each variable (through `window::settings` for the
/// window's four): a variable the code reads that is not here fails the
/// test below, so it gets documented.
const WINDOW: &[&[&str]] = &[
    &["migrate"],
    &["migrate", "status"],
    &["backup"],
    &["restore"],
];

fn readers(variable: &str) -> Option<Vec<&'static [&'static str]>> {
    Some(match variable {
        "DATABASE_URL" => [WINDOW, &[&["migrations", "check"][..], &["release"]]].concat(),
        v if v.starts_with("MIGRATE_") || v == "SECRETS_MAINTENANCE_FLAG" => WINDOW.to_vec(),
        "RELEASE_HOOK_TIMEOUT_SECS" => vec![&["release"]],
        "SECRETS_OPS_CONFIG" => [WINDOW, &[&["migrations", "check"][..], &["db", "copy"]]].concat(),
        // `release` through its preflight's migrations check.
        "MIGRATIONS_POSTGRES_URL" => {
            vec![
                &["migrations", "check"],
                &["bench", "copy"],
                &["bench", "migrate-pg"],
                &["release"],
            ]
        }
        "TEST_POSTGRES_URL" => vec![&["bench", "copy"], &["bench", "migrate-pg"]],
        _ => return None,
    })
}

/// Read but not settings: the fault-injection tests' switch (compiled only
/// with `--features failpoints`) and the terminal's capability; and the
/// backend's own settings, which the benchmarks set for the backend they start.
const NOT_SETTINGS: &[&str] = &[
    "XTASK_FAILPOINT",
    "TERM",
    "SECRETS_ADDR",
    "SECRETS_FRONTEND_DIR",
    "SECRETS_KEY_FILE",
    // Which binary `cargo xtask` runs (tests and CI set them to built ones),
    // the program name it gives the operations tool for its advice, and
    // what cargo sets for the programs it runs.
    "SECRETS_OPS",
    "SECRETS_BENCH",
    "SECRETS_OPS_AS",
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_PKG_VERSION",
];

/// Every environment variable the xtask's code reads (a string literal in a
/// file that reads the environment, or one of the backend's modules it uses).
fn variables_read() -> Vec<String> {
    let literal = regex::Regex::new(r#""([A-Z][A-Z0-9_]{2,})""#).unwrap();
    let mut files = Vec::new();
    let mut todo = [
        "xtask/src",
        "xtask/ops/src",
        "xtask/common/src",
        "xtask/bench/src",
    ]
    .map(|dir| repo_root().join(dir))
    .to_vec();
    while let Some(dir) = todo.pop() {
        for path in fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.push(repo_root().join("backend/contract/src/dburl.rs"));
    files.push(repo_root().join("backend/contract/src/maintenance.rs"));
    let mut found: Vec<String> = files
        .iter()
        .map(|path| fs::read_to_string(path).unwrap())
        .filter(|code| code.contains("env::var") || code.contains("var_os"))
        .flat_map(|code| {
            literal
                .captures_iter(&code)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|name| !NOT_SETTINGS.contains(&name.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Every variable the code reads is named in the `--help` of each command
/// that reads it and in docs/runbook.md's tables.
#[test]
fn every_variable_the_code_reads_is_in_the_help_and_the_runbook() {
    let variables = variables_read();
    for expected in [
        "DATABASE_URL",
        "MIGRATE_BACKUP_DIR",
        "RELEASE_HOOK_TIMEOUT_SECS",
        "SECRETS_MAINTENANCE_FLAG",
    ] {
        assert!(
            variables.iter().any(|v| v == expected),
            "the scan missed {expected}: {variables:?}"
        );
    }
    let runbook = fs::read_to_string(repo_root().join("docs/runbook.md")).unwrap();
    let table: Vec<&str> = runbook.lines().filter(|l| l.starts_with('|')).collect();
    let mut problems = Vec::new();
    let mut helps = BTreeMap::new();
    for variable in &variables {
        let Some(commands) = readers(variable) else {
            problems.push(format!(
                "{variable} is read by the code but not listed in this test: name it in the help of the \
                 commands that read it, in docs/runbook.md's table, and in `readers` here"
            ));
            continue;
        };
        for command in commands {
            let help = helps.entry(command).or_insert_with(|| {
                let out = xtask_command()
                    .args(command)
                    .arg("--help")
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{command:?} --help: {}", text(&out));
                String::from_utf8(out.stdout).unwrap()
            });
            if !help.contains(variable.as_str()) {
                problems.push(format!(
                    "`cargo xtask {} --help` does not name {variable}",
                    command.join(" ")
                ));
            }
        }
        if !table
            .iter()
            .any(|row| row.contains(&format!("`{variable}`")))
        {
            problems.push(format!("docs/runbook.md's tables do not name {variable}"));
        }
    }
    assert_eq!(problems, Vec::<String>::new());
}

/// Postgres: `backup --list` reads each archive's schema version and checks
/// it with `pg_restore --list`; no JSON holds the password of the URL.
#[test]
fn postgres_backup_list_reads_the_archive_and_never_shows_the_password() {
    let Some(server) =
        pg::server("postgres_backup_list_reads_the_archive_and_never_shows_the_password")
    else {
        return;
    };
    let site = pg::PgSite::new(&server);
    let with_password = site
        .db
        .url
        .replacen("://postgres@", "://postgres:hunter2-secret@", 1);
    assert!(
        with_password.contains("hunter2"),
        "TEST_POSTGRES_URL is not postgres://postgres@…: {server}"
    );
    let env = [("DATABASE_URL", with_password.as_str())];
    let out = site.xtask(&["backup"], &env);
    assert!(out.status.success(), "{}", text(&out));
    let status = site.xtask(&["migrate", "status", "--json"], &env);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let before = snapshot(site.dir.path());
    let out = site.xtask(&["backup", "--list", "--json"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        snapshot(site.dir.path()),
        before,
        "the listing changed the folder"
    );
    for said in [text(&out), text(&status)] {
        assert!(!said.contains("hunter2"), "{said}");
    }
    let listing = json(&out);
    assert_eq!(listing["engine"], "postgres");
    let entries = listing["backups"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listing}");
    assert_eq!(entries[0]["verifies"], true, "{listing}");
    assert_eq!(
        entries[0]["schema_version"],
        json(&status)["schema_version"]
    );
    assert_eq!(entries[0]["restore_default"], true);

    let archive = Path::new(entries[0]["file"].as_str().unwrap());
    let bytes = fs::read(archive).unwrap();
    let broken = archive.with_file_name(
        archive
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".000001.", ".000002."),
    );
    fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let listing = json(&site.xtask(&["backup", "--list", "--json"], &env));
    assert_eq!(listing["backups"][1]["verifies"], false, "{listing}");
    // restore passes over the newest when it does not verify.
    assert_eq!(listing["backups"][1]["restore_default"], false, "{listing}");
    assert_eq!(listing["backups"][0]["restore_default"], true, "{listing}");
}

#[test]
fn the_listing_and_status_fields_are_documented_in_the_readme() {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("## Machine-readable output")
        .nth(1)
        .expect("README.md has a \"Machine-readable output\" section");
    for field in [
        "schema_version",
        "up_to_date",
        "consistent",
        "pending",
        "applied_on",
        "lock_holder",
        "agreed",
        "locator",
        "agrees",
        "restore_pick",
        "restore_pick_reason",
        "name_time",
        "modified_time",
        "size_bytes",
        "schema_version_note",
        "verifies",
        "restore_default",
    ] {
        assert!(
            section.contains(&format!("\"{field}\"")),
            "README.md does not document {field}"
        );
    }
}
