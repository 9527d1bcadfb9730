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

/// The one rule for a relative path the xtask is given — in `DATABASE_URL`
/// (`sqlite:///data/secrets.db`), `--migrations`, `backup-dir`,
/// `maintenance-flag`, `restore BACKUP` — it is taken from the repository
/// root, not the current folder, so `cargo xtask` means the same from any
/// folder of the checkout (and `make run`, run from the root, finds the
/// same `data/secrets.db` as the backend).
pub fn from_root(repo: &Path, path: &Path) -> PathBuf {
    if path.is_relative() {
        repo.join(path)
    } else {
        path.to_path_buf()
    }
}

/// Said once, where a relative path was resolved.
pub fn relative_rule(repo: &Path) -> String {
    format!(
        "relative paths are taken from the repository root {}",
        repo.display()
    )
}
