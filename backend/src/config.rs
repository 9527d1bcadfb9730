//! Service settings, all from the environment so a unit file or `make run` can set them.

use std::path::PathBuf;

use anyhow::Context;

use crate::{dburl::DatabaseUrl, maintenance};

/// Where to listen unless `SECRETS_ADDR` says otherwise (port 0 picks a free one).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
/// The built web UI, relative to the working directory unless `SECRETS_FRONTEND_DIR` is set.
pub const DEFAULT_FRONTEND_DIR: &str = "frontend/dist";

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseUrl,
    pub addr: String,
    pub maintenance_flag: PathBuf,
    pub frontend_dir: PathBuf,
}

impl Config {
    /// `DATABASE_URL`, `SECRETS_ADDR`, `SECRETS_MAINTENANCE_FLAG`, `SECRETS_FRONTEND_DIR`.
    pub fn from_env() -> anyhow::Result<Self> {
        let database = DatabaseUrl::from_env().context("reading DATABASE_URL")?;
        Ok(Config {
            maintenance_flag: maintenance::flag_path_from_env(&database),
            database,
            addr: env_or("SECRETS_ADDR", DEFAULT_ADDR),
            frontend_dir: PathBuf::from(env_or("SECRETS_FRONTEND_DIR", DEFAULT_FRONTEND_DIR)),
        })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
