//! INVALID indexes: what a failed (or killed) `CREATE INDEX CONCURRENTLY`
//! leaves behind. Postgres keeps maintaining such an index on every write
//! but never uses it, and `CREATE INDEX … IF NOT EXISTS` skips it silently;
//! a run names each one with the fix instead of building on it.

use anyhow::bail;
use postgres::Client;

use crate::history::{MigrationFile, no_transaction};

/// An index with `pg_index.indisvalid = false`.
pub struct InvalidIndex {
    /// Names can be quoted, mixed case or hold `$`: a run knows an index by this.
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub table: String,
}

impl InvalidIndex {
    /// What it is and the fix, for an error or a warning line.
    pub fn describe(&self) -> String {
        format!(
            "INVALID index {} on {}.{} (left by a failed or interrupted CREATE INDEX CONCURRENTLY, or one \
             still building): once no build runs, `DROP INDEX CONCURRENTLY {}.{};` and run again",
            self.name,
            self.schema,
            self.table,
            identifier(&self.schema),
            identifier(&self.name)
        )
    }
}

/// A name as SQL must spell it: quoted unless it is plain lower case.
pub fn identifier(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Every invalid index of the database, outside the system schemas.
pub fn invalid_indexes(client: &mut Client) -> Result<Vec<InvalidIndex>, postgres::Error> {
    let rows = client.query(
        "SELECT c.oid, n.nspname::text, c.relname::text, t.relname::text \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg_toast%' \
         ORDER BY 2, 3",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| InvalidIndex {
            oid: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            table: r.get(3),
        })
        .collect())
}

/// The invalid indexes of now that were not among `before`: what a
/// statement run in between left behind (compared by oid, so no name
/// needs reading from the SQL).
pub fn invalid_since(
    client: &mut Client,
    before: &[InvalidIndex],
) -> Result<Vec<InvalidIndex>, postgres::Error> {
    let mut now = invalid_indexes(client)?;
    now.retain(|index| before.iter().all(|old| old.oid != index.oid));
    Ok(now)
}

/// The invalid indexes that `file` would create.
pub fn created_by<'a>(invalid: &'a [InvalidIndex], file: &MigrationFile) -> Vec<&'a InvalidIndex> {
    let names = no_transaction::created_indexes(file);
    invalid.iter().filter(|i| names.contains(&i.name)).collect()
}

/// Before applying `pending`: an error when one of them would create an
/// index that exists INVALID (re-running it would fail with "already
/// exists", or with IF NOT EXISTS record it applied over an unusable index);
/// the other invalid indexes, as warning lines.
pub fn refuse_rebuilding_invalid(
    client: &mut Client,
    pending: &[MigrationFile],
) -> anyhow::Result<Vec<String>> {
    let invalid = invalid_indexes(client)?;
    let blocking: Vec<String> = pending
        .iter()
        .flat_map(|file| {
            created_by(&invalid, file)
                .into_iter()
                .map(move |index| format!("{}: {}", file.stem(), index.describe()))
        })
        .collect();
    if !blocking.is_empty() {
        bail!(
            "a pending migration would create an index that exists but is INVALID; nothing was changed:\n  {}",
            blocking.join("\n  ")
        );
    }
    Ok(invalid.iter().map(InvalidIndex::describe).collect())
}
