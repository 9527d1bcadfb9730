//! The repository's paths and migration files, and the Postgres twin rule.

use std::{
    fs,
    path::{Path, PathBuf},
};

use refinery_core::Migration;

/// The repository's root folder (this crate lives in `xtask/test-support`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// The repository's `migrations/` folder.
pub fn migrations_dir() -> PathBuf {
    repo_root().join("migrations")
}

/// The `sqlite:///` URL of a database file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite:///{}", path.display())
}

/// `n` of a `V{n}__{name}.sql` file; None for any other file.
pub fn migration_version(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (version, rest) = name.strip_prefix('V')?.split_once("__")?;
    if !rest.ends_with(".sql") {
        return None;
    }
    version.parse().ok()
}

/// The `V{n}__{name}.sql` files of one folder (not its subfolders), by
/// version; none when the folder does not exist.
pub fn migration_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && migration_version(p).is_some())
        .collect();
    found.sort_by_key(|p| migration_version(p));
    found
}

/// The migrations of one folder, for refinery's runner (its own loader
/// descends into subfolders, which would mix in the Postgres twins).
pub fn read_migrations(dir: &Path) -> Vec<Migration> {
    migration_files(dir)
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy();
            Migration::unapplied(&stem, &fs::read_to_string(p).unwrap()).unwrap()
        })
        .collect()
}

/// The two engines the service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The repository's migrations as `engine` runs them: on Postgres,
/// `migrations/postgres/V{n}__{name}.sql` (a twin) replaces
/// `migrations/V{n}__{name}.sql`.
pub fn migrations_for(engine: Engine) -> Vec<Migration> {
    let mut all = read_migrations(&migrations_dir());
    if engine == Engine::Postgres {
        for twin in read_migrations(&migrations_dir().join("postgres")) {
            let slot = all
                .iter_mut()
                .find(|m| m.version() == twin.version())
                .unwrap_or_else(|| panic!("the twin {twin} replaces no shared migration"));
            *slot = twin;
        }
    }
    all
}

/// Copies the repository's first `count` shared migrations (all of them with
/// None) into `to`, created if need be: a SQLite site's folder.
pub fn copy_migrations(to: &Path, count: Option<usize>) {
    fs::create_dir_all(to).unwrap();
    let files = migration_files(&migrations_dir());
    for file in files.iter().take(count.unwrap_or(usize::MAX)) {
        fs::copy(file, to.join(file.file_name().unwrap())).unwrap();
    }
}

/// Copies every migration of the repository into `to`, the Postgres twins
/// (`postgres/`) and the schema snapshots (`schema.sql`) included.
pub fn copy_migrations_with_twins(to: &Path) {
    let repo = migrations_dir();
    for sub in ["", "postgres"] {
        let (from, into) = (repo.join(sub), to.join(sub));
        fs::create_dir_all(&into).unwrap();
        let snapshot = Some(from.join("schema.sql")).filter(|p| p.is_file());
        for file in migration_files(&from).into_iter().chain(snapshot) {
            fs::copy(&file, into.join(file.file_name().unwrap())).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{migration_files, migration_version, migrations_dir};

    #[test]
    fn only_versioned_sql_files_are_migrations() {
        assert_eq!(migration_version(Path::new("V12__add_x.sql")), Some(12));
        for other in [
            "schema.sql",
            "V1_one.sql",
            "Vx__a.sql",
            "V1__a.txt",
            "postgres",
        ] {
            assert_eq!(migration_version(Path::new(other)), None, "{other}");
        }
        let files = migration_files(&migrations_dir());
        assert!(files.len() >= 4, "{files:?}");
        assert!(files.is_sorted_by_key(|p| migration_version(p)));
    }
}
