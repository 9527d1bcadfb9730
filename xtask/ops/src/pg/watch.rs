//! Watching a migration session from the outside while it runs: a second
//! session notes which sessions block it (a blocked session cannot ask
//! itself), and SIGINT/SIGTERM cancel its statement on the server before
//! the process goes, so a killed job leaves nothing running for minutes.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI32, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::Context;
use postgres::{CancelToken, Client, NoTls};
use secrets_contract::dburl::PgUrl;
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};

/// How often the watcher asks who blocks the session.
const POLL: Duration = Duration::from_millis(200);

/// After a signal, how long the run gets to roll back and say so before
/// the process exits anyway (it may be between statements, or in a wait).
const GRACE: Duration = Duration::from_secs(10);

/// The watch over one session; it ends (the watcher's session closed) when dropped.
pub struct Watch {
    blockers: Arc<Mutex<Option<String>>>,
    signal: Arc<AtomicI32>,
    /// In [`Watch::sleep`]: no statement runs, so a signal has none to cancel.
    waiting: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    watcher: Option<thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `client`'s session on `url`; from here SIGINT and
    /// SIGTERM cancel its statement instead of killing the process at once.
    pub fn start(url: &PgUrl, client: &mut Client, purpose: &str) -> anyhow::Result<Watch> {
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[])?.get(0);
        let signal = Arc::new(AtomicI32::new(0));
        let waiting = Arc::new(AtomicBool::new(false));
        let session = Session {
            token: client.cancel_token(),
            pid,
            waiting: Arc::clone(&waiting),
        };
        cancel_on_signal(session, Arc::clone(&signal))?;
        let blockers = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        // Naming the blocker is a courtesy: a server out of connections
        // still gets its migration, with a warning.
        let watcher = match super::connect(url, &format!("{purpose} (watching for blockers)")) {
            Ok(observer) => Some(watch_blockers(observer, pid, &blockers, &stop)),
            Err(e) => {
                eprintln!(
                    "warning: no second session to watch for blocking sessions ({e:#}); a lock wait \
                     will not name the session that holds the lock"
                );
                None
            }
        };
        Ok(Watch {
            blockers,
            signal,
            waiting,
            stop,
            watcher,
        })
    }

    /// The sessions last seen blocking the watched one, and forgets them
    /// (the next attempt starts afresh).
    pub fn take_blockers(&self) -> Option<String> {
        self.blockers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The signal received, if any: `SIGINT` or `SIGTERM`.
    pub fn signal(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::SeqCst) {
            2 => Some("SIGINT"),
            15 => Some("SIGTERM"),
            _ => None,
        }
    }

    /// Announces the wait, then sleeps `wait`, cut short by a signal; false
    /// when one came. The run counts as waiting before the announcement, so
    /// a signal sent on reading it never claims a running statement.
    pub fn sleep(&self, wait: Duration, announce: impl FnOnce()) -> bool {
        self.waiting.store(true, Ordering::SeqCst);
        announce();
        let rested = self.rest(wait);
        self.waiting.store(false, Ordering::SeqCst);
        rested
    }

    fn rest(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.signal().is_some() {
                return false;
            }
            thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
        self.signal().is_none()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Notes, until `stop`, the sessions blocking `pid` as last seen.
fn watch_blockers(
    mut observer: Client,
    pid: i32,
    blockers: &Arc<Mutex<Option<String>>>,
    stop: &Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let (blockers, stop) = (Arc::clone(blockers), Arc::clone(stop));
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Some(found)) = blocking_sessions(&mut observer, pid) {
                *blockers.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
            }
            thread::sleep(POLL);
        }
    })
}

/// The watched session, as the signal handler needs it.
struct Session {
    token: CancelToken,
    pid: i32,
    waiting: Arc<AtomicBool>,
}

/// Installs the handlers now (a signal from here on is caught), then waits
/// for one on a thread of its own: records it, cancels the session's
/// statement, and exits the process if the run has not ended in [`GRACE`].
fn cancel_on_signal(session: Session, received: Arc<AtomicI32>) -> anyhow::Result<()> {
    // signal-hook, as the scratch databases' handler (`pg_scratch`): both
    // are called on a signal, each on its own thread.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("catching SIGTERM and SIGINT")?;
    thread::spawn(move || {
        let Some(number) = signals.forever().next() else {
            return;
        };
        received.store(number, Ordering::SeqCst);
        let name = if number == SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        let Session {
            token,
            pid,
            waiting,
        } = session;
        // Read once: the run clears the flag as soon as it sees the signal,
        // which can be while the cancel below is on its way to the server;
        // a second read would then claim a statement that never ran.
        let was_waiting = waiting.load(Ordering::SeqCst);
        if was_waiting {
            eprintln!("{name}: no statement is running (waiting to retry); stopping");
        }
        // Cancelled even while waiting: the wait may have just ended.
        match token.cancel_query(NoTls) {
            Ok(()) if was_waiting => {}
            Ok(()) => {
                eprintln!("{name}: cancelling the running statement on the server (pid {pid})")
            }
            Err(e) => eprintln!(
                "{name}: could not cancel the statement on the server (pid {pid}): {e}; its connection \
                 closes when this process exits"
            ),
        }
        thread::sleep(GRACE);
        std::process::exit(128 + number);
    });
    Ok(())
}

/// The sessions `pid` waits for, as `pg_stat_activity` shows them: never
/// their query text, which may hold a stored value.
fn blocking_sessions(client: &mut Client, pid: i32) -> Result<Option<String>, postgres::Error> {
    let rows = client.query(
        "SELECT a.pid, a.application_name, COALESCE(a.state, 'unknown'), \
                COALESCE(extract(epoch FROM now() - a.xact_start)::int8, 0), \
                COALESCE(to_char(a.query_start AT TIME ZONE 'UTC', 'HH24:MI:SS'), '?') \
         FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids($1)) ORDER BY a.pid",
        &[&pid],
    )?;
    if rows.is_empty() {
        return Ok(None);
    }
    let sessions: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "pid {} `{}` ({}, transaction open {} s, last query started {} UTC)",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, i64>(3),
                r.get::<_, String>(4)
            )
        })
        .collect();
    Ok(Some(sessions.join(", ")))
}
