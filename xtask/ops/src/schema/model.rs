//! The engine-neutral shape of a schema: tables, their columns and
//! nullability, primary keys, unique keys, foreign keys, indexes and CHECK
//! constraints. [`differences`] compares two engines: CHECKs by the columns
//! each one reads (the engines spell the same rule differently,
//! `length(CAST(v AS BLOB))` against `octet_length(v)`, and SQLite's checks
//! have no names), column types not at all (`TEXT` timestamps in SQLite,
//! `timestamptz` in Postgres); `migrations check` compares SQLite's fresh
//! schema with Postgres's through it. [`same_engine_differences`] compares
//! two schemas of one engine (`migrate adopt`), types, CHECK expressions and
//! clauses included.

use std::collections::{BTreeMap, BTreeSet};

use super::checks;

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
    /// Partial indexes, `[UNIQUE ](cols) WHERE predicate`: a partial unique
    /// index is no unique key.
    pub partial_indexes: BTreeSet<String>,
    /// SQLite: clauses no pragma reports (see `clauses.rs`), and index keys
    /// sorted DESC or with a collation; compared only within one engine.
    pub clauses: BTreeSet<String>,
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

pub(crate) fn foreign_key(
    from: &[String],
    table: &str,
    to: &[String],
    on_delete: &str,
    on_update: &str,
) -> String {
    let on_update = match on_update {
        "NO ACTION" => String::new(),
        other => format!(" ON UPDATE {other}"),
    };
    format!(
        "({}) -> {table}({}) ON DELETE {on_delete}{on_update}",
        from.join(", "),
        to.join(", ")
    )
}

/// `[UNIQUE ](cols) WHERE predicate`, the predicate normalised.
pub(crate) fn partial_index(unique: bool, columns: &[String], predicate: &str) -> String {
    format!(
        "{}({}) WHERE {}",
        if unique { "UNIQUE " } else { "" },
        columns.join(", "),
        checks::normalise(predicate)
    )
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
        set_diff(
            &mut out,
            name,
            "partial index",
            &ta.partial_indexes,
            &tb.partial_indexes,
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
        set_diff(
            &mut out,
            name,
            "clause",
            &ta.clauses,
            &tb.clauses,
            a_name,
            b_name,
        );
    }
    out
}

/// A column's type as compared: the declared type in upper case, and its default.
pub(crate) fn column_type(declared: &str, default: Option<&str>) -> String {
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
