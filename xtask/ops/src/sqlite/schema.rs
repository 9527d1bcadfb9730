//! The SQLite half of the schema model: what the pragmas report (columns
//! with generated ones, keys, foreign keys with both actions, indexes with
//! their sort order, collation and WHERE), and what only the `CREATE`
//! text says (`clauses.rs`).

use std::collections::BTreeMap;

use anyhow::Context;
use rusqlite::Connection;

use super::clauses;
use crate::schema::{
    checks,
    model::{Objects, Schema, Shape, Table, column_type, foreign_key, partial_index},
};
use secrets_contract::schema::HISTORY_TABLE;

pub fn sqlite(conn: &Connection) -> anyhow::Result<Schema> {
    let strings = |sql: &str, arg: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([arg], |r| r.get(0))?;
        rows.collect()
    };
    let mut schema = Schema::new();
    let tables = strings(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?1",
        HISTORY_TABLE,
    )?;
    for name in tables {
        let mut table = Table::default();
        // table_xinfo: generated columns too (hidden 2 and 3), which table_info leaves out.
        let mut stmt = conn.prepare(
            "SELECT name, \"notnull\", pk, type || CASE WHEN hidden IN (2, 3) THEN ' GENERATED' ELSE '' END, \
             dflt_value FROM pragma_table_xinfo(?1)",
        )?;
        let mut pk: Vec<(i64, String)> = Vec::new();
        for row in stmt.query_map([&name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })? {
            let (column, not_null, pk_index, declared, default) = row?;
            if pk_index > 0 {
                pk.push((pk_index, column.clone()));
            }
            table
                .types
                .insert(column.clone(), column_type(&declared, default.as_deref()));
            table.columns.insert(column, not_null || pk_index > 0);
        }
        let sql: String = conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [&name],
            |r| r.get(0),
        )?;
        table.checks = checks::in_create_table(&sql);
        table.clauses = clauses::in_create_table(&sql);
        table.check_columns = checks::columns_each_reads(&sql, &table.columns)
            .with_context(|| format!("reading the CHECK constraints of table {name}"))?;
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let mut stmt = conn.prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_delete || ' ' || on_update \
             FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )?;
        let mut fks: BTreeMap<i64, (String, Vec<String>, Vec<String>, String)> = BTreeMap::new();
        for row in stmt.query_map([&name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })? {
            let (id, parent, from, to, on_delete) = row?;
            let entry = fks
                .entry(id)
                .or_insert_with(|| (parent, Vec::new(), Vec::new(), on_delete));
            entry.1.push(from);
            entry.2.push(to.unwrap_or_else(|| "<primary key>".into()));
        }
        for (parent, from, to, actions) in fks.into_values() {
            // Both actions are upper-case words: `SET NULL NO ACTION` splits at the second.
            let (on_delete, on_update) = split_actions(&actions);
            table
                .foreign_keys
                .insert(foreign_key(&from, &parent, &to, on_delete, on_update));
        }
        let mut stmt = conn.prepare(
            "SELECT l.name, l.\"unique\", l.origin, s.sql FROM pragma_index_list(?1) l \
             LEFT JOIN sqlite_schema s ON s.type = 'index' AND s.name = l.name",
        )?;
        let indexes: Vec<(String, bool, String, Option<String>)> = stmt
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (index, unique, origin, index_sql) in indexes {
            if let Some(keys) = sqlite_index_keys(conn, &index)? {
                table.clauses.insert(keys);
            }
            if origin == "pk" {
                continue;
            }
            let columns = strings(
                // An indexed expression has no column name.
                "SELECT coalesce(name, '<expression>') FROM pragma_index_info(?1) ORDER BY seqno",
                &index,
            )?;
            if let Some(predicate) = index_sql.as_deref().and_then(clauses::index_predicate) {
                table
                    .partial_indexes
                    .insert(partial_index(unique, &columns, &predicate));
            } else if unique {
                table.unique.insert(columns);
            } else {
                table.indexes.insert(columns);
            }
        }
        schema.insert(name, table);
    }
    Ok(schema)
}

/// SQLite: an index's keys sorted DESC or with a collation other than
/// BINARY, as `index (c DESC, d COLLATE NOCASE)`; None when it has none.
fn sqlite_index_keys(conn: &Connection, index: &str) -> anyhow::Result<Option<String>> {
    let mut stmt = conn.prepare(
        "SELECT coalesce(name, '<expression>'), \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key ORDER BY seqno",
    )?;
    let keys: Vec<(String, bool, Option<String>)> = stmt
        .query_map([index], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let special = keys.iter().any(|(_, desc, coll)| {
        *desc
            || coll
                .as_deref()
                .is_some_and(|c| !c.eq_ignore_ascii_case("BINARY"))
    });
    Ok(special.then(|| {
        let keys: Vec<String> = keys
            .iter()
            .map(|(name, desc, coll)| {
                let coll = coll
                    .as_deref()
                    .filter(|c| !c.eq_ignore_ascii_case("BINARY"))
                    .map_or(String::new(), |c| format!(" COLLATE {}", c.to_uppercase()));
                format!("{name}{coll}{}", if *desc { " DESC" } else { "" })
            })
            .collect();
        format!("index ({})", keys.join(", "))
    }))
}

/// `CASCADE NO ACTION` → (`CASCADE`, `NO ACTION`): SQLite's two FK actions.
fn split_actions(actions: &str) -> (&str, &str) {
    const ACTIONS: [&str; 5] = [
        "SET NULL",
        "SET DEFAULT",
        "CASCADE",
        "RESTRICT",
        "NO ACTION",
    ];
    ACTIONS
        .iter()
        .find_map(|a| {
            actions
                .strip_prefix(a)
                .map(|rest| (&actions[..a.len()], rest.trim()))
        })
        .unwrap_or((actions, "NO ACTION"))
}

pub fn sqlite_shape(conn: &Connection) -> anyhow::Result<Shape> {
    let mut stmt = conn.prepare(
        "SELECT type || ' ' || name, sql FROM sqlite_schema WHERE type IN ('view', 'trigger') AND sql IS NOT NULL",
    )?;
    let objects = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .map(|row| row.map(|(name, sql)| (name, checks::normalise(&sql))))
        .collect::<rusqlite::Result<Objects>>()?;
    Ok(Shape {
        tables: sqlite(conn)?,
        objects,
    })
}
