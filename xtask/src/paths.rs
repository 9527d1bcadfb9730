//! Named paths of the repository, so path strings live in one place.

use std::path::{Path, PathBuf};

/// The repository root: the folder above this crate.
pub fn project_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// `migrations/`: the single source of schema changes.
pub fn migrations_dir(repo: &Path) -> PathBuf {
    repo.join("migrations")
}
