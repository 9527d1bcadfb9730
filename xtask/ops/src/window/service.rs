//! Reaching the running service: taking it down and up (stop/start commands,
//! or the backend's maintenance flag file) and waiting for a healthy answer.
//! Every wait has a timeout; commands run without a shell.

use std::{
    fs,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::engine::steps::outcome;
use crate::redact::redact;

/// How a maintenance flag set by the runbook begins: recovery removes only
/// flags it recognises as its own.
pub const FLAG_NOTE: &str = "maintenance flag set by cargo xtask migrate";

/// How the service is taken down and brought back.
#[derive(Debug, Clone)]
pub enum Mode {
    Commands {
        stop: Vec<String>,
        start: Vec<String>,
    },
    Maintenance {
        flag: PathBuf,
    },
    /// Nothing configured (a laptop): the steps say they were skipped.
    Unmanaged,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub mode: Mode,
    pub command_timeout: Duration,
}

impl Service {
    pub fn describe(&self) -> String {
        match &self.mode {
            Mode::Commands { stop, start } => {
                format!("stop `{}`, start `{}`", stop.join(" "), start.join(" "))
            }
            Mode::Maintenance { flag } => format!("maintenance flag {}", crate::quote::path(flag)),
            Mode::Unmanaged => "not configured".into(),
        }
    }

    /// Stops the service, or puts it in maintenance; returns what was done.
    pub fn take_down(&self) -> anyhow::Result<String> {
        match &self.mode {
            Mode::Commands { stop, .. } => {
                run_configured(stop, self.command_timeout).context("the stop command failed")?;
                Ok(format!("ran `{}`", stop.join(" ")))
            }
            Mode::Maintenance { flag } => {
                if operators_flag(flag) {
                    // Someone put the service in maintenance on purpose: the
                    // flag and its note are theirs, and so is ending it.
                    return Ok(format!(
                        "maintenance flag {} was already set by someone else: left exactly as it is (the \
                         service stays in maintenance after the window)",
                        flag.display()
                    ));
                }
                let note = format!("{FLAG_NOTE} (pid {})\n", std::process::id());
                fs::write(flag, note)
                    .with_context(|| format!("creating the maintenance flag {}", flag.display()))?;
                Ok(format!("created maintenance flag {}", flag.display()))
            }
            Mode::Unmanaged => Ok("skipped: no stop command or maintenance mode configured".into()),
        }
    }

    /// Starts the service again, or ends maintenance.
    pub fn bring_up(&self) -> anyhow::Result<String> {
        match &self.mode {
            Mode::Commands { start, .. } => {
                run_configured(start, self.command_timeout).context("the start command failed")?;
                Ok(format!("ran `{}`", start.join(" ")))
            }
            Mode::Maintenance { flag } => {
                if operators_flag(flag) {
                    return Ok(format!(
                        "kept the maintenance flag {} that someone else set: the service stays in maintenance \
                         until it is removed",
                        flag.display()
                    ));
                }
                // Only a removal that happened is said: a flag never
                // created (its folder missing) was not "removed".
                match fs::remove_file(flag) {
                    Ok(()) => Ok(format!("removed maintenance flag {}", flag.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(format!(
                        "no maintenance flag {} to remove (it was not set)",
                        flag.display()
                    )),
                    Err(e) => Err(e).with_context(|| {
                        format!("removing the maintenance flag {}", flag.display())
                    }),
                }
            }
            Mode::Unmanaged => {
                Ok("skipped: no start command or maintenance mode configured".into())
            }
        }
    }
}

impl Service {
    /// For the preflight: the maintenance flag can be created (its folder
    /// exists), so the window does not fail after the service was touched.
    pub fn refuse_unusable_flag(&self) -> anyhow::Result<()> {
        let Mode::Maintenance { flag } = &self.mode else {
            return Ok(());
        };
        let folder = flag.parent().filter(|p| !p.as_os_str().is_empty());
        match folder {
            Some(folder) if !folder.is_dir() => bail!(
                "the maintenance flag's folder {} does not exist: create it, or set SECRETS_MAINTENANCE_FLAG \
                 (maintenance-flag) to the path the service watches",
                crate::quote::path(folder)
            ),
            _ => Ok(()),
        }
    }

    /// Whether the service stays in maintenance after the window because an
    /// operator's own flag is set (its health is then not the runbook's to check).
    pub fn kept_in_maintenance(&self) -> bool {
        matches!(&self.mode, Mode::Maintenance { flag } if operators_flag(flag))
    }
}

/// A maintenance flag that exists and was not written by the runbook.
fn operators_flag(flag: &std::path::Path) -> bool {
    match fs::read(flag) {
        Ok(text) => !text.starts_with(FLAG_NOTE.as_bytes()),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Step 3 of the window: the service goes down, then `prove_quiet` shows
/// the database is no longer in use. If either fails, the service is
/// brought back before the error is returned.
pub fn take_down_then<T>(
    service: &Service,
    prove_quiet: impl FnOnce() -> anyhow::Result<(T, &'static str)>,
) -> anyhow::Result<(T, String)> {
    let down = match service.take_down() {
        Ok(detail) => detail,
        Err(error) => {
            let back = service.bring_up();
            return Err(error.context(format!(
                "the service could not be taken down; tried to bring it back: {}",
                outcome(&back)
            )));
        }
    };
    match prove_quiet() {
        Ok((value, quiet)) => Ok((value, format!("{down}; {quiet}"))),
        Err(error) => {
            let back = service.bring_up();
            Err(error.context(format!("brought the service back: {}", outcome(&back))))
        }
    }
}

/// A configured stop or start command (program and arguments, no shell).
fn run_configured(command: &[String], timeout: Duration) -> anyhow::Result<()> {
    let (program, args) = command.split_first().context("the command is empty")?;
    crate::process::run_with_timeout(
        Command::new(program).args(args),
        &command.join(" "),
        timeout,
        "MIGRATE_COMMAND_TIMEOUT_SECS",
    )
}

/// What a healthy service must report.
pub struct Expected<'a> {
    pub schema_version: i32,
    pub version: Option<&'a str>,
}

/// Polls `url` until it answers 200 with `status` ok and the expected
/// versions, or `timeout` passes.
pub fn wait_healthy(url: &str, timeout: Duration, expected: &Expected) -> anyhow::Result<String> {
    let agent = health_client();
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < timeout {
        match check_once(&agent, url, expected) {
            Ok(summary) => return Ok(summary),
            Err(why) => last = why,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "{} did not report healthy within {} s; last: {last}",
        redact(url),
        timeout.as_secs()
    )
}

fn check_once(agent: &ureq::Agent, url: &str, expected: &Expected) -> Result<String, String> {
    let mut response = agent.get(url).call().map_err(|e| redact(&e.to_string()))?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .body_mut()
        .read_json()
        .map_err(|e| format!("HTTP {status}, body not JSON: {e}"))?;
    if status != 200 || body["status"] != "ok" {
        return Err(format!("HTTP {status}, status {}", body["status"]));
    }
    if body["schema_version"] != expected.schema_version {
        return Err(format!(
            "schema_version {} (expected {})",
            body["schema_version"], expected.schema_version
        ));
    }
    if let Some(version) = expected.version
        && body["version"] != version
    {
        return Err(format!("version {} (expected {version})", body["version"]));
    }
    Ok(format!(
        "HTTP 200, status ok, schema_version {}, version {}",
        body["schema_version"], body["version"]
    ))
}

/// A client for health checks: error statuses are answers, not failures, and
/// no request waits more than 2 s.
fn health_client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into()
}

/// One health request: does it answer 200 with status ok?
pub fn answers_ok(url: &str) -> bool {
    health_client()
        .get(url)
        .call()
        .ok()
        .and_then(|mut r| {
            r.body_mut()
                .read_json::<serde_json::Value>()
                .ok()
                .map(|b| (r.status().as_u16(), b))
        })
        .is_some_and(|(status, body)| status == 200 && body["status"] == "ok")
}
