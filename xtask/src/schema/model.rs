//! The engine-neutral shape of a schema: tables, their columns and
//! nullability, primary keys, unique keys, foreign keys, indexes and CHECK
//! constraints. [`differences`] compares two engines: CHECKs by the columns
//! each one reads (the engines spell the same rule differently,
//! `length(CAST(v AS BLOB))` against `octet_length(v)`, and SQLite's checks
//! have no names), column types not at all (`TEXT` timestamps in SQLite,
//! `timestamptz` in Postgres); `migrations check` compares SQLite's fresh
//! schema with Postgres's through it. [`same_engine_differences`] compares
//! two schemas of one engine (`migrate adopt`), types and CHECK expressions
//! included.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use postgres::GenericClient;
use rusqlite::Connection;

use super::checks;
use crate::engine::sqlite::HISTORY_TABLE;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Column name → NOT NULL (primary key columns count as NOT NULL).
    pub columns: BTreeMap<String, bool>,
    pub primary_key: Vec<String>,
    pub unique: BTreeSet<Vec<String>>,
    /// `(cols) -> table(cols) ON DELETE action`.
    pub foreign_keys: BTreeSet<String>,
    /// Columns of the plain (non-unique) indexes.
    pub indexes: BTreeSet<Vec<String>>,
    /// Column name → its type as the engine spells it, and ` DEFAULT …` if any.
    pub types: BTreeMap<String, String>,
    /// CHECK constraints' expressions, normalised (see `checks.rs`).
    pub checks: BTreeSet<String>,
    /// The columns each CHECK constraint reads, sorted; one entry per check
    /// (what two engines' checks can be compared on).
    pub check_columns: Vec<Vec<String>>,
}

pub type Schema = BTreeMap<String, Table>;

/// Views and triggers, `"view <name>"` or `"trigger <name>"` → the
/// definition normalised: what the tables leave out.
pub type Objects = BTreeMap<String, String>;

/// A whole schema of one engine, for `migrate adopt`: tables, views, triggers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub tables: Schema,
    pub objects: Objects,
}

fn foreign_key(from: &[String], table: &str, to: &[String], on_delete: &str) -> String {
    format!(
        "({}) -> {table}({}) ON DELETE {on_delete}",
        from.join(", "),
        to.join(", ")
    )
}

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
        let mut stmt = conn
            .prepare("SELECT name, \"notnull\", pk, type, dflt_value FROM pragma_table_info(?1)")?;
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
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let mut stmt = conn.prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
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
        for (parent, from, to, on_delete) in fks.into_values() {
            table
                .foreign_keys
                .insert(foreign_key(&from, &parent, &to, &on_delete));
        }
        let mut stmt =
            conn.prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")?;
        let indexes: Vec<(String, bool, String)> = stmt
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (index, unique, origin) in indexes {
            if origin == "pk" {
                continue;
            }
            let columns = strings(
                // An indexed expression has no column name.
                "SELECT coalesce(name, '<expression>') FROM pragma_index_info(?1) ORDER BY seqno",
                &index,
            )?;
            if unique {
                table.unique.insert(columns);
            } else {
                table.indexes.insert(columns);
            }
        }
        table.check_columns = checks::columns_each_reads(&sql, &table.columns)
            .with_context(|| format!("reading the CHECK constraints of table {name}"))?;
        schema.insert(name, table);
    }
    Ok(schema)
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

pub fn postgres_shape(client: &mut impl GenericClient) -> anyhow::Result<Shape> {
    let rows = client.query(
        "SELECT 'view ' || viewname::text, definition FROM pg_views WHERE schemaname = 'public' \
         UNION ALL \
         SELECT 'trigger ' || t.tgname::text, pg_get_triggerdef(t.oid) FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND NOT t.tgisinternal",
        &[],
    )?;
    let objects = rows
        .iter()
        .map(|r| (r.get(0), checks::normalise(r.get(1))))
        .collect();
    Ok(Shape {
        tables: postgres(client)?,
        objects,
    })
}

/// [`same_engine_differences`] of the tables, then views and triggers by
/// name and definition.
pub fn shape_differences(a_name: &str, a: &Shape, b_name: &str, b: &Shape) -> Vec<String> {
    let mut out = same_engine_differences(a_name, &a.tables, b_name, &b.tables);
    for (name, definition) in &a.objects {
        match b.objects.get(name) {
            None => out.push(format!("{name}: on {a_name} only")),
            Some(other) if other != definition => out.push(format!(
                "{name}: defined otherwise on {a_name} ({definition}) than on {b_name} ({other})"
            )),
            Some(_) => {}
        }
    }
    for name in b.objects.keys().filter(|n| !a.objects.contains_key(*n)) {
        out.push(format!("{name}: on {b_name} only"));
    }
    out
}

/// Column names of an attribute-number array, in order.
const COLUMNS_OF: &str = "ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(n, i) \
     JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.n ORDER BY k.i)";

fn columns_of(keys: &str, rel: &str) -> String {
    COLUMNS_OF.replace("{keys}", keys).replace("{rel}", rel)
}

pub fn postgres(client: &mut impl GenericClient) -> anyhow::Result<Schema> {
    let mut schema = Schema::new();
    let tables = client.query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> $1",
        &[&HISTORY_TABLE],
    )?;
    for row in tables {
        let name: String = row.get(0);
        let mut table = Table::default();
        for column in client.query(
            "SELECT column_name::text, is_nullable = 'NO', \
               (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                WHERE a.attrelid = $2::text::regclass AND a.attname = c.column_name), \
               column_default::text \
             FROM information_schema.columns c \
             WHERE table_schema = 'public' AND table_name = $1",
            &[&name, &name],
        )? {
            let declared: Option<String> = column.get(2);
            let default: Option<String> = column.get(3);
            table.types.insert(
                column.get(0),
                column_type(&declared.unwrap_or_default(), default.as_deref()),
            );
            table.columns.insert(column.get(0), column.get(1));
        }
        let constraints = client
            .query(
                &format!(
                    "SELECT c.contype::text, {}, COALESCE(cf.relname::text, ''), {}, c.confdeltype::text, \
                       pg_get_constraintdef(c.oid) \
                     FROM pg_constraint c LEFT JOIN pg_class cf ON cf.oid = c.confrelid \
                     WHERE c.conrelid = $1::text::regclass AND c.contype IN ('p', 'u', 'f', 'c')",
                    columns_of("c.conkey", "c.conrelid"),
                    columns_of("c.confkey", "c.confrelid")
                ),
                &[&name],
            )
            .with_context(|| format!("reading the constraints of {name}"))?;
        for c in constraints {
            let kind: String = c.get(0);
            let columns: Vec<String> = c.get(1);
            match kind.as_str() {
                "p" => table.primary_key = columns,
                "u" => {
                    table.unique.insert(columns);
                }
                "c" => {
                    let definition: String = c.get(5);
                    table.checks.extend(checks::in_create_table(&definition));
                }
                _ => {
                    let on_delete = match c.get::<_, String>(4).as_str() {
                        "c" => "CASCADE",
                        "r" => "RESTRICT",
                        "n" => "SET NULL",
                        "d" => "SET DEFAULT",
                        _ => "NO ACTION",
                    };
                    let parent: String = c.get(2);
                    let to: Vec<String> = c.get(3);
                    table
                        .foreign_keys
                        .insert(foreign_key(&columns, &parent, &to, on_delete));
                }
            }
        }
        let indexes = client.query(
            &format!(
                "SELECT {}, i.indisunique FROM pg_index i \
                 WHERE i.indrelid = $1::text::regclass \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                columns_of("i.indkey::int2[]", "i.indrelid")
            ),
            &[&name],
        )?;
        for index in indexes {
            let columns: Vec<String> = index.get(0);
            if index.get(1) {
                table.unique.insert(columns);
            } else {
                table.indexes.insert(columns);
            }
        }
        let checks = client.query(
            &format!(
                "SELECT {} FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype = 'c'",
                columns_of("c.conkey", "c.conrelid")
            ),
            &[&name],
        )?;
        table.check_columns = checks
            .iter()
            .map(|row| {
                let mut columns: Vec<String> = row.get(0);
                columns.sort();
                columns
            })
            .collect();
        table.check_columns.sort();
        schema.insert(name, table);
    }
    Ok(schema)
}

/// Every way `b` differs from `a`, one line each, naming table and column.
pub fn differences(a_name: &str, a: &Schema, b_name: &str, b: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for name in a.keys().filter(|n| !b.contains_key(*n)) {
        out.push(format!("table {name}: on {a_name} only"));
    }
    for name in b.keys().filter(|n| !a.contains_key(*n)) {
        out.push(format!("table {name}: on {b_name} only"));
    }
    for (name, ta) in a {
        let Some(tb) = b.get(name) else { continue };
        for (column, not_null) in &ta.columns {
            match tb.columns.get(column) {
                None => out.push(format!("{name}.{column}: on {a_name} only")),
                Some(other) if other != not_null => out.push(format!(
                    "{name}.{column}: {} on {a_name}, {} on {b_name}",
                    null_word(*not_null),
                    null_word(*other)
                )),
                Some(_) => {}
            }
        }
        for column in tb.columns.keys().filter(|c| !ta.columns.contains_key(*c)) {
            out.push(format!("{name}.{column}: on {b_name} only"));
        }
        if ta.primary_key != tb.primary_key {
            out.push(format!(
                "{name}: primary key ({}) on {a_name}, ({}) on {b_name}",
                ta.primary_key.join(", "),
                tb.primary_key.join(", ")
            ));
        }
        set_diff(
            &mut out,
            name,
            "unique key",
            &ta.unique,
            &tb.unique,
            a_name,
            b_name,
        );
        set_diff(
            &mut out,
            name,
            "foreign key",
            &ta.foreign_keys,
            &tb.foreign_keys,
            a_name,
            b_name,
        );
        set_diff(
            &mut out,
            name,
            "index",
            &ta.indexes,
            &tb.indexes,
            a_name,
            b_name,
        );
        checks::column_sets_diff(
            &mut out,
            name,
            (&ta.check_columns, a_name),
            (&tb.check_columns, b_name),
        );
    }
    out
}

/// [`differences`], plus what only two schemas of one engine can be
/// compared on: column types (and defaults) and CHECK constraints.
pub fn same_engine_differences(a_name: &str, a: &Schema, b_name: &str, b: &Schema) -> Vec<String> {
    let mut out = differences(a_name, a, b_name, b);
    for (name, ta) in a {
        let Some(tb) = b.get(name) else { continue };
        for (column, a_type) in &ta.types {
            match tb.types.get(column) {
                Some(b_type) if b_type != a_type => out.push(format!(
                    "{name}.{column}: type {a_type} on {a_name}, {b_type} on {b_name}"
                )),
                _ => {}
            }
        }
        set_diff(
            &mut out, name, "check", &ta.checks, &tb.checks, a_name, b_name,
        );
    }
    out
}

/// A column's type as compared: the declared type in upper case, and its default.
fn column_type(declared: &str, default: Option<&str>) -> String {
    let declared = declared.split_whitespace().collect::<Vec<_>>().join(" ");
    let declared = if declared.is_empty() {
        "(no type)".to_owned()
    } else {
        declared.to_uppercase()
    };
    match default {
        Some(default) => format!("{declared} DEFAULT {default}"),
        None => declared,
    }
}

fn null_word(not_null: bool) -> &'static str {
    if not_null { "NOT NULL" } else { "nullable" }
}

fn set_diff<T: Ord + std::fmt::Debug>(
    out: &mut Vec<String>,
    table: &str,
    what: &str,
    a: &BTreeSet<T>,
    b: &BTreeSet<T>,
    a_name: &str,
    b_name: &str,
) {
    for item in a.difference(b) {
        out.push(format!("{table}: {what} {item:?} on {a_name} only"));
    }
    for item in b.difference(a) {
        out.push(format!("{table}: {what} {item:?} on {b_name} only"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_checks_are_the_columns_each_check_reads() {
        let create = "CREATE TABLE \"secrets\" (\n    id INTEGER PRIMARY KEY,\n    \
            name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),\n    \
            value TEXT NOT NULL CHECK (length(CAST(value AS BLOB)) BETWEEN 1 AND 65536),\n    \
            created_at TEXT NOT NULL,\n    \
            expires_at TEXT CHECK (expires_at IS NULL OR expires_at > created_at),\n    \
            CHECK (name <> 'value')\n)";
        let columns: BTreeMap<String, bool> = ["id", "name", "value", "created_at", "expires_at"]
            .into_iter()
            .map(|c| (c.to_owned(), false))
            .collect();
        let checks = checks::columns_each_reads(create, &columns).unwrap_or_default();
        let names = |list: &[&str]| list.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(
            checks,
            [
                names(&["created_at", "expires_at"]),
                names(&["name"]),
                names(&["name"]),
                names(&["value"]),
            ]
        );
    }

    #[test]
    fn a_missing_check_is_named_with_its_columns() {
        let table = |check_columns: Vec<Vec<String>>| Table {
            check_columns,
            ..Table::default()
        };
        let a = Schema::from([(
            "secrets".to_owned(),
            table(vec![vec!["name".into()], vec!["value".into()]]),
        )]);
        let b = Schema::from([("secrets".to_owned(), table(vec![vec!["name".into()]]))]);
        assert_eq!(
            differences("SQLite", &a, "Postgres", &b),
            ["secrets: a CHECK on (value) on SQLite, none on Postgres"]
        );
        assert!(differences("SQLite", &a, "Postgres", &a).is_empty());
    }
}
