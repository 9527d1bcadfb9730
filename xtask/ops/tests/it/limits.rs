//! Settings and files whose values the libraries below cannot take: refused
//! with the cause and the fix before anything goes down, never a panic that
//! leaves the service stopped.

use std::{fs, path::Path, process::Output};

use tempfile::TempDir;

use crate::support::{ops_command, text};

/// A database first deployed at V5 (V6 pending) in a temp folder, and stop/start commands
/// that record each call in `calls`.
struct Window {
    dir: TempDir,
}

impl Window {
    fn new() -> Window {
        let dir = TempDir::new().unwrap();
        let w = Window { dir };
        let out = w.run(&["migrate", "--create", "--to", "5"], &[]);
        assert!(out.status.success(), "{}", text(&out));
        let script = w.path("svc.sh");
        fs::write(
            &script,
            "#!/bin/sh\necho \"$1\" >> \"$(dirname \"$0\")/calls\"\n",
        )
        .unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        w
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut cmd = ops_command();
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", "sqlite:///data/secrets.db");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn window(&self, extra: &[(&str, String)]) -> Output {
        let script = self.path("svc.sh").display().to_string();
        let mut env = vec![
            ("MIGRATE_STOP", format!("{script} stop")),
            ("MIGRATE_START", format!("{script} start")),
        ];
        env.extend(extra.iter().cloned());
        self.run(&["migrate"], &env)
    }

    fn calls(&self) -> String {
        fs::read_to_string(self.path("calls")).unwrap_or_default()
    }
}

fn refused(out: &Output, words: &[&str]) {
    let said = text(out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for word in words {
        assert!(said.contains(word), "`{word}` missing from:\n{said}");
    }
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn a_lock_timeout_sqlite_cannot_take_is_refused_before_the_service_stops() {
    let w = Window::new();
    for secs in ["2147484", "18446744073709551615"] {
        let out = w.window(&[("MIGRATE_LOCK_TIMEOUT_SECS", secs.to_owned())]);
        refused(&out, &["MIGRATE_LOCK_TIMEOUT_SECS", "from 1 to 2147483"]);
        assert_eq!(w.calls(), "", "the service was touched for {secs}");
    }
    fs::write(w.path("ops.toml"), "lock-timeout-secs = 0\n").unwrap();
    let out = w.run(&["--config", "ops.toml", "migrate", "status"], &[]);
    refused(&out, &["ops.toml: lock-timeout-secs=0 is out of range"]);
}

#[test]
fn a_command_timeout_of_zero_is_refused_before_the_service_stops() {
    let w = Window::new();
    let out = w.window(&[("MIGRATE_COMMAND_TIMEOUT_SECS", "0".to_owned())]);
    refused(&out, &["MIGRATE_COMMAND_TIMEOUT_SECS", "at least 1"]);
    assert_eq!(w.calls(), "");
}

#[test]
fn a_backup_numbered_at_the_limit_is_refused_before_the_service_stops() {
    let w = Window::new();
    let backups: Vec<_> = fs::read_dir(w.path("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bak"))
        .collect();
    let first = backups.first().expect("the first deploy's backup");
    // secrets.db.000001.<stamp>.of-<tag>.bak -> the same with the highest number.
    let parts: Vec<&str> = first.splitn(4, '.').collect();
    let top = format!("secrets.db.{}.{}", u64::MAX, parts[3]);
    fs::copy(w.path("data").join(first), w.path("data").join(&top)).unwrap();
    for args in [&["backup"][..], &["migrate"]] {
        let out = if args == ["migrate"] {
            w.window(&[])
        } else {
            w.run(args, &[])
        };
        refused(&out, &[&top, "highest"]);
        assert_eq!(w.calls(), "", "{args:?} touched the service");
    }
    assert!(Path::new(&w.path("data").join(&top)).is_file());
}
