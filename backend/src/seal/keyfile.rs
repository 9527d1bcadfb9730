//! The key file (`SECRETS_KEY_FILE`, default `data/secrets.key`): text, one
//! key per line, `KEY_ID BASE64_32_BYTES`, `#` comments and blank lines
//! allowed; the LAST key is current. Key ids match `[A-Za-z0-9_-]{1,32}`.
//!
//! The file must be the owner's alone (no group or other permission bits):
//! a key anyone on the machine can read protects nothing. Errors name the
//! file and the line, never its contents, and say how to fix it.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use zeroize::Zeroizing;

use super::{KEY_LEN, Keyring};

/// The environment variable naming the key file.
pub const KEY_FILE_ENV: &str = "SECRETS_KEY_FILE";
/// The key file unless `SECRETS_KEY_FILE` says otherwise, relative to the
/// working directory (as the default database is).
pub const DEFAULT_KEY_FILE: &str = "data/secrets.key";
/// The longest key id.
const MAX_ID_LEN: usize = 32;

/// `$SECRETS_KEY_FILE`, else the default.
pub fn path_from_env() -> PathBuf {
    match std::env::var_os(KEY_FILE_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_KEY_FILE),
    }
}

/// Reads and checks the key file at `path`.
pub fn read(path: &Path) -> anyhow::Result<Keyring> {
    let text = read_private(path)?;
    let keys = parse(path, &text)?;
    Keyring::new(keys).with_context(|| {
        format!(
            "key file {} holds no key. If no row was ever sealed, move it away and create one with \
             `backend key generate {}`; otherwise restore the file from its backup (the rows need \
             the keys that sealed them)",
            path.display(),
            path.display()
        )
    })
}

/// The file's text, once it is known to exist and be private to its owner.
fn read_private(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let shown = path.display();
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "key file {shown} does not exist: create one with `backend key generate {shown}` \
             (or point {KEY_FILE_ENV} at the right file)"
        ),
        Err(e) => bail!("key file {shown} cannot be read ({e}): check its path and permissions"),
    };
    if !meta.is_file() {
        bail!("key file {shown} is not a regular file: point {KEY_FILE_ENV} at the key file");
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "key file {shown} has mode {mode:04o}, so other users can read or change it: \
             run `chmod 600 {shown}`"
        );
    }
    let text = fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("key file {shown} cannot be read ({e}): check its owner and permissions")
    })?;
    Ok(Zeroizing::new(text))
}

/// The `(id, key)` pairs of `text`, in order; `path` only names the file in errors.
fn parse(path: &Path, text: &str) -> anyhow::Result<Vec<(String, [u8; KEY_LEN])>> {
    let mut keys: Vec<(String, [u8; KEY_LEN])> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("key file {}, line {}", path.display(), index + 1);
        let (id, key) = parse_line(line).with_context(|| at.clone())?;
        if keys.iter().any(|(seen, _)| *seen == id) {
            bail!("{at}: key id `{id}` appears twice: every key needs its own id");
        }
        keys.push((id, key));
    }
    Ok(keys)
}

/// One `KEY_ID BASE64_32_BYTES` line. The message never quotes the key.
fn parse_line(line: &str) -> anyhow::Result<(String, [u8; KEY_LEN])> {
    const FORM: &str = "expected `KEY_ID BASE64_KEY` (an id of 1 to 32 characters of \
         A-Z a-z 0-9 _ -, a space, 32 bytes in base64); `backend key generate PATH` writes one";
    let mut words = line.split_whitespace();
    let (Some(id), Some(encoded), None) = (words.next(), words.next(), words.next()) else {
        bail!("not two words: {FORM}");
    };
    if !is_valid_id(id) {
        bail!("the key id is not 1 to {MAX_ID_LEN} characters of A-Z a-z 0-9 _ -: {FORM}");
    }
    let bytes = Zeroizing::new(
        STANDARD
            .decode(encoded)
            .map_err(|_| anyhow::anyhow!("key `{id}` is not valid base64: {FORM}"))?,
    );
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!("key `{id}` is {} bytes, not {KEY_LEN}: {FORM}", bytes.len())
    })?;
    Ok((id.to_owned(), key))
}

/// `[A-Za-z0-9_-]{1,32}`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Creates a key file at `path` (mode 0600) holding one fresh key; refuses
/// to replace an existing file. Returns the new key's id.
pub fn generate(path: &Path) -> anyhow::Result<String> {
    let shown = path.display();
    if path.exists() {
        bail!(
            "{shown} already exists: it may hold the key your data is sealed with, so it is \
             never overwritten; to rotate, run `backend key add {shown}`"
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the folder {}", dir.display()))?;
    }
    let id = fresh_id(&[])?;
    let text = Zeroizing::new(format!("{HEADER}{}", key_line(&id)?));
    write_private(path, &text).with_context(|| format!("writing key file {shown}"))?;
    Ok(id)
}

/// Appends a fresh key to the valid key file at `path`, which makes it the
/// current one; the file is replaced atomically, so a crash leaves either
/// the old file or the new one. Returns the new key's id.
pub fn add(path: &Path) -> anyhow::Result<String> {
    // A symlinked key file gets the key, not a regular file in the link's place.
    let path = &fs::canonicalize(path)
        .with_context(|| format!("key file {}: cannot resolve it", path.display()))?;
    // Two `key add` at once would each rewrite the file from what they
    // read, and one key would be lost: they take turns on a lock file.
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path.with_file_name(format!(".{}.lock", file_name(path))))
        .with_context(|| format!("creating the lock file beside {}", path.display()))?;
    lock.lock()
        .with_context(|| format!("locking the key file {}", path.display()))?;
    let keys = read(path)?;
    let existing: Vec<&str> = keys.ids().collect();
    let id = fresh_id(&existing)?;
    let mut text = read_private(path)?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&key_line(&id)?);
    let temp = temp_path(path);
    let _ = fs::remove_file(&temp); // left by a run that died: ours to replace
    write_private(&temp, &text)
        .with_context(|| format!("writing {} (beside the key file)", temp.display()))?;
    fs::rename(&temp, path)
        .with_context(|| format!("replacing {} with {}", path.display(), temp.display()))?;
    sync_parent(path);
    Ok(id)
}

const HEADER: &str = "# Secrets service keys: `KEY_ID BASE64_KEY`, one a line; the last one seals new\n\
# values, every one opens the rows it sealed. Keep this file private (mode 0600)\n\
# and back it up apart from the database: without it no sealed value can be read.\n";

/// `ID BASE64\n` for a fresh random key.
fn key_line(id: &str) -> anyhow::Result<String> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut())
        .map_err(|e| anyhow::anyhow!("the operating system gave no random key: {e}"))?;
    Ok(format!("{id} {}\n", STANDARD.encode(key.as_ref())))
}

/// `k` + the Unix time + `-` + four random hex digits: sortable by age,
/// distinct from `taken`.
fn fresh_id(taken: &[&str]) -> anyhow::Result<String> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    loop {
        let random = getrandom::u64()
            .map_err(|e| anyhow::anyhow!("the operating system gave no random number: {e}"))?;
        let id = format!("k{seconds}-{:04x}", random & 0xffff);
        if !taken.contains(&id.as_str()) {
            return Ok(id);
        }
    }
}

/// Writes `text` into a new file at `path`, mode 0600 from its creation
/// (never readable by others, not even for a moment), and syncs it.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(".{}.new", file_name(path)))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Makes the rename durable; a folder that cannot be synced only loses that.
fn sync_parent(path: &Path) {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(Ok(dir)) = dir.map(fs::File::open) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause
mod tests {
    use super::*;

    fn parsed(text: &str) -> anyhow::Result<Vec<String>> {
        Ok(parse(Path::new("k.key"), text)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn reads_keys_in_order_skipping_comments() {
        let text = format!("# keys\n\nold {KEY}\n  # rotated\nnew {KEY}\n");
        assert_eq!(parsed(&text).unwrap(), ["old", "new"]);
    }

    #[test]
    fn refuses_bad_lines_naming_the_line_but_never_the_key() {
        for (text, says) in [
            (format!("k {KEY} extra"), "not two words"),
            ("k".to_owned(), "not two words"),
            (format!("bad/id {KEY}"), "key id"),
            ("k not-base64!".to_owned(), "not valid base64"),
            ("k AAAA".to_owned(), "3 bytes, not 32"),
            (format!("k {KEY}\nk {KEY}"), "appears twice"),
        ] {
            let error = format!("{:#}", parsed(&text).unwrap_err());
            assert!(error.contains("k.key, line"), "{error}");
            assert!(error.contains(says), "{says}: {error}");
            assert!(!error.contains(KEY), "{error}");
        }
    }

    #[test]
    fn ids_are_limited() {
        assert!(is_valid_id("k1_A-9"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id(&"a".repeat(33)));
        assert!(!is_valid_id("a b"));
        assert!(is_valid_id(&fresh_id(&[]).unwrap()));
    }
}
