//! Records the highest migration version in `migrations/` at build time, so the
//! binary knows which schema it was built for (`expected_schema_version`).

use std::{fs, path::Path};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let highest = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| version_of(&e.file_name().to_string_lossy()))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    println!("cargo:rustc-env=EXPECTED_SCHEMA_VERSION={highest}");
}

/// `V12__add_things.sql` → 12; anything else → None.
fn version_of(file_name: &str) -> Option<i64> {
    let rest = file_name.strip_prefix('V')?.strip_suffix(".sql")?;
    let (number, name) = rest.split_once("__")?;
    if name.is_empty() {
        return None;
    }
    number.parse().ok()
}
