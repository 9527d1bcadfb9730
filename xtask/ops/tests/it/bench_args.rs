//! `cargo xtask bench api` and `bench backfill` refuse what they cannot
//! measure before they build or start anything: out-of-range numbers are
//! usage errors (exit 2), a missing binary, a URL that is not Postgres and
//! a backend without the `seal` command are errors naming the cause and the
//! fix (exit 1). No timed run here: the figures are not a test's business.

#![allow(clippy::unwrap_used)]

use crate::support;

use std::process::Output;

use support::{text, xtask_command};

fn bench(args: &[&str]) -> Output {
    xtask_command().arg("bench").args(args).output().unwrap()
}

#[test]
fn out_of_range_numbers_are_usage_errors() {
    for args in [
        &["api", "--seconds", "0"][..],
        &["api", "--clients", "0"],
        &["api", "--seconds", "ten"],
        &["backfill", "--rows", "0"],
        &["backfill", "--clients", "0"],
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(args[1]), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_missing_backend_binary_is_named_with_how_to_build_one() {
    let dir = tempfile::TempDir::new().unwrap();
    let missing = dir.path().join("no-such-backend");
    for command in ["api", "backfill"] {
        let out = bench(&[command, "--backend", missing.to_str().unwrap()]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {said}");
        assert!(said.contains(&missing.display().to_string()), "{said}");
        assert!(said.contains("cargo build --release -p backend"), "{said}");
    }
}

/// SQLite is always measured in a temp folder; `--database-url` is for Postgres only.
#[test]
fn api_refuses_a_database_url_that_is_not_postgres() {
    for url in ["sqlite:///data/secrets.db", "mysql://localhost/x"] {
        let out = bench(&["api", "--database-url", url]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{url}: {said}");
        assert!(said.contains("postgres://"), "{url}: {said}");
        assert!(!said.contains("bench api:"), "it started measuring: {said}");
    }
}

/// A release before encryption at rest has no subcommands: it ignores its
/// arguments and tries to serve, which the probe's missing database stops
/// (here a script that answers the same way). The bench must stop before
/// filling a database.
#[test]
fn backfill_refuses_a_backend_without_the_seal_command() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let old_release = dir.path().join("backend");
    std::fs::write(
        &old_release,
        "#!/bin/sh\necho 'error: database file does not exist' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&old_release, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = bench(&[
        "backfill",
        "--rows",
        "10",
        "--backend",
        old_release.to_str().unwrap(),
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("has no `seal` command"), "{said}");
    assert!(said.contains("--backend PATH"), "{said}");
    assert!(!said.contains("unsealed rows at schema"), "{said}");
}
