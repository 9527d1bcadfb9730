//! Named paths of the repository, so path strings live in one place.

use std::path::{Path, PathBuf};

/// The checkout this command works on, found at run time, never where the
/// binary was compiled: `cargo xtask` (cargo run) sets `CARGO_MANIFEST_DIR`
/// to this crate's folder in the checkout it runs in; a binary run directly
/// looks up from the working directory for the folder holding
/// `xtask/Cargo.toml` beside a `Cargo.toml`.
pub fn project_root() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from)
        && dir.join("Cargo.toml").is_file()
        && let Some(root) = dir.parent().filter(|root| is_checkout(root))
    {
        return Ok(root.to_path_buf());
    }
    let here = std::env::current_dir()?;
    here.ancestors()
        .find(|dir| is_checkout(dir))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not inside a checkout of this repository (no Cargo.toml beside xtask/Cargo.toml above it): \
                 cd into the checkout, or pass --repo DIR",
                here.display()
            )
        })
}

fn is_checkout(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("xtask/Cargo.toml").is_file()
}

/// `migrations/`: the single source of schema changes.
pub fn migrations_dir(repo: &Path) -> PathBuf {
    repo.join("migrations")
}
