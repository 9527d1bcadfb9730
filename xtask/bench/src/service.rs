//! The backend binary under measurement, as its operator runs it: which
//! commands it has (a build with authentication has `token`, one with the
//! backfill has `seal`), a key file and a bearer token made with its own
//! commands when it needs them, and the service started on a given
//! database with nothing else from this process's environment.
//!
//! The token lives only in memory: it is read from `token create`'s stdout
//! and sent in a header, never printed, logged or passed as an argument.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// How long a `--help` probe or an operator command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the service may take to answer `/health` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `--backend`, else `target/release/backend` when built (the build a
/// throughput figure means something for), else the backend beside this
/// xtask, as the other benchmarks find it.
pub(super) fn resolve_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!(
                "--backend {}: no such file: build a backend (`cargo build --release -p backend`) \
                 and pass its path",
                path.display()
            );
        }
        return std::path::absolute(path).with_context(|| format!("resolving {}", path.display()));
    }
    let me = std::env::current_exe().context("finding the xtask binary")?;
    let beside = me.with_file_name("backend");
    let release = me
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("release").join("backend"));
    match release.filter(|p| p.is_file()) {
        Some(release) => Ok(release),
        None if beside.is_file() => Ok(beside),
        None => bail!(
            "no backend binary at {}: build one (`cargo build --release -p backend`) or pass --backend PATH",
            beside.display()
        ),
    }
}

/// The binary and what it needs to serve.
pub(super) struct Binary {
    pub path: PathBuf,
    /// It has `token` (and so `key`): every API request needs a bearer token.
    pub auth: bool,
    /// Where its probes and commands run, its key file and its log live.
    pub work: PathBuf,
}

impl Binary {
    pub fn probe(path: PathBuf, work: &Path) -> anyhow::Result<Binary> {
        let mut binary = Binary {
            path,
            auth: false,
            work: work.to_path_buf(),
        };
        binary.auth = binary.has_command("token")?;
        Ok(binary)
    }

    /// `PATH COMMAND --help` exits 0. A backend without subcommands ignores
    /// its arguments and starts the service, so the probe points it at a
    /// database file that does not exist (it then refuses to start) and on a
    /// free port, and kills it if it still runs after the timeout.
    pub fn has_command(&self, command: &str) -> anyhow::Result<bool> {
        let absent = self.work.join("probe-absent").join("none.db");
        let mut cmd = self.command(&format!("sqlite:///{}", absent.display()));
        cmd.args([command, "--help"]);
        let out = run_with_timeout(cmd, &format!("{} {command} --help", self.path.display()))?;
        Ok(out.is_some_and(|o| o.status.success()))
    }

    /// The binary with only the variables the service and its commands
    /// read, run from the work folder (their relative defaults land there).
    pub fn command(&self, database_url: &str) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.env_clear()
            .current_dir(&self.work)
            .env("DATABASE_URL", database_url)
            .env("SECRETS_ADDR", "127.0.0.1:0")
            .env("SECRETS_FRONTEND_DIR", self.work.join("no-ui"))
            .env(
                "SECRETS_MAINTENANCE_FLAG",
                self.work.join("bench.maintenance"),
            )
            .env("RUST_LOG", "warn");
        if self.auth {
            cmd.env("SECRETS_KEY_FILE", self.key_file());
        }
        cmd
    }

    fn key_file(&self) -> PathBuf {
        self.work.join("bench.key")
    }

    /// Runs `PATH ARGS…` on `database_url` to completion; fails naming the
    /// command and its stderr (the commands print no secret there).
    pub fn run(&self, database_url: &str, args: &[&str]) -> anyhow::Result<Output> {
        let label = format!("{} {}", self.path.display(), args.join(" "));
        let mut cmd = self.command(database_url);
        cmd.args(args);
        let Some(out) = run_with_timeout(cmd, &label)? else {
            bail!(
                "`{label}` did not finish in {} s",
                COMMAND_TIMEOUT.as_secs()
            );
        };
        if !out.status.success() {
            bail!(
                "`{label}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    }

    /// A key file (`key generate`, once per work folder) and a fresh token
    /// named `name` in the database, for a binary with authentication;
    /// `None` for one without.
    pub fn credentials(&self, database_url: &str, name: &str) -> anyhow::Result<Option<String>> {
        if !self.auth {
            return Ok(None);
        }
        let key = self.key_file();
        if !key.exists() {
            let key_arg = key.to_string_lossy().into_owned();
            self.run(database_url, &["key", "generate", &key_arg])?;
        }
        let out = self.run(database_url, &["token", "create", name])?;
        let token = String::from_utf8(out.stdout)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|t| !t.is_empty() && !t.contains(char::is_whitespace));
        match token {
            Some(token) => Ok(Some(token)),
            None => bail!(
                "`{} token create {name}` printed no single-line token on stdout \
                 (the contract of #14): is this backend from the sealing branch?",
                self.path.display()
            ),
        }
    }

    /// Starts the service on `database_url` and waits for `/health`.
    pub fn serve(&self, database_url: &str, token: Option<String>) -> anyhow::Result<Service> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free loopback port")?
            .port();
        let log_path = self.work.join("backend.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = self
            .command(database_url)
            .env("SECRETS_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.path.display()))?;
        let mut service = Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token,
            version: String::new(),
        };
        service.version = service.wait_healthy(&log_path)?;
        Ok(service)
    }
}

/// Runs `cmd` with its output captured; `None` when it was still running
/// after [`COMMAND_TIMEOUT`] (it is then killed).
fn run_with_timeout(mut cmd: Command, label: &str) -> anyhow::Result<Option<Output>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running `{label}`"))?;
    // Outputs here are a few lines: they fit in the pipes while we poll.
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(child.wait_with_output()?))
}

/// An HTTP client (the clients' and the health check's) that reports error statuses instead of failing on them.
pub(super) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A running backend, killed and reaped on drop.
pub(super) struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bearer token for `/api/*`, when the binary needs one.
    pub token: Option<String>,
    /// What its `/health` reports.
    pub version: String,
}

impl Service {
    /// Polls `/health` until it answers 200; returns the version it reports.
    fn wait_healthy(&mut self, log: &Path) -> anyhow::Result<String> {
        let agent = agent();
        let url = format!("{}/health", self.base);
        let start = Instant::now();
        loop {
            if let Ok(mut answer) = agent.get(&url).call()
                && answer.status() == 200
            {
                let health: serde_json::Value = answer
                    .body_mut()
                    .read_json()
                    .context("reading /health's JSON")?;
                return Ok(health["version"].as_str().unwrap_or("unknown").to_owned());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the backend exited ({status}) before it served: {}",
                    tail(log)
                );
            }
            if start.elapsed() > START_TIMEOUT {
                bail!(
                    "the backend did not answer {url} with 200 within {} s: {}",
                    START_TIMEOUT.as_secs(),
                    tail(log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines the backend logged, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines[lines.len().saturating_sub(5)..].join("\n");
    if last.is_empty() {
        format!("it logged nothing ({})", log.display())
    } else {
        last
    }
}
