//! The repository automation's settings: `[workspace.metadata.release]` in
//! the root `Cargo.toml`, so what the tooling does is data next to the
//! workspace, not code. (The operations tool reads `[workspace.metadata.migrate]`.)

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// `[workspace.metadata.release]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReleaseConfig {
    /// Put before the version in tag names: `v` gives `v1.2.3`.
    #[serde(default = "default_tag_prefix")]
    pub tag_prefix: String,
    /// Branches a release may be cut from; a trailing `*` matches any suffix.
    #[serde(default = "default_branches")]
    pub branches: Vec<String>,
    /// A Keep a Changelog file, relative to the root; ignored when absent.
    #[serde(default = "default_changelog")]
    pub changelog: String,
    /// Every place the version is written.
    #[serde(default = "default_files")]
    pub files: Vec<FileEntry>,
    /// How long the pre-commit hook may run (default 300 s; the environment's
    /// `RELEASE_HOOK_TIMEOUT_SECS` wins).
    pub hook_timeout_secs: Option<u64>,
}

/// One place a version is written: a file and exactly one way to find it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    /// A dotted key path into a TOML file; `name[key=value]` picks one table
    /// of an array of tables (`package[name=backend].version` in Cargo.lock).
    pub toml: Option<String>,
    /// An RFC 6901 JSON pointer (`/packages//version` is `packages[""].version`).
    pub json: Option<String>,
    /// A regex whose one capture group is the version.
    pub regex: Option<String>,
    /// With `regex`: how many matches there must be (default 1).
    pub count: Option<usize>,
}

fn default_tag_prefix() -> String {
    "v".into()
}

fn default_branches() -> Vec<String> {
    vec!["main".into()]
}

fn default_changelog() -> String {
    "CHANGELOG.md".into()
}

/// The files of this repository's layout, used when the config declares none.
fn default_files() -> Vec<FileEntry> {
    let entry = |path: &str, toml: Option<&str>, json: Option<&str>| FileEntry {
        path: path.into(),
        toml: toml.map(Into::into),
        json: json.map(Into::into),
        regex: None,
        count: None,
    };
    vec![
        entry("backend/Cargo.toml", Some("package.version"), None),
        entry("xtask/Cargo.toml", Some("package.version"), None),
        entry("Cargo.lock", Some("package[name=backend].version"), None),
        entry("Cargo.lock", Some("package[name=xtask].version"), None),
        entry("frontend/package.json", None, Some("/version")),
        entry("frontend/package-lock.json", None, Some("/version")),
        entry(
            "frontend/package-lock.json",
            None,
            Some("/packages//version"),
        ),
    ]
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig {
            tag_prefix: default_tag_prefix(),
            branches: default_branches(),
            changelog: default_changelog(),
            files: default_files(),
            hook_timeout_secs: None,
        }
    }
}

impl ReleaseConfig {
    /// The pre-commit hook's deadline: `RELEASE_HOOK_TIMEOUT_SECS`, else
    /// `hook-timeout-secs`, else 300 s.
    pub fn hook_timeout(&self) -> anyhow::Result<std::time::Duration> {
        let env = std::env::var("RELEASE_HOOK_TIMEOUT_SECS")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let secs = match env {
            Some(v) => v.trim().parse::<u64>().with_context(|| {
                format!("RELEASE_HOOK_TIMEOUT_SECS=`{v}` is not a whole number of seconds")
            })?,
            None => self.hook_timeout_secs.unwrap_or(300),
        };
        if secs == 0 {
            bail!(
                "the pre-commit hook's timeout is 0 s: give it at least 1 (RELEASE_HOOK_TIMEOUT_SECS or hook-timeout-secs)"
            );
        }
        Ok(std::time::Duration::from_secs(secs))
    }

    pub fn branch_allowed(&self, branch: &str) -> bool {
        self.branches
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => branch.starts_with(prefix),
                None => branch == pattern,
            })
    }
}

/// Reads `[workspace.metadata.release]` from `<root>/Cargo.toml`; defaults when absent.
pub fn release(root: &Path) -> anyhow::Result<ReleaseConfig> {
    let Some(table) = crate::workspace_metadata::table(root, "release")? else {
        return Ok(ReleaseConfig::default());
    };
    let config: ReleaseConfig = toml_edit::de::from_str(&table).with_context(|| {
        format!(
            "{}: [workspace.metadata.release] is not valid — see README.md (\"Releases\") for its keys",
            root.join("Cargo.toml").display()
        )
    })?;
    if config.files.is_empty() {
        bail!(
            "{}: [workspace.metadata.release] declares no files",
            root.join("Cargo.toml").display()
        );
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_patterns() {
        let config = ReleaseConfig {
            branches: vec!["main".into(), "release/*".into()],
            ..ReleaseConfig::default()
        };
        assert!(config.branch_allowed("main"));
        assert!(config.branch_allowed("release/1.x"));
        assert!(!config.branch_allowed("mainline"));
        assert!(!config.branch_allowed("feature/x"));
    }
}
