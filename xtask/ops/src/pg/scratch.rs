//! Scratch databases (`xtask_<label>_<pid>_<n>`) on a Postgres server, for
//! `migrate adopt`'s proof, `migrations check` and the benchmarks: dropped
//! when the value goes, when the run is stopped by SIGTERM or SIGINT, and,
//! for a run that was SIGKILLed, by the next run on this host, which drops
//! what runs that are gone left (a DROP fails harmlessly while the
//! database is in use, e.g. by a run on another host).

use std::{
    path::Path,
    sync::{Mutex, Once},
};

use anyhow::Context;
use regex::Regex;
use secrets_contract::dburl::PgUrl;
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};
use time::OffsetDateTime;

use super::connect;

/// A scratch database on the server `url` points at, dropped when this
/// value goes.
pub struct ScratchDatabase {
    admin: PgUrl,
    pub url: PgUrl,
}

/// The scratch databases of this process that exist now: what a signal drops.
static LIVE: Mutex<Vec<(PgUrl, String)>> = Mutex::new(Vec::new());

impl ScratchDatabase {
    pub fn create(server: &PgUrl, label: &str) -> anyhow::Result<ScratchDatabase> {
        let name = format!(
            "xtask_{label}_{}_{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
        );
        let mut admin = connect(server, "scratch database")?;
        for line in drop_left_by_dead_runs(&mut admin) {
            eprintln!("recovered: {line}");
        }
        drop_on_signal();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .with_context(|| {
                format!(
                    "creating the scratch database {name} on {server} (the user needs CREATEDB)"
                )
            })?;
        if let Ok(mut live) = LIVE.lock() {
            live.push((server.clone(), name.clone()));
        }
        Ok(ScratchDatabase {
            admin: server.clone(),
            url: server.with_database(&name),
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let name = self.url.database().to_owned();
        if let Err(e) = drop_database(&self.admin, &name, true) {
            eprintln!("warning: could not drop the scratch database {name}: {e:#}");
        }
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|(_, n)| *n != name);
        }
    }
}

fn drop_database(server: &PgUrl, name: &str, force: bool) -> anyhow::Result<()> {
    let mut admin = connect(server, "scratch database")?;
    let force = if force { " WITH (FORCE)" } else { "" };
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\"{force}"))?;
    Ok(())
}

/// Scratch databases whose run (pid, on this host) is gone, dropped; one
/// line each. One in use is left (its DROP fails): a live run elsewhere.
fn drop_left_by_dead_runs(admin: &mut postgres::Client) -> Vec<String> {
    let Ok(rows) = admin.query(
        "SELECT datname::text FROM pg_database WHERE datname ~ '^xtask_[a-z]+_[0-9]+_[0-9]+$'",
        &[],
    ) else {
        return Vec::new();
    };
    let Ok(pattern) = Regex::new(r"^xtask_[a-z]+_([0-9]+)_[0-9]+$") else {
        return Vec::new();
    };
    let mut dropped = Vec::new();
    for name in rows.iter().map(|r| r.get::<_, String>(0)) {
        let Some(pid) = pattern
            .captures(&name)
            .and_then(|c| c[1].parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        if admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .is_ok()
        {
            dropped.push(format!(
                "dropped the scratch database {name}, left by a run that is gone (pid {pid})"
            ));
        }
    }
    dropped
}

/// Once per process: on SIGTERM or SIGINT, the live scratch databases are
/// dropped, then the signal takes its default course (the process ends as
/// killed by it, as without this handler).
fn drop_on_signal() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let Ok(mut signals) = Signals::new([SIGTERM, SIGINT]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
                for (server, name) in live {
                    match drop_database(&server, &name, true) {
                        Ok(()) => eprintln!("stopped: dropped the scratch database {name}"),
                        Err(e) => {
                            eprintln!("warning: could not drop the scratch database {name}: {e:#}")
                        }
                    }
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            }
        });
    });
}
