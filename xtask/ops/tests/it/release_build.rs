//! After a release of this very repository (copied into a temp git repo),
//! the built UI shows the new version and the backend built from the tagged
//! commit reports it on /health.
//!
//! The backend is compiled into `target/release-build-check`, a target folder
//! of its own (the one running this test is locked by cargo meanwhile),
//! seeded with hard links to this build's artifacts.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::support;

use std::{fs, path::Path, process::Command};

use support::{
    Backend, agent, backend_command, git, repo_root as project_root, sqlite_url, xtask_command,
};
use tempfile::TempDir;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The working tree as git sees it (tracked and untracked, not ignored), in a
/// fresh repository on `main` with one commit.
fn copy_of_this_repository() -> TempDir {
    let root = project_root();
    let copy = TempDir::new().unwrap();
    let listing = git(
        &root,
        &["ls-files", "--cached", "--others", "--exclude-standard"],
    );
    for path in listing.lines().filter(|p| root.join(p).is_file()) {
        let target = copy.path().join(path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(root.join(path), target).unwrap();
    }
    let dir = copy.path();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    git(dir, &["config", "user.name", "Release Tester"]);
    git(dir, &["config", "user.email", "tester@example.test"]);
    git(dir, &["add", "--all"]);
    git(dir, &["commit", "--quiet", "--no-verify", "-m", "snapshot"]);
    copy
}

/// A first run's target folder starts as hard links to the dependency
/// artifacts of the build running these tests (the same versions and
/// features), so only the copy's own crates compile: seconds, where a cold
/// build took minutes of `make check`. The workspace's own crates are left
/// out, and so are cargo's lock and incremental files: what the copy's cargo
/// writes are new files, never one the running tests share.
fn seed_with_this_build(target: &Path) {
    let debug = target.join("debug");
    if debug.exists() {
        return;
    }
    let this_build = Path::new(env!("CARGO_BIN_EXE_secrets-ops"))
        .parent()
        .unwrap();
    for dir in ["deps", "build", ".fingerprint"] {
        link_dependencies(&this_build.join(dir), &debug.join(dir));
    }
}

/// Hard links of `from`'s files in `to`, but for the workspace's crates.
fn link_dependencies(from: &Path, to: &Path) {
    const OURS: &[&str] = &[
        "backend",
        "libbackend",
        "secrets_contract",
        "libsecrets_contract",
        "secrets-contract",
        "xtask",
        "libxtask",
        "xtask_common",
        "libxtask_common",
        "xtask-common",
        "secrets_ops",
        "libsecrets_ops",
        "secrets-ops",
        "secrets_bench",
        "secrets-bench",
        "test_support",
        "libtest_support",
        "test-support",
        "it-",
    ];
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = OURS.iter().any(|crate_name| {
            name.strip_prefix(crate_name)
                .is_some_and(|rest| crate_name.ends_with('-') || rest.starts_with(['-', '.']))
        });
        if ours || name.starts_with("faults-") {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            link_dependencies(&source, &dest);
        } else {
            fs::hard_link(&source, &dest).unwrap();
        }
    }
}

#[test]
fn a_release_shows_in_the_ui_bundle_and_on_health() {
    let copy = copy_of_this_repository();
    let dir = copy.path();
    let before = git(dir, &["rev-parse", "HEAD"]);
    run(xtask_command().args(["--repo", dir.to_str().unwrap(), "release", "minor"]));
    let tag = git(dir, &["describe", "--tags", "--exact-match"]);
    let version = tag.trim_start_matches('v').to_owned();
    assert_ne!(git(dir, &["rev-parse", "HEAD"]), before);

    assert_ui_bundle_shows(dir, &version);
    assert_backend_reports(dir, &version);
}

fn assert_ui_bundle_shows(dir: &Path, version: &str) {
    let modules = project_root().join("frontend/node_modules");
    assert!(
        modules.is_dir(),
        "run `npm --prefix frontend ci` first: {} is missing",
        modules.display()
    );
    std::os::unix::fs::symlink(&modules, dir.join("frontend/node_modules")).unwrap();
    run(Command::new("npm")
        .args(["run", "build"])
        .current_dir(dir.join("frontend")));
    let assets = dir.join("frontend/dist/assets");
    let bundle: String = fs::read_dir(&assets)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "js"))
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    // The minifier may write the injected string with any JS quote.
    let literal = ['"', '\'', '`'].map(|q| format!("{q}{version}{q}"));
    assert!(
        literal.iter().any(|l| bundle.contains(l.as_str())),
        "the UI bundle does not carry the string {version}"
    );
}

fn assert_backend_reports(dir: &Path, version: &str) {
    let target = project_root().join("target/release-build-check");
    seed_with_this_build(&target);
    run(Command::new("cargo")
        .args(["build", "--locked", "--offline", "--package", "backend"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(dir));
    let db = dir.join("check.db");
    let url = sqlite_url(&db);
    run(xtask_command()
        .args([
            "migrate",
            "--create",
            "--database-url",
            &url,
            "--migrations",
        ])
        .arg(dir.join("migrations")));

    let backend = Backend::start(backend_command(
        &target.join("debug/backend"),
        &url,
        "127.0.0.1:0",
    ));
    let mut health = agent().get(backend.health_url()).call().unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.body_mut().read_json().unwrap();
    drop(backend);
    assert_eq!(health["version"], version);
}
