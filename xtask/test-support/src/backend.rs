//! The real backend binary as a process of its own.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use crate::http::wait_until;

/// The backend `binary` serving `database_url` on `addr` (`127.0.0.1:0`
/// picks a free port, reported by [`Backend::base`]), logging at info level,
/// sealing with [`test_key_file`], with nothing else from the test's
/// environment. Not yet run: add variables, or run it to see a start-up refused.
pub fn backend_command(binary: &Path, database_url: &str, addr: &str) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env("DATABASE_URL", database_url)
        .env("SECRETS_ADDR", addr)
        .env("SECRETS_KEY_FILE", test_key_file())
        .env("RUST_LOG", "info");
    cmd
}

/// A fixed key only the tests use (32 bytes of 0x42), id `test`.
const TEST_KEY_LINE: &str = "test QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n";

/// A valid key file (mode 0600) for tests that do not care which key
/// seals: `target/<profile>/test-secrets.key`, beside the test binaries,
/// so it goes with `cargo clean` and litters no temp folder. Every test
/// process writes the same bytes, through a rename, so concurrent writers
/// and readers always see a whole file.
pub fn test_key_file() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test binary>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("test-secrets.key");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(TEST_KEY_LINE) {
        // One temp name per writer, threads of one test binary included:
        // a shared name would be renamed away under another thread.
        static WRITERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let writer = WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = profile_dir.join(format!(".test-secrets.key.{}.{writer}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .unwrap();
        file.write_all(TEST_KEY_LINE.as_bytes()).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    }
    path
}

/// The child's stderr, line by line, read on a thread of its own. The thread
/// keeps draining after the receiver is gone: a full pipe would block the child.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// A started backend process, killed (and reaped) on drop.
pub struct Backend {
    pub child: Child,
    /// `http://{address}` from its "listening on" line.
    pub base: String,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Backend {
    /// Runs `cmd` (see [`backend_command`]) and waits until the backend says
    /// where it listens and `/health` answers (any status: 503 in
    /// maintenance). Panics with what it logged when it exits or stays
    /// silent for 30 s first.
    pub fn start(mut cmd: Command) -> Backend {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let reader = {
            let log = Arc::clone(&log);
            // Drains to the end, whoever listens: a full pipe would block the child.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                    drop(log);
                    let _ = tx.send(line);
                }
            })
        };
        let mut backend = Backend {
            child,
            base: String::new(),
            log,
            reader: Some(reader),
        };
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                backend.base = rest.split_whitespace().next().unwrap().to_owned();
                break;
            }
        }
        if backend.base.is_empty() {
            panic!("the backend did not start:\n{}", backend.log());
        }
        if wait_until(&backend.health_url(), |_| true).is_none() {
            panic!(
                "the backend never answered on {}:\n{}",
                backend.health_url(),
                backend.log()
            );
        }
        backend
    }

    pub fn health_url(&self) -> String {
        format!("{}/health", self.base)
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills it and returns everything it logged, to its last line.
    pub fn stop(mut self) -> String {
        self.kill();
        self.log()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `BINARY token ARGS…` on `database_url` (`backend token create NAME`,
/// `list`, `revoke NAME`), with nothing else from the test's environment.
pub fn token_command(binary: &Path, database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .arg("token")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} token: {e}", binary.display()))
}

/// A new API token named `name` on `database_url`, as `BINARY token create`
/// prints it (the one line of its stdout); send it as `Bearer` + it.
pub fn create_token(binary: &Path, database_url: &str, name: &str) -> String {
    let out = token_command(binary, database_url, &["create", name]);
    assert!(
        out.status.success(),
        "backend token create {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.strip_suffix('\n').unwrap_or(&stdout);
    assert!(
        token.starts_with("sst_") && !token.contains('\n'),
        "not one token line: {stdout:?}"
    );
    token.to_owned()
}
