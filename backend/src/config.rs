//! Service settings, all from the environment so a unit file or `make run` can set them.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;

use crate::{dburl::DatabaseUrl, maintenance};

/// Where to listen unless `SECRETS_ADDR` says otherwise (port 0 picks a free one).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
/// The built web UI, relative to the working directory unless `SECRETS_FRONTEND_DIR` is set.
pub const DEFAULT_FRONTEND_DIR: &str = "frontend/dist";
/// How often expired secrets are deleted unless `SECRETS_SWEEP_INTERVAL_SECS` says otherwise.
pub const DEFAULT_SWEEP_INTERVAL_SECS: u64 = 60;

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseUrl,
    pub addr: String,
    pub maintenance_flag: PathBuf,
    pub frontend_dir: PathBuf,
    /// Between two deletions of expired secrets (they are never revealed in between).
    pub sweep_interval: Duration,
}

impl Config {
    /// `DATABASE_URL`, `SECRETS_ADDR`, `SECRETS_MAINTENANCE_FLAG`, `SECRETS_FRONTEND_DIR`,
    /// `SECRETS_SWEEP_INTERVAL_SECS`.
    pub fn from_env() -> anyhow::Result<Self> {
        let database = DatabaseUrl::from_env().context("reading DATABASE_URL")?;
        Ok(Config {
            maintenance_flag: maintenance::flag_path_from_env(&database),
            database,
            addr: env_or("SECRETS_ADDR", DEFAULT_ADDR),
            frontend_dir: PathBuf::from(env_or("SECRETS_FRONTEND_DIR", DEFAULT_FRONTEND_DIR)),
            sweep_interval: sweep_interval_from_env()?,
        })
    }
}

fn sweep_interval_from_env() -> anyhow::Result<Duration> {
    const NAME: &str = "SECRETS_SWEEP_INTERVAL_SECS";
    let text = env_or(NAME, &DEFAULT_SWEEP_INTERVAL_SECS.to_string());
    match text.parse::<u64>() {
        Ok(seconds) if (1..=86_400).contains(&seconds) => Ok(Duration::from_secs(seconds)),
        _ => anyhow::bail!(
            "{NAME}={text:?} is not a number of seconds from 1 to 86400: set it to, e.g., \
             {DEFAULT_SWEEP_INTERVAL_SECS} (the default), or unset it"
        ),
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
