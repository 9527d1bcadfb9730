//! The migration history as files: loading and checking `V{n}__{name}.sql`
//! (with the Postgres twins), their SQL text, and the zero-downtime lint.
//! Nothing here touches a database.

mod compare;
mod files;
mod gaps;
pub mod lint;
pub mod no_transaction;
pub mod precondition;
pub mod sql_text;

pub use compare::{Comparison, compare, stems};
pub use files::*;
pub use gaps::{VersionRange, gap_problems, refuse_gaps};

/// The migrations as `engine` runs them: the shared files, with Postgres
/// twins swapped in on Postgres. Files marked `-- xtask: no-transaction`
/// that cannot run are refused here, before any command reads or changes
/// a database.
pub fn load_for(dir: &std::path::Path, engine: Engine) -> anyhow::Result<Vec<MigrationFile>> {
    let files = load_with_twins(dir, engine)?;
    no_transaction::refuse_unrunnable(&files, engine)?;
    precondition::refuse_unreadable(&files)?;
    Ok(files)
}

/// [`load_for`], then only the files up to `to` (`--to N`), which must be
/// the version of one of them.
pub fn load_up_to(
    dir: &std::path::Path,
    engine: Engine,
    to: Option<i32>,
) -> anyhow::Result<Vec<MigrationFile>> {
    let mut files = load_for(dir, engine)?;
    if let Some(to) = to {
        if !files.iter().any(|f| f.version == to) {
            anyhow::bail!(
                "--to {to}: there is no V{to}__*.sql in {} (its versions: {}); pass one of them",
                dir.display(),
                stems(&files)
            );
        }
        files.retain(|f| f.version <= to);
    }
    Ok(files)
}

/// The `files` check of `migrations check`: every problem of every file,
/// each naming the file (and line where there is one), and every gap in the
/// shared versions not in `allowed_gaps` (twins cover only some versions).
pub fn name_problems(
    dir: &std::path::Path,
    allowed_gaps: &[VersionRange],
) -> anyhow::Result<Vec<String>> {
    let mut problems = files::lint_folder(dir)?;
    if let Ok(shared) = files::load(dir) {
        problems.extend(gaps::gap_problems(&shared, allowed_gaps));
        problems.extend(precondition::problems(&shared));
    }
    let twins_dir = dir.join(files::POSTGRES_DIR);
    if twins_dir.is_dir() {
        problems.extend(files::lint_folder(&twins_dir)?);
        if let (Ok(shared), Ok(twins)) = (files::load(dir), files::load(&twins_dir)) {
            problems.extend(precondition::problems(&twins));
            problems.extend(files::twin_problems(&shared, &twins));
        }
    }
    Ok(problems)
}
