//! Fills every table of a database with a few generated rows, so the upgrade
//! check migrates real data. Values follow each column's declared type,
//! NOT NULL, foreign keys (parents are filled first and referenced), and
//! `col IN ('a', …)` and `length(col) = n` checks; `*_at` and date/time columns get ISO timestamps
//! that increase from column to column, so `expires_at > created_at` holds.
//! Where that is not enough, a fixture file supplies the rows instead.

use std::{
    collections::{BTreeMap, HashMap},
    sync::OnceLock,
};

use regex::Regex;
use rusqlite::{Connection, types::Value};

use secrets_contract::schema::HISTORY_TABLE;

/// Rows inserted per table.
pub const ROWS: usize = 3;

struct Column {
    name: String,
    decl_type: String,
    integer_pk: bool,
}

struct ForeignKey {
    column: String,
    parent: String,
    parent_column: Option<String>,
}

/// User tables, parents before children.
pub fn tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?1 ORDER BY name",
    )?;
    let names: Vec<String> = stmt
        .query_map([HISTORY_TABLE], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut pending: Vec<(String, Vec<String>)> = names
        .into_iter()
        .map(|t| {
            let parents = foreign_keys(conn, &t)?
                .into_iter()
                .map(|fk| fk.parent)
                .filter(|p| *p != t)
                .collect();
            Ok((t, parents))
        })
        .collect::<rusqlite::Result<_>>()?;
    let mut ordered: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|(_, parents)| parents.iter().all(|p| !pending.iter().any(|(t, _)| t == p)));
        // A cycle: take the first; its references stay NULL where they may.
        ordered.push(pending.remove(ready.unwrap_or(0)).0);
    }
    Ok(ordered)
}

/// Row counts of every user table.
pub fn counts(conn: &Connection) -> rusqlite::Result<BTreeMap<String, i64>> {
    tables(conn)?
        .into_iter()
        .map(|t| {
            let n = conn.query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))?;
            Ok((t, n))
        })
        .collect()
}

/// Inserts [`ROWS`] generated rows into every empty table (a fixture may
/// have filled the others); names the table that refused.
pub fn fill(conn: &Connection) -> Result<(), String> {
    let counts = counts(conn).map_err(|e| e.to_string())?;
    for table in tables(conn).map_err(|e| e.to_string())? {
        if counts.get(&table).is_some_and(|n| *n > 0) {
            continue;
        }
        fill_table(conn, &table)
            .map_err(|e| format!("table `{table}`: a generated row was refused ({e})"))?;
    }
    Ok(())
}

fn fill_table(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    let columns = columns(conn, table)?;
    let fks = foreign_keys(conn, table)?;
    let create_sql: String = conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE name = ?1",
        [table],
        |r| r.get(0),
    )?;
    let insertable: Vec<&Column> = columns.iter().filter(|c| !c.integer_pk).collect();
    if insertable.is_empty() {
        return Ok(());
    }
    let names = insertable
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let marks = vec!["?"; insertable.len()].join(", ");
    let sql = format!("INSERT INTO \"{table}\" ({names}) VALUES ({marks})");
    // Looked up once per table: a regex per value would dominate the check.
    let in_lists = allowed_values(&create_sql);
    let allowed: Vec<Option<String>> = insertable
        .iter()
        .map(|c| in_lists.get(&c.name.to_ascii_lowercase()).cloned())
        .collect();
    let exact_lengths = exact_lengths(&create_sql);
    let lengths: Vec<Option<usize>> = insertable
        .iter()
        .map(|c| exact_lengths.get(&c.name.to_ascii_lowercase()).copied())
        .collect();
    for row in 0..ROWS {
        let mut values = Vec::with_capacity(insertable.len());
        for (index, column) in insertable.iter().enumerate() {
            let value = match (
                fks.iter().find(|fk| fk.column == column.name),
                &allowed[index],
            ) {
                (Some(fk), _) => parent_value(conn, fk, row)?,
                (None, Some(value)) => Value::Text(value.clone()),
                (None, None) => sized(generated(column, index, row), lengths[index], row),
            };
            values.push(value);
        }
        conn.execute(&sql, rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_xinfo(\"{table}\")"))?;
    let rows = stmt.query_map([], |r| {
        let decl_type: String = r.get(2)?;
        let pk: i64 = r.get(5)?;
        let hidden: i64 = r.get(6)?;
        Ok((r.get::<_, String>(1)?, decl_type, pk, hidden))
    })?;
    let raw: Vec<_> = rows.collect::<Result<_, _>>()?;
    let pk_columns = raw.iter().filter(|c| c.2 > 0).count();
    Ok(raw
        .into_iter()
        .filter(|(_, _, _, hidden)| *hidden == 0)
        .map(|(name, decl_type, pk, _)| Column {
            integer_pk: pk > 0 && pk_columns == 1 && decl_type.eq_ignore_ascii_case("INTEGER"),
            name,
            decl_type: decl_type.to_ascii_uppercase(),
        })
        .collect())
}

fn foreign_keys(conn: &Connection, table: &str) -> rusqlite::Result<Vec<ForeignKey>> {
    let mut stmt = conn.prepare(&format!("PRAGMA foreign_key_list(\"{table}\")"))?;
    let rows = stmt.query_map([], |r| {
        Ok(ForeignKey {
            parent: r.get(2)?,
            column: r.get(3)?,
            parent_column: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// A value of the parent row this row refers to (rows are spread over parents).
fn parent_value(conn: &Connection, fk: &ForeignKey, row: usize) -> rusqlite::Result<Value> {
    let column = fk.parent_column.as_deref().unwrap_or("rowid");
    let sql = format!(
        "SELECT \"{column}\" FROM \"{}\" ORDER BY rowid LIMIT 1 OFFSET ?1",
        fk.parent
    );
    let count: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM \"{}\"", fk.parent),
        [],
        |r| r.get(0),
    )?;
    if count == 0 {
        return Ok(Value::Null);
    }
    conn.query_row(&sql, [row as i64 % count], |r| r.get(0))
}

/// A value for `column` in row `row`, by its declared type (SQLite's affinity rules).
fn generated(column: &Column, index: usize, row: usize) -> Value {
    let t = column.decl_type.as_str();
    let name = column.name.to_ascii_lowercase();
    let number = (row * 100 + index + 1) as i64;
    if t.contains("INT") {
        Value::Integer(number)
    } else if name.ends_with("_at") || t.contains("DATE") || t.contains("TIME") {
        Value::Text(format!(
            "2026-01-{:02}T{:02}:00:00Z",
            row + 1,
            index.min(23)
        ))
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Value::Text(format!("{name}_{row}"))
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Value::Real(number as f64 + 0.5)
    } else if t.contains("BLOB") || t.is_empty() {
        Value::Blob(format!("{name}_{row}").into_bytes())
    } else {
        Value::Integer(number)
    }
}

/// `value` made exactly `length` long where a check demands it (a hash's 32
/// bytes): the row number leads, so the rows stay distinct for UNIQUE.
fn sized(value: Value, length: Option<usize>, row: usize) -> Value {
    let Some(length) = length else {
        return value;
    };
    let fill = |base: &[u8]| -> Vec<u8> {
        let lead = format!("{row}_").into_bytes();
        lead.iter()
            .chain(base.iter().cycle())
            .take(length)
            .copied()
            .collect()
    };
    match value {
        Value::Blob(bytes) => Value::Blob(fill(&bytes)),
        Value::Text(text) => {
            Value::Text(String::from_utf8_lossy(&fill(text.as_bytes())).into_owned())
        }
        other => other,
    }
}

/// For every `length(col) = n` in a table's SQL: lower-cased `col` → `n`.
fn exact_lengths(create_sql: &str) -> HashMap<String, usize> {
    static LENGTH: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = LENGTH.get_or_init(|| {
        Regex::new(r#"(?i)\blength\s*\(\s*["`\[]?([A-Za-z_][A-Za-z0-9_]*)["`\]]?\s*\)\s*=\s*(\d+)"#)
            .ok()
    }) else {
        return HashMap::new();
    };
    re.captures_iter(create_sql)
        .filter_map(|caps| Some((caps[1].to_ascii_lowercase(), caps[2].parse().ok()?)))
        .collect()
}

/// For every `col IN ('a', …)` in a table's SQL: lower-cased `col` → `a`.
fn allowed_values(create_sql: &str) -> HashMap<String, String> {
    static IN_LIST: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = IN_LIST.get_or_init(|| {
        Regex::new(r#"(?i)["`\[]?([A-Za-z_][A-Za-z0-9_]*)["`\]]?\s+IN\s*\(\s*'([^']*)'"#).ok()
    }) else {
        return HashMap::new();
    };
    let mut values = HashMap::new();
    for caps in re.captures_iter(create_sql) {
        values
            .entry(caps[1].to_ascii_lowercase())
            .or_insert_with(|| caps[2].to_owned());
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_parents_first_and_respects_constraints() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id),
                                 kind TEXT NOT NULL CHECK (kind IN ('read', 'write')));
             CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
                                  expires_at TEXT CHECK (expires_at > created_at), data BLOB, score REAL);",
        )
        .unwrap();
        assert_eq!(tables(&conn).unwrap(), ["parent", "child"]);
        fill(&conn).unwrap();
        let counts = counts(&conn).unwrap();
        assert_eq!(counts["parent"], ROWS as i64);
        assert_eq!(counts["child"], ROWS as i64);
    }

    #[test]
    fn fixed_length_checks_get_values_of_that_length() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE tokens (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                                  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
                                  code TEXT NOT NULL UNIQUE CHECK (length(\"code\") = 3));",
        )
        .unwrap();
        fill(&conn).unwrap();
        let lengths: Vec<(i64, i64)> = conn
            .prepare("SELECT length(token_hash), length(code) FROM tokens")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lengths, vec![(32, 3); ROWS]);
    }
}
