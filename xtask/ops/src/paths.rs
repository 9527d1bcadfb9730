//! Where the tool runs — a checkout or an installed host — and so where a
//! relative path, the settings and the migrations come from. Nothing here
//! depends on where the binary was compiled.

use std::{
    cell::OnceCell,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::{config::MigrateConfig, embedded};

/// Environment variable naming the settings file, when `--config` is not given.
pub const CONFIG_ENV: &str = "SECRETS_OPS_CONFIG";

/// Where the tool runs.
pub struct Site {
    /// Relative paths are taken from here.
    base: PathBuf,
    /// Said once, where a relative path was resolved.
    rule: String,
    /// A checkout's root (`--repo`): its `migrations/`, its `Cargo.toml` settings, its git history.
    checkout: Option<PathBuf>,
    /// The settings file (`--config FILE` or `$SECRETS_OPS_CONFIG`).
    config: Option<PathBuf>,
    /// The embedded migrations, written out on first use; removed on drop.
    embedded: OnceCell<tempfile::TempDir>,
}

impl Site {
    /// A checkout when `--repo DIR` is given (`cargo xtask` gives it);
    /// otherwise an installed host: relative paths from the settings file's
    /// folder when there is one, else from the working directory.
    pub fn resolve(repo: Option<&Path>, config: Option<&Path>) -> anyhow::Result<Site> {
        let from_env = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty());
        let config = match config
            .map(Path::to_path_buf)
            .or(from_env.map(PathBuf::from))
        {
            Some(file) => Some(absolute(&file)?),
            None => None,
        };
        if let Some(file) = &config
            && !file.is_file()
        {
            let what = if file.exists() {
                "is not a file (a folder, a device or a pipe)"
            } else {
                "does not exist"
            };
            anyhow::bail!(
                "the settings file {} {what}: give the path of a TOML file (--config FILE or {CONFIG_ENV}), \
                 see docs/runbook.md (\"Settings\")",
                file.display()
            );
        }
        let (base, rule, checkout) = match (repo, &config) {
            (Some(repo), _) => {
                let root = absolute(repo)?;
                let rule = format!(
                    "relative paths are taken from the repository root {}",
                    root.display()
                );
                (root.clone(), rule, Some(root))
            }
            (None, Some(file)) => {
                let folder = file
                    .parent()
                    .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
                let rule = format!(
                    "relative paths are taken from the settings file's folder {}",
                    folder.display()
                );
                (folder, rule, None)
            }
            (None, None) => {
                let here = std::env::current_dir()
                    .context("reading the working directory: cd into an existing folder")?;
                let rule = format!(
                    "relative paths are taken from the working directory {}",
                    here.display()
                );
                (here, rule, None)
            }
        };
        Ok(Site {
            base,
            rule,
            checkout,
            config,
            embedded: OnceCell::new(),
        })
    }

    /// The site of a checkout, for tests and benchmarks.
    pub fn checkout(root: &Path) -> anyhow::Result<Site> {
        Site::resolve(Some(root), None)
    }

    /// The folder relative paths are taken from.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The checkout's root, when this is one.
    pub fn repo(&self) -> Option<&Path> {
        self.checkout.as_deref()
    }

    /// `path` as given when absolute, else taken from [`Site::base`].
    pub fn path(&self, path: &Path) -> PathBuf {
        if path.is_relative() {
            self.base.join(path)
        } else {
            path.to_path_buf()
        }
    }

    /// Said once, where a relative path was resolved.
    pub fn relative_rule(&self) -> &str {
        &self.rule
    }

    /// `--migrations DIR` (from the base), else the checkout's `migrations/`,
    /// else the migrations embedded in this binary.
    pub fn migrations_dir(&self, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
        if let Some(dir) = flag {
            return Ok(self.path(dir));
        }
        if let Some(root) = &self.checkout {
            return Ok(root.join("migrations"));
        }
        if let Some(dir) = self.embedded.get() {
            return Ok(dir.path().to_path_buf());
        }
        let dir = embedded::private_folder()?;
        let path = dir.path().to_path_buf();
        let _ = self.embedded.set(dir);
        Ok(path)
    }

    /// Whether `dir` is where the built-in migrations were written out.
    pub fn is_built_in(&self, dir: &Path) -> bool {
        self.embedded
            .get()
            .is_some_and(|built_in| built_in.path() == dir)
    }

    /// The migrations folder as messages name it: the built-in ones by
    /// what they are, not by the private folder they were written to.
    pub fn describe(&self, dir: &Path) -> String {
        if self.is_built_in(dir) {
            format!(
                "the migrations built into {} {}",
                crate::program::program_name(),
                env!("CARGO_PKG_VERSION")
            )
        } else {
            dir.display().to_string()
        }
    }

    /// The settings: the settings file when given, else the checkout's
    /// `[workspace.metadata.migrate]`, else defaults; then the environment.
    pub fn migrate_config(&self) -> anyhow::Result<MigrateConfig> {
        match (&self.config, &self.checkout) {
            (Some(file), _) => crate::config::migrate_file(file),
            (None, Some(root)) => crate::config::migrate(root),
            (None, None) => MigrateConfig::default().apply_env(),
        }
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| {
        format!(
            "{}: cannot make this path absolute: cd into an existing folder",
            path.display()
        )
    })
}
