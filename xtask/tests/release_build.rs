//! After a release of this very repository (copied into a temp git repo),
//! the built UI shows the new version and the backend built from the tagged
//! commit reports it on /health.
//!
//! The backend is compiled into `target/release-build-check`, a target folder
//! of its own: the one running this test is locked by cargo meanwhile.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use tempfile::TempDir;

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

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

fn git(dir: &Path, args: &[&str]) -> String {
    run(Command::new("git").args(args).current_dir(dir))
        .trim_end()
        .to_owned()
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

#[test]
fn a_release_shows_in_the_ui_bundle_and_on_health() {
    let copy = copy_of_this_repository();
    let dir = copy.path();
    let before = git(dir, &["rev-parse", "HEAD"]);
    run(Command::new(env!("CARGO_BIN_EXE_xtask")).args([
        "--repo",
        dir.to_str().unwrap(),
        "release",
        "minor",
    ]));
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
    run(Command::new("cargo")
        .args(["build", "--locked", "--offline", "--package", "backend"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(dir));
    let db = dir.join("check.db");
    let url = format!("sqlite:///{}", db.display());
    run(Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "migrate",
            "--create",
            "--database-url",
            &url,
            "--migrations",
        ])
        .arg(dir.join("migrations")));

    let mut child = Command::new(target.join("debug/backend"))
        .env("DATABASE_URL", &url)
        .env("SECRETS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = loop {
        let line = rx.recv_timeout(Duration::from_secs(30));
        let Ok(line) = line else {
            let _ = child.kill();
            panic!("the released backend did not start");
        };
        if let Some(at) = line.find("listening on ") {
            break line[at + "listening on ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
        }
    };
    let health: Result<serde_json::Value, _> = ureq::get(format!("{base}/health"))
        .call()
        .and_then(|mut r| r.body_mut().read_json());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(health.unwrap()["version"], version);
}
