//! The job's migration step on a busy server: a migration that hits
//! `lock_timeout` rolled back whole, so it is tried again with a growing
//! wait (1 s, 2 s, 4 s … 30 s) within the retry budget, each wait naming
//! the session that blocks it; SIGINT/SIGTERM cancel the statement on the
//! server and end the job, saying what committed before.

use std::time::{Duration, Instant};

use postgres::Client;
use refinery_core::Migration;
use secrets_contract::dburl::PgUrl;

use crate::{
    failpoint,
    history::MigrationFile,
    pg::{self, Stopped, Timeouts, watch::Watch},
};

/// The longest single wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// `migrate --job` ended by SIGINT or SIGTERM; its exit status is 128 + the signal's number.
#[derive(Debug)]
pub struct Cancelled {
    pub message: String,
    pub exit_code: u8,
}

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cancelled {}

/// Applies the pending migrations of `files`, retrying lock timeouts
/// within `retry`, each run with `timeouts`; the migrations applied, in order.
pub fn apply_with_retries(
    timeouts: Timeouts,
    retry: Duration,
    url: &PgUrl,
    client: &mut Client,
    files: &[MigrationFile],
    current: i32,
) -> anyhow::Result<Vec<Migration>> {
    let watch = Watch::start(url, client, "migrate --job")?;
    let started = Instant::now();
    let mut applied = Vec::new();
    let mut wait = Duration::from_secs(1);
    loop {
        let stopped = match pg::apply_pending(client, files, timeouts, &mut || {
            failpoint::hit("mid-migration").map_err(|e| e.to_string())
        }) {
            Ok(more) => {
                applied.extend(more);
                return Ok(applied);
            }
            Err(stopped) => stopped,
        };
        applied.extend(stopped.applied.iter().cloned());
        let so_far = committed(&applied, current);
        if let Some(signal) = watch.signal() {
            return Err(cancelled(signal, &so_far, &stopped));
        }
        if !stopped.lock_timeout {
            let how = match (stopped.no_transaction, stopped.left_invalid) {
                (true, true) => {
                    "a no-transaction migration failed outside any transaction, leaving what is named below"
                }
                (true, false) => "a no-transaction migration failed outside any transaction",
                (false, _) => "the job's migration failed and its transaction rolled back",
            };
            // Once a group committed, refinery's "nothing was changed" is not true.
            let error = match (&stopped.statement, applied.is_empty()) {
                (Some(statement), false) => anyhow::Error::msg(statement.clone()),
                _ => stopped.error,
            };
            return Err(error.context(format!("{how}; {so_far}")));
        }
        let blockers = watch
            .take_blockers()
            .unwrap_or_else(|| "a session the watcher did not catch in time".to_owned());
        let left = retry.saturating_sub(started.elapsed());
        if left.is_zero() {
            anyhow::bail!(
                "{}\nthe job gave up after {:.1} s of retries: a table lock was not granted within lock_timeout ({} s), \
                 blocked by {blockers}. That migration rolled back; {so_far}. Let that session finish (or end it), \
                 then run the job again; raise MIGRATE_PG_LOCK_RETRY_SECS (pg-lock-retry-secs, now {} s) to keep \
                 trying longer",
                stopped
                    .statement
                    .unwrap_or_else(|| stopped.error.to_string()),
                started.elapsed().as_secs_f64(),
                timeouts.lock.as_secs(),
                retry.as_secs()
            );
        }
        let this_wait = wait.min(left);
        let announce = || {
            println!(
                "job: lock_timeout ({} s) hit, blocked by {blockers}; that migration rolled back; retrying in {:.1} s \
                 ({:.1} s of the {} s retry budget left)",
                timeouts.lock.as_secs(),
                this_wait.as_secs_f64(),
                left.as_secs_f64(),
                retry.as_secs()
            );
        };
        if !watch.sleep(this_wait, announce) {
            let signal = watch.signal().unwrap_or("a signal");
            return Err(cancelled_waiting(signal, &so_far));
        }
        wait = (wait * 2).min(MAX_WAIT);
    }
}

/// What the run committed before it stopped, and the schema version now.
fn committed(applied: &[Migration], current: i32) -> String {
    match applied.last() {
        None => format!("no migration was recorded: the schema version is still {current}"),
        Some(last) => format!(
            "committed before it: {} (schema version now {})",
            applied
                .iter()
                .map(|m| format!("V{}__{}", m.version(), m.name()))
                .collect::<Vec<_>>()
                .join(", "),
            last.version()
        ),
    }
}

/// The run stopped by `signal` while a statement ran: what that left, and
/// what a re-run needs.
fn cancelled(signal: &str, so_far: &str, stopped: &Stopped) -> anyhow::Error {
    let left = stopped
        .statement
        .as_deref()
        .filter(|_| stopped.no_transaction);
    let (what, next) = match (left, stopped.left_invalid) {
        (Some(left), true) => (
            format!("the no-transaction statement running on the server was cancelled: {left}"),
            "Drop that index as shown, then run the job again to apply the rest",
        ),
        (Some(left), false) => (
            format!("the no-transaction statement running on the server was cancelled: {left}"),
            "Run the job again to apply the rest",
        ),
        (None, _) => (
            "the statement running on the server was cancelled and its transaction rolled back"
                .to_owned(),
            "Run the job again to apply the rest",
        ),
    };
    stopped_by(signal, format!("{what}; {so_far}. {next}"))
}

/// The run stopped by `signal` between two attempts: nothing was running.
fn cancelled_waiting(signal: &str, so_far: &str) -> anyhow::Error {
    stopped_by(
        signal,
        format!(
            "it was waiting to retry, no statement was running; {so_far}. Run the job again to apply the rest"
        ),
    )
}

fn stopped_by(signal: &str, what: String) -> anyhow::Error {
    let number = if signal == "SIGINT" { 2 } else { 15 };
    Cancelled {
        message: format!("job cancelled by {signal}: {what}"),
        exit_code: 128 + number,
    }
    .into()
}
