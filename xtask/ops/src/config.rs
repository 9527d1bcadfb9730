//! The operations tool's settings: a settings file (`--config FILE`), or in
//! a checkout `[workspace.metadata.migrate]` in the root `Cargo.toml`; the
//! environment overrides either, and flags override the environment.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::history::VersionRange;

/// `[workspace.metadata.migrate]`: how the runbook reaches the service.
/// Every key can be overridden by an environment variable (see [`MigrateConfig::apply_env`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MigrateConfig {
    /// Where backups and the journal go; default: beside the database.
    pub backup_dir: Option<String>,
    /// How many backups to keep (default 5).
    pub keep_backups: Option<usize>,
    /// Take the service down through its maintenance flag file.
    pub maintenance: Option<bool>,
    /// The maintenance flag file; default: the database path + `.maintenance`.
    pub maintenance_flag: Option<String>,
    /// A command (program and arguments, no shell) that stops the service.
    pub stop: Option<Vec<String>>,
    /// A command (program and arguments, no shell) that starts the service.
    pub start: Option<Vec<String>>,
    /// The service's `/health` URL, polled after it is back up.
    pub health_url: Option<String>,
    /// Seconds to wait for a healthy answer (default 30).
    pub health_timeout_secs: Option<u64>,
    /// Seconds to wait for the service to let go of the database (default 10).
    pub lock_timeout_secs: Option<u64>,
    /// Seconds a stop or start command may take (default 60).
    pub command_timeout_secs: Option<u64>,
    /// Postgres: seconds a migration statement may wait for a table lock (default 5).
    pub pg_lock_timeout_secs: Option<u64>,
    /// Postgres: seconds a migration statement may run (default 300).
    pub pg_statement_timeout_secs: Option<u64>,
    /// `migrate --job`: seconds to wait for another instance's run (default 600).
    pub job_lock_wait_secs: Option<u64>,
    /// `migrate --job`, Postgres: seconds to keep retrying a migration that
    /// hit `lock_timeout` (default 60; 0: fail at once).
    pub pg_lock_retry_secs: Option<u64>,
    /// Migration versions missing on purpose, single (`4`) or as ranges
    /// (`"5-20261128"`); any other gap is an error.
    pub allow_gaps: Option<Vec<VersionRange>>,
}

impl MigrateConfig {
    /// `MIGRATE_BACKUP_DIR`, `MIGRATE_KEEP_BACKUPS`, `MIGRATE_MAINTENANCE` (1/0),
    /// `SECRETS_MAINTENANCE_FLAG`, `MIGRATE_STOP` / `MIGRATE_START` (split on
    /// whitespace, never given to a shell), `MIGRATE_HEALTH_URL`,
    /// `MIGRATE_HEALTH_TIMEOUT_SECS`, `MIGRATE_LOCK_TIMEOUT_SECS`,
    /// `MIGRATE_COMMAND_TIMEOUT_SECS`, `MIGRATE_PG_LOCK_TIMEOUT_SECS`,
    /// `MIGRATE_PG_STATEMENT_TIMEOUT_SECS`, `MIGRATE_JOB_LOCK_WAIT_SECS`,
    /// `MIGRATE_PG_LOCK_RETRY_SECS`, `MIGRATE_ALLOW_GAPS` (versions, split on
    /// commas or whitespace; `5-9` is a range).
    pub fn apply_env(mut self) -> anyhow::Result<Self> {
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            env_var(name)?
                .map(|v| {
                    v.trim().parse::<u64>().with_context(|| {
                        format!("{name}=`{v}` is not a whole number of seconds or backups")
                    })
                })
                .transpose()
        };
        let words = |v: String| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        if let Some(v) = env_var("MIGRATE_BACKUP_DIR")? {
            self.backup_dir = Some(v);
        }
        if let Some(n) = number("MIGRATE_KEEP_BACKUPS")? {
            self.keep_backups = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(v) = env_var("MIGRATE_MAINTENANCE")? {
            self.maintenance = Some(switch("MIGRATE_MAINTENANCE", &v)?);
        }
        if let Some(v) = env_var(secrets_contract::maintenance::FLAG_ENV)? {
            self.maintenance_flag = Some(v);
        }
        if let Some(v) = env_var("MIGRATE_STOP")? {
            self.stop = Some(words(v));
        }
        if let Some(v) = env_var("MIGRATE_START")? {
            self.start = Some(words(v));
        }
        if let Some(v) = env_var("MIGRATE_HEALTH_URL")? {
            self.health_url = Some(v);
        }
        self.health_timeout_secs =
            number("MIGRATE_HEALTH_TIMEOUT_SECS")?.or(self.health_timeout_secs);
        let pg_timeout = |name: &str| -> anyhow::Result<Option<u64>> {
            env_var(name)?
                .map(|v| pg_timeout_secs(name, &v))
                .transpose()
        };
        // SQLite's busy timeout counts milliseconds in an int too.
        self.lock_timeout_secs =
            pg_timeout("MIGRATE_LOCK_TIMEOUT_SECS")?.or(self.lock_timeout_secs);
        self.command_timeout_secs = number("MIGRATE_COMMAND_TIMEOUT_SECS")?
            .map(|secs| at_least_one_second("MIGRATE_COMMAND_TIMEOUT_SECS", secs))
            .transpose()?
            .or(self.command_timeout_secs);
        self.pg_lock_timeout_secs =
            pg_timeout("MIGRATE_PG_LOCK_TIMEOUT_SECS")?.or(self.pg_lock_timeout_secs);
        self.pg_statement_timeout_secs =
            pg_timeout("MIGRATE_PG_STATEMENT_TIMEOUT_SECS")?.or(self.pg_statement_timeout_secs);
        self.job_lock_wait_secs = number("MIGRATE_JOB_LOCK_WAIT_SECS")?.or(self.job_lock_wait_secs);
        self.pg_lock_retry_secs = number("MIGRATE_PG_LOCK_RETRY_SECS")?.or(self.pg_lock_retry_secs);
        if let Some(v) = env_var("MIGRATE_ALLOW_GAPS")? {
            self.allow_gaps = Some(versions("MIGRATE_ALLOW_GAPS", &v)?);
        }
        Ok(self)
    }
}

/// Postgres holds `lock_timeout` and `statement_timeout` as milliseconds
/// in an int: the most whole seconds it takes.
pub const PG_TIMEOUT_MAX_SECS: u64 = i32::MAX as u64 / 1000;

/// A Postgres timeout given as `name=value` (an environment variable).
fn pg_timeout_secs(name: &str, value: &str) -> anyhow::Result<u64> {
    let secs = value.trim().parse::<u64>().with_context(|| {
        format!(
            "{name}={value} is not a whole number of seconds: give one from 1 to {PG_TIMEOUT_MAX_SECS}"
        )
    })?;
    pg_timeout_in_range(name, secs)
}

/// 0 would mean "no limit" to Postgres and "no wait" to SQLite; more than
/// the maximum is refused by the server only once the migration starts, and
/// by SQLite's client with a panic after the service went down.
fn pg_timeout_in_range(name: &str, secs: u64) -> anyhow::Result<u64> {
    if !(1..=PG_TIMEOUT_MAX_SECS).contains(&secs) {
        bail!(
            "{name}={secs} is out of range: give a whole number of seconds from 1 to \
             {PG_TIMEOUT_MAX_SECS} (Postgres reads 0 as no limit at all, SQLite as no wait, and both \
             take no more than {PG_TIMEOUT_MAX_SECS} s)"
        );
    }
    Ok(secs)
}

/// A stop or start command given 0 s is killed before it starts.
fn at_least_one_second(name: &str, secs: u64) -> anyhow::Result<u64> {
    if secs == 0 {
        bail!("{name}=0: a stop or start command needs time to run: give at least 1 (seconds)");
    }
    Ok(secs)
}

/// The timeouts of the settings that no environment variable overrides
/// (those are checked as they are read).
fn check_pg_timeouts(config: &MigrateConfig, place: &str) -> anyhow::Result<()> {
    let overridden = |env: &str| std::env::var(env).is_ok_and(|v| !v.trim().is_empty());
    if let Some(secs) = config
        .command_timeout_secs
        .filter(|_| !overridden("MIGRATE_COMMAND_TIMEOUT_SECS"))
    {
        at_least_one_second(&format!("{place} command-timeout-secs"), secs)?;
    }
    let keys = [
        (
            "lock-timeout-secs",
            "MIGRATE_LOCK_TIMEOUT_SECS",
            config.lock_timeout_secs,
        ),
        (
            "pg-lock-timeout-secs",
            "MIGRATE_PG_LOCK_TIMEOUT_SECS",
            config.pg_lock_timeout_secs,
        ),
        (
            "pg-statement-timeout-secs",
            "MIGRATE_PG_STATEMENT_TIMEOUT_SECS",
            config.pg_statement_timeout_secs,
        ),
    ];
    for (key, env, secs) in keys {
        if let Some(secs) = secs.filter(|_| !overridden(env)) {
            pg_timeout_in_range(&format!("{place} {key}"), secs)?;
        }
    }
    Ok(())
}

/// A variable's value; None when unset or blank. A value that is not UTF-8
/// is refused, not taken as unset: that would quietly use the default.
fn env_var(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        // The value is not shown: it may be a URL with a token in it.
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!("{name} is not valid UTF-8: set it to a UTF-8 value, or unset it")
        }
    }
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`; anything else is a typo.
fn switch(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}=`{value}` is neither 1 (on) nor 0 (off): set it to 1 or 0"),
    }
}

/// `4, 7` or `4 7-9` → [4, 7-9].
fn versions(name: &str, list: &str) -> anyhow::Result<Vec<VersionRange>> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|v| !v.is_empty())
        .map(|v| {
            VersionRange::parse(v).map_err(|e| {
                anyhow::anyhow!("{name}=`{list}`: {e}; list versions and ranges like 4,7-9")
            })
        })
        .collect()
}

/// Reads `[workspace.metadata.migrate]` (defaults when absent or when there
/// is no Cargo.toml, as on a production host), then the environment.
pub fn migrate(root: &Path) -> anyhow::Result<MigrateConfig> {
    let config = if root.join("Cargo.toml").is_file() {
        match xtask_common::workspace_metadata::table(root, "migrate")? {
            Some(table) => toml_edit::de::from_str(&table).with_context(|| {
                format!(
                    "{}: [workspace.metadata.migrate] is not valid — see docs/runbook.md (\"Settings\") for its keys",
                    root.join("Cargo.toml").display()
                )
            })?,
            None => MigrateConfig::default(),
        }
    } else {
        MigrateConfig::default()
    };
    let place = format!(
        "{}: [workspace.metadata.migrate]",
        root.join("Cargo.toml").display()
    );
    check_pg_timeouts(&config, &place)?;
    config.apply_env()
}

/// Reads a settings file: TOML with the keys of `[workspace.metadata.migrate]`
/// at its top level (see docs/runbook.md, "Settings"), then the environment.
pub fn migrate_file(file: &Path) -> anyhow::Result<MigrateConfig> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "reading the settings file {}: check its path and that it is readable",
            file.display()
        )
    })?;
    let config: MigrateConfig = toml_edit::de::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid settings file — see docs/runbook.md (\"Settings\") for its keys",
            file.display()
        )
    })?;
    check_pg_timeouts(&config, &format!("{}:", file.display()))?;
    config.apply_env()
}

/// The release tags' prefix (`tag-prefix` of `[workspace.metadata.release]`,
/// default `v`): which tags are releases, for the shipped-files check.
pub fn tag_prefix(root: &Path) -> anyhow::Result<String> {
    let Some(table) = xtask_common::workspace_metadata::table(root, "release")? else {
        return Ok("v".into());
    };
    let doc: toml_edit::DocumentMut = table.parse()?;
    Ok(doc
        .get("tag-prefix")
        .and_then(|v| v.as_str())
        .unwrap_or("v")
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Cargo.toml timeout out of Postgres's range is refused at load,
    /// naming the file and the key; the bounds themselves are taken.
    #[test]
    fn postgres_timeouts_in_cargo_toml_are_range_checked() -> anyhow::Result<()> {
        let dir = tempfile::TempDir::new()?;
        let with = |secs: u64| -> anyhow::Result<anyhow::Result<MigrateConfig>> {
            std::fs::write(
                dir.path().join("Cargo.toml"),
                format!(
                    "[workspace]\n\n[workspace.metadata.migrate]\npg-statement-timeout-secs = {secs}\n"
                ),
            )?;
            Ok(migrate(dir.path()))
        };
        for bad in [0, PG_TIMEOUT_MAX_SECS + 1] {
            let Err(error) = with(bad)? else {
                bail!("pg-statement-timeout-secs = {bad} was accepted");
            };
            let message = format!("{error:#}");
            assert!(
                message
                    .contains("Cargo.toml: [workspace.metadata.migrate] pg-statement-timeout-secs")
                    && message.contains(&format!("={bad} is out of range"))
                    && message.contains("from 1 to 2147483"),
                "{message}"
            );
        }
        for good in [1, PG_TIMEOUT_MAX_SECS] {
            assert_eq!(with(good)??.pg_statement_timeout_secs, Some(good));
        }
        Ok(())
    }

    /// A settings file holds the keys at its top level; a misspelled key or
    /// an out-of-range timeout is refused naming the file.
    #[test]
    fn a_settings_file_is_read_strictly() -> anyhow::Result<()> {
        let dir = tempfile::TempDir::new()?;
        let file = dir.path().join("secrets-ops.toml");
        std::fs::write(&file, "keep-backups = 7\nbackup-dir = \"b\"\n")?;
        let config = migrate_file(&file)?;
        assert_eq!(config.keep_backups, Some(7));
        assert_eq!(config.backup_dir.as_deref(), Some("b"));
        std::fs::write(&file, "keep-backup = 7\n")?;
        let message = format!(
            "{:#}",
            migrate_file(&file)
                .err()
                .context("a misspelled key was taken")?
        );
        assert!(
            message.contains("secrets-ops.toml is not a valid settings file")
                && message.contains("keep-backup"),
            "{message}"
        );
        std::fs::write(&file, "pg-lock-timeout-secs = 0\n")?;
        let message = format!("{:#}", migrate_file(&file).err().context("0 s was taken")?);
        assert!(
            message.contains("secrets-ops.toml: pg-lock-timeout-secs=0 is out of range"),
            "{message}"
        );
        Ok(())
    }
}
