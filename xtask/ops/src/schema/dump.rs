//! The schema of a SQLite database as normalised SQL: every table, index,
//! view and trigger (the migration history left out), sorted by kind and
//! name, whitespace collapsed, one column per line. Two databases with the
//! same schema give the same text; reviewers read schema changes in its diff.

use rusqlite::Connection;

use secrets_contract::schema::HISTORY_TABLE;

const HEADER: &str = "-- The schema after every migration, written by `cargo xtask migrations check --bless`.\n\
                      -- Do not edit: change the schema with a new migration, then bless.\n";

pub fn dump(conn: &Connection) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(
        "SELECT type, sql FROM sqlite_schema
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND tbl_name <> ?1
         ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, name",
    )?;
    let objects = stmt.query_map([HISTORY_TABLE], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut out = String::from(HEADER);
    for object in objects {
        let (kind, sql) = object?;
        out.push('\n');
        out.push_str(&format_object(&kind, &sql));
        out.push_str(";\n");
    }
    Ok(out)
}

fn format_object(kind: &str, sql: &str) -> String {
    let flat = collapse(sql);
    if kind != "table" {
        return flat;
    }
    let (Some(open), Some(close)) = (flat.find('('), flat.rfind(')')) else {
        return flat;
    };
    let parts = split_top_level(&flat[open + 1..close]);
    format!(
        "{}(\n    {}\n){}",
        &flat[..open],
        parts.join(",\n    "),
        &flat[close + 1..]
    )
}

/// Collapses whitespace outside quotes; no space just inside parentheses or before commas.
fn collapse(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut pending_space = false;
    for c in sql.chars() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() && !out.ends_with('(') && !matches!(c, ')' | ',') {
            out.push(' ');
        }
        pending_space = false;
        if matches!(c, '\'' | '"' | '`') {
            quote = Some(c);
        } else if c == '[' {
            quote = Some(']');
        }
        out.push(c);
    }
    out
}

/// Splits at commas outside parentheses and quotes; parts trimmed.
fn split_top_level(body: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '[') => quote = Some(']'),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(body[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(body[start..].trim().to_owned());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_layout_do_not_matter() {
        let a = Connection::open_in_memory().unwrap();
        a.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (length(name) > 0), note TEXT DEFAULT 'a,  b');\nCREATE INDEX t_name ON t(name);").unwrap();
        let b = Connection::open_in_memory().unwrap();
        b.execute_batch("CREATE TABLE t (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL CHECK ( length(name) > 0 ),\n  note TEXT DEFAULT 'a,  b'\n);\nCREATE INDEX t_name ON t (name);").unwrap();
        let dump_a = dump(&a).unwrap();
        assert!(dump_a.contains("CREATE TABLE t (\n    id INTEGER PRIMARY KEY,\n    name TEXT NOT NULL CHECK (length(name) > 0),\n    note TEXT DEFAULT 'a,  b'\n);\n"), "{dump_a}");
        assert_eq!(dump_a.replace("t(name)", "t (name)"), dump(&b).unwrap());
    }

    #[test]
    fn leaves_out_the_migration_history() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE {HISTORY_TABLE} (version INT); CREATE TABLE a (x);"
        ))
        .unwrap();
        let dumped = dump(&conn).unwrap();
        assert!(
            !dumped.contains(HISTORY_TABLE) && dumped.contains("CREATE TABLE a ("),
            "{dumped}"
        );
    }
}
