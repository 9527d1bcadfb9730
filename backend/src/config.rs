//! Service settings, all from the environment so a unit file or `make run` can set them.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;

use crate::{dburl::DatabaseUrl, maintenance, seal::keyfile};

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
    /// The most Postgres connections the API uses at once (`/health` has two
    /// of its own); SQLite keeps one.
    pub pool_size: u32,
    /// The key file the values are sealed with (`SECRETS_KEY_FILE`).
    pub key_file: PathBuf,
}

/// Postgres connections for the API unless `DATABASE_POOL_SIZE` says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// The largest `DATABASE_POOL_SIZE`: Postgres allows 100 connections by
/// default, shared by every instance and the operator's tools.
pub const MAX_POOL_SIZE: u32 = 64;

impl Config {
    /// `DATABASE_URL`, `SECRETS_ADDR`, `SECRETS_MAINTENANCE_FLAG`, `SECRETS_FRONTEND_DIR`,
    /// `SECRETS_SWEEP_INTERVAL_SECS`, `DATABASE_POOL_SIZE`, `SECRETS_KEY_FILE`.
    pub fn from_env() -> anyhow::Result<Self> {
        let database = DatabaseUrl::from_env().context("reading DATABASE_URL")?;
        Ok(Config {
            maintenance_flag: maintenance::flag_path_from_env(&database),
            database,
            addr: env_or("SECRETS_ADDR", DEFAULT_ADDR),
            frontend_dir: PathBuf::from(env_or("SECRETS_FRONTEND_DIR", DEFAULT_FRONTEND_DIR)),
            sweep_interval: sweep_interval_from_env()?,
            pool_size: pool_size(std::env::var("DATABASE_POOL_SIZE").ok().as_deref())?,
            key_file: keyfile::path_from_env(),
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

/// `DATABASE_POOL_SIZE`: unset or empty means the default.
fn pool_size(value: Option<&str>) -> anyhow::Result<u32> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_POOL_SIZE);
    };
    match text.parse::<u32>() {
        Ok(size) if (1..=MAX_POOL_SIZE).contains(&size) => Ok(size),
        _ => anyhow::bail!(
            "DATABASE_POOL_SIZE is `{text}`: set it to a whole number from 1 to {MAX_POOL_SIZE} \
             (default {DEFAULT_POOL_SIZE}), or unset it"
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause
mod tests {
    use super::*;

    #[test]
    fn pool_size_defaults_and_bounds() {
        assert_eq!(pool_size(None).unwrap(), DEFAULT_POOL_SIZE);
        assert_eq!(pool_size(Some(" ")).unwrap(), DEFAULT_POOL_SIZE);
        assert_eq!(pool_size(Some("1")).unwrap(), 1);
        assert_eq!(pool_size(Some("64")).unwrap(), 64);
        for bad in ["0", "65", "-1", "eight", "8.5"] {
            let error = pool_size(Some(bad)).unwrap_err().to_string();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
    }
}
