//! Reading a migrations folder strictly.
//!
//! refinery silently skips files whose names it does not recognise and does
//! not notice two files with one version; both are errors here, so a typo in
//! a file name can never mean a migration that quietly does not run.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use refinery_core::Migration;

/// Files a migrations folder may hold besides migrations.
const NOT_MIGRATIONS: &[&str] = &["schema.sql", "README.md"];

/// One `V{n}__{name}.sql` file.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub version: i32,
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
}

impl MigrationFile {
    /// `V3__add_things`: the name refinery records in its history.
    pub fn stem(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }

    pub fn to_refinery(&self) -> anyhow::Result<Migration> {
        Migration::unapplied(&self.stem(), &self.sql)
            .with_context(|| format!("{}: refinery rejected the migration", self.path.display()))
    }
}

/// Every migration in `dir`, by version; all problems are reported together.
pub fn load(dir: &Path) -> anyhow::Result<Vec<MigrationFile>> {
    let entries = fs::read_dir(dir).with_context(|| {
        format!(
            "reading the migrations folder {}: check the path (or pass --migrations DIR)",
            dir.display()
        )
    })?;
    let mut problems = Vec::new();
    let mut by_version: BTreeMap<i32, MigrationFile> = BTreeMap::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') || NOT_MIGRATIONS.contains(&file_name.as_str()) {
            continue;
        }
        match read_one(&path, &file_name) {
            Ok(file) => {
                if let Some(other) = by_version.get(&file.version) {
                    problems.push(format!(
                        "{}: version {} is also used by {} — give one of them the next free version",
                        path.display(),
                        file.version,
                        other.path.display()
                    ));
                } else {
                    by_version.insert(file.version, file);
                }
            }
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        problems.sort();
        bail!(
            "{} problem(s) in the migrations folder {}:\n  {}",
            problems.len(),
            dir.display(),
            problems.join("\n  ")
        );
    }
    Ok(by_version.into_values().collect())
}

fn read_one(path: &Path, file_name: &str) -> Result<MigrationFile, String> {
    if !path.is_file() {
        return Err(format!(
            "{}: not a migration file (the folder must hold only V{{n}}__{{name}}.sql files and schema.sql) — move it elsewhere",
            path.display()
        ));
    }
    let (version, name) = parse_file_name(file_name).ok_or_else(|| {
        format!(
            "{}: not named V{{n}}__{{name}}.sql (n a number, name of letters, digits and _), \
             so refinery would skip it silently — rename it or move it out of the folder",
            path.display()
        )
    })?;
    let sql = fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot be read as UTF-8 text: {e}", path.display()))?;
    Ok(MigrationFile {
        version,
        name: name.to_owned(),
        path: path.to_path_buf(),
        sql,
    })
}

/// `V12__add_things.sql` → (12, "add_things").
pub fn parse_file_name(file_name: &str) -> Option<(i32, &str)> {
    let rest = file_name.strip_prefix('V')?.strip_suffix(".sql")?;
    let (number, name) = rest.split_once("__")?;
    let number_ok = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !(number_ok && name_ok) {
        return None;
    }
    Some((number.parse().ok()?, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_refinery_names() {
        assert_eq!(parse_file_name("V1__init.sql"), Some((1, "init")));
        assert_eq!(
            parse_file_name("V20__add_col_2.sql"),
            Some((20, "add_col_2"))
        );
    }

    #[test]
    fn rejects_names_refinery_would_skip_or_misread() {
        for bad in [
            "V1_init.sql",
            "v1__init.sql",
            "V1__init.SQL",
            "V__init.sql",
            "V1__.sql",
            "V1__in-it.sql",
            "U1__init.sql",
            "V1.5__init.sql",
            "V99999999999__too_big.sql",
            "init.sql",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }
}
