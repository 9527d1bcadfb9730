//! Writing files so that a reader (or a crash) sees the old contents or the
//! new ones, never a mix.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;

/// Creates `dir` and its missing parents 0700: the folders the xtask makes
/// hold secrets (the database, its backups).
pub fn create_private_dirs(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the folder {}", dir.display()))
}

/// Creates an empty file 0600 that must not exist yet.
pub fn create_private_file(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// The temp file a write goes through: `.<name>.xtask-tmp` beside the target.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.xtask-tmp"))
}

/// Writes `contents` to a temp file beside `path`, fsyncs it, keeps the old
/// file's permissions, renames it over `path` and fsyncs the folder.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let temp = write_temp(path, contents)?;
    replace_with(&temp, path)
}

/// The first half of [`write_atomic`]: the new contents, durable, under the
/// temp name (removed again if writing fails).
pub fn write_temp(path: &Path, contents: &[u8]) -> anyhow::Result<PathBuf> {
    let temp = temp_path(path);
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(contents)?;
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()
    })();
    if let Err(error) = written {
        if temp.is_file() {
            let _ = fs::remove_file(&temp);
        }
        return Err(error)
            .with_context(|| format!("writing {} (through {})", path.display(), temp.display()));
    }
    Ok(temp)
}

/// The second half: the temp file renamed over `path`, the folder fsynced.
pub fn replace_with(temp: &Path, path: &Path) -> anyhow::Result<()> {
    fs::rename(temp, path)
        .with_context(|| format!("renaming {} over {}", temp.display(), path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing folder {}", dir.display()))
}

/// `is a folder`, `is a FIFO (named pipe)`…: what a path that should be a
/// regular file is, for an error that names it.
pub fn what_it_is(metadata: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_dir() {
        "is a folder"
    } else if kind.is_fifo() {
        "is a FIFO (named pipe)"
    } else if kind.is_socket() {
        "is a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "is a device"
    } else if kind.is_symlink() {
        "is a symbolic link"
    } else if kind.is_file() {
        "is a regular file"
    } else {
        "is not a regular file"
    }
}
