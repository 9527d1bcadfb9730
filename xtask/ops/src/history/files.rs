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
use refinery_core::{Migration, error::Kind};

/// What a migrations folder may hold besides migrations: the schema
/// snapshot, a README, and fixture rows for the upgrade check.
const NOT_MIGRATIONS: &[&str] = &["schema.sql", "README.md", "fixtures", POSTGRES_DIR];

/// The folder, inside the migrations folder, of Postgres twins: a file there
/// replaces the migration of the same version and name on Postgres only.
/// One logical history: a twin without a shared migration is an error.
pub const POSTGRES_DIR: &str = "postgres";

/// The database engines the migrations run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The migrations as `engine` runs them: the shared files, with Postgres
/// twins swapped in on Postgres (see `history::load_for`).
pub fn load_with_twins(dir: &Path, engine: Engine) -> anyhow::Result<Vec<MigrationFile>> {
    let mut files = load(dir)?;
    if engine == Engine::Sqlite {
        return Ok(files);
    }
    let twins_dir = dir.join(POSTGRES_DIR);
    if !twins_dir.is_dir() {
        return Ok(files);
    }
    let twins = load(&twins_dir)?;
    let problems = twin_problems(&files, &twins);
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    for twin in twins {
        if let Some(slot) = files.iter_mut().find(|f| f.version == twin.version) {
            *slot = twin;
        }
    }
    Ok(files)
}

/// Twins must stand in for a shared migration of the same version and name.
pub(super) fn twin_problems(shared: &[MigrationFile], twins: &[MigrationFile]) -> Vec<String> {
    twins
        .iter()
        .filter_map(|twin| match shared.iter().find(|f| f.version == twin.version) {
            None => Some(format!(
                "{}: no shared migration V{}__*.sql beside the postgres folder; one history serves \
                 both engines, so add the shared file (or move this one up a level if its SQL is portable)",
                twin.path.display(),
                twin.version
            )),
            Some(f) if f.name != twin.name => Some(format!(
                "{}: the shared migration V{} is named `{}`; a Postgres twin keeps its version and name — rename it {}.sql",
                twin.path.display(),
                twin.version,
                f.name,
                f.stem()
            )),
            Some(_) => None,
        })
        .collect()
}

/// Statements that must not appear in a migration: refinery runs each file
/// inside a transaction, where these fail or (PRAGMA) silently do nothing.
const FORBIDDEN: &[&str] = &[
    "BEGIN",
    "COMMIT",
    "END",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
    "PRAGMA",
    "VACUUM",
];

/// One `V{n}__{name}.sql` file.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub version: i32,
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
}

impl MigrationFile {
    /// It lives in `postgres/`: it stands in for the shared file on Postgres.
    pub fn is_postgres_twin(&self) -> bool {
        self.path
            .parent()
            .is_some_and(|p| p.ends_with(POSTGRES_DIR))
    }

    /// `V3__add_things`: the name refinery records in its history.
    pub fn stem(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }

    pub fn to_refinery(&self) -> anyhow::Result<Migration> {
        Migration::unapplied(&self.stem(), &self.sql)
            .with_context(|| format!("{}: refinery rejected the migration", self.path.display()))
    }
}

/// Turns refinery's error into one that names the file and the fix (either engine).
pub fn explain(error: refinery_core::Error, files: &[MigrationFile]) -> anyhow::Error {
    let path_of = |m: &Migration| {
        files
            .iter()
            .find(|f| f.version == m.version())
            .map(|f| f.path.display().to_string())
            .unwrap_or_else(|| format!("V{}__{}.sql", m.version(), m.name()))
    };
    match error.kind() {
        Kind::DivergentVersion(applied, _) => anyhow::anyhow!(
            "{}: this migration was already applied to the database, but the file has changed \
             since (checksum differs). Restore the file as it was (e.g. `git checkout`) and put \
             the change in a new migration",
            path_of(applied)
        ),
        Kind::MissingVersion(m) if files.iter().any(|f| f.version == m.version()) => {
            anyhow::anyhow!(
                "{}: not applied, but the database already has a later migration; refinery applies \
             only versions above the newest applied one. Renumber it above the latest version",
                path_of(m)
            )
        }
        Kind::MissingVersion(m) => anyhow::anyhow!(
            "migration V{}__{} is recorded as applied in the database, but its file is missing \
             from the migrations folder: restore it from git (or point --migrations at the right folder)",
            m.version(),
            m.name()
        ),
        // refinery's own words repeat its cause (`error applying migrations`,
        // then the cause): the cause alone, said once.
        _ => {
            let cause = std::error::Error::source(&error)
                .map_or_else(|| error.to_string(), ToString::to_string);
            anyhow::anyhow!("applying migrations (rolled back: nothing was changed): {cause}")
        }
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
    if let Some(number) = version_out_of_range(file_name) {
        return Err(format!(
            "{}: version {number} is out of range: refinery's versions run from 1 to {} — renumber it \
             to the next free version",
            path.display(),
            i32::MAX
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

/// `V2147483648__x.sql` → "2147483648": a name of the right form whose
/// number refinery's i32 cannot hold (said as such, not as a bad name).
fn version_out_of_range(file_name: &str) -> Option<&str> {
    let number = file_name.strip_prefix('V')?.split_once("__")?.0;
    let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    (digits && number.parse::<i32>().is_err()).then_some(number)
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

pub(super) fn lint_folder(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut versions: BTreeMap<i32, String> = BTreeMap::new();
    let mut names: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading the migrations folder {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !NOT_MIGRATIONS.contains(&n.as_str()))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let shown = path.display();
        let Some((version, stem)) = parse_file_name(&name).filter(|(_, stem)| is_snake_case(stem))
        else {
            problems.push(format!(
                "{shown}: not named V{{n}}__{{snake_case_name}}.sql — rename it (or move it out of the folder)"
            ));
            continue;
        };
        if let Some(other) = versions.insert(version, name.clone()) {
            problems.push(format!(
                "{shown}: version {version} is also used by {other} — renumber one of them"
            ));
        }
        let Ok(sql) = fs::read_to_string(&path) else {
            problems.push(format!("{shown}: cannot be read as UTF-8 text"));
            continue;
        };
        if let Some(line) = sql.split('\n').position(|l| l.ends_with('\r')) {
            problems.push(format!(
                "{shown}:{}: CRLF line ending — refinery's checksum is byte-exact, so save it with LF ({stem})",
                line + 1
            ));
        }
        let (statements, _) = crate::history::sql_text::split(&sql);
        for statement in statements {
            let first = statement.words().into_iter().next().unwrap_or_default();
            if FORBIDDEN.contains(&first.as_str()) {
                problems.push(format!(
                    "{shown}:{}: `{first}` statement — refinery runs each migration inside a transaction, \
                     where it fails or silently does nothing; remove it",
                    statement.line
                ));
            }
        }
    }
    Ok(problems)
}

fn is_snake_case(name: &str) -> bool {
    !name.starts_with('_')
        && !name.ends_with('_')
        && !name.contains("__")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
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
