//! The migration history as files: loading and checking `V{n}__{name}.sql`
//! (with the Postgres twins), their SQL text, and the zero-downtime lint.
//! Nothing here touches a database.

mod compare;
mod files;
pub mod lint;
pub mod no_transaction;
pub mod sql_text;

pub use compare::{Comparison, compare, stems};
pub use files::*;

/// The migrations as `engine` runs them: the shared files, with Postgres
/// twins swapped in on Postgres. Files marked `-- xtask: no-transaction`
/// that cannot run are refused here, before any command reads or changes
/// a database.
pub fn load_for(dir: &std::path::Path, engine: Engine) -> anyhow::Result<Vec<MigrationFile>> {
    let files = load_with_twins(dir, engine)?;
    no_transaction::refuse_unrunnable(&files, engine)?;
    Ok(files)
}
