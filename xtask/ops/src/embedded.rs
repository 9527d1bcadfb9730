//! The migrations this binary deploys, embedded when it was built
//! (`build.rs`): the history an installed `secrets-ops` applies when it is
//! given no `--migrations DIR` and runs outside a checkout.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
};

use anyhow::Context;

mod files {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// `(path relative to migrations/, text)`, sorted by path.
pub fn files() -> &'static [(&'static str, &'static str)] {
    files::FILES
}

/// The embedded migrations written into a new private folder (0700) of the
/// temp folder, so that every command reads them as it reads a checkout's
/// `migrations/`; removed when the run ends. Folders that killed runs left
/// (their process is gone) are removed first.
pub fn private_folder() -> anyhow::Result<tempfile::TempDir> {
    let pid = std::process::id();
    let temp = std::env::temp_dir();
    remove_dead_runs_folders(&temp);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{pid}."))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&temp)
        .with_context(|| {
            format!(
                "creating a private folder in {} for the migrations built into this binary: make it writable \
                 (or set TMPDIR to a writable folder), or give the migrations with --migrations DIR",
                temp.display()
            )
        })?;
    write_to(dir.path()).with_context(|| {
        format!(
            "writing the built-in migrations to {}: free space there (or set TMPDIR to another folder), or \
             give the migrations with --migrations DIR",
            temp.display()
        )
    })?;
    Ok(dir)
}

const PREFIX: &str = "secrets-ops-migrations.";

/// `secrets-ops-migrations.<pid>.*` folders of `temp`, this user's, whose
/// process no longer runs.
fn remove_dead_runs_folders(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    let own_uid = own_uid();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = entry
            .metadata()
            .is_ok_and(|m| m.is_dir() && m.uid() == own_uid);
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn own_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Writes the embedded migrations into `dir`.
fn write_to(dir: &Path) -> anyhow::Result<()> {
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
