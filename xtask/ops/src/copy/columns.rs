//! The target's columns, and the source's checked against them.

use crate::program::OPS;
use std::collections::BTreeSet;

use anyhow::{Context, bail};
use postgres::{Transaction, types::Type};
use rusqlite::Connection;

/// A target column: its name, type, and whether it is part of the primary key.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub name: String,
    pub ty: Type,
}

pub(super) fn target_columns(tx: &mut Transaction, table: &str) -> anyhow::Result<Vec<Column>> {
    let rows = tx.query(
        "SELECT a.attname::text, a.atttypid FROM pg_attribute a \
         WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        &[&table],
    )?;
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let oid: u32 = r.get(1);
            let ty = Type::from_oid(oid).with_context(|| {
                format!("{table}.{name}: a column type (oid {oid}) `db copy` does not know")
            })?;
            Ok(Column { name, ty })
        })
        .collect()
}

pub(super) fn check_source_columns(
    conn: &Connection,
    table: &str,
    columns: &[Column],
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let source: BTreeSet<String> = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let target: BTreeSet<String> = columns.iter().map(|c| c.name.clone()).collect();
    if source != target {
        bail!(
            "table {table} has columns {:?} in the source but {:?} in the target: the schemas differ \
             (run `{OPS} migrations check --postgres URL`)",
            source,
            target
        );
    }
    Ok(())
}

pub(super) fn select_all(table: &str, columns: &[Column]) -> String {
    let list = columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {list} FROM {}", quote(table))
}

/// `"name"`, with inner quotes doubled.
pub(super) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
