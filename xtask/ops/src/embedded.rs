//! The migrations this binary deploys, embedded when it was built
//! (`build.rs`): the history an installed `secrets-ops` applies when it is
//! given no `--migrations DIR` and runs outside a checkout.

use std::path::Path;

use anyhow::Context;

mod files {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// `(path relative to migrations/, text)`, sorted by path.
pub fn files() -> &'static [(&'static str, &'static str)] {
    files::FILES
}

/// Writes the embedded migrations into `dir` (an empty private folder), so
/// that every command reads them as it reads a checkout's `migrations/`.
pub fn write_to(dir: &Path) -> anyhow::Result<()> {
    for (name, text) in files() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| {
            format!(
                "writing the embedded migration {name} to {}",
                path.display()
            )
        })?;
    }
    Ok(())
}
