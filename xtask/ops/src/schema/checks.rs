//! CHECK constraints read from SQL text, in one normal form: SQLite keeps
//! them only in the `CREATE TABLE` statement, and two tools write the same
//! constraint differently (on the column or the table, named or not, quoted
//! or not, other spacing and case). Where a check sits does not change what
//! it does in SQLite, so a table's checks are compared as a set of expressions.
//! Views and triggers are compared in the same normal form. Between two
//! engines, which spell the same rule differently, only the columns each
//! check reads are compared ([`columns_each_reads`], [`column_sets_diff`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;

/// The expression of every `CHECK (…)` in `sql`, normalised.
pub fn in_create_table(sql: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = sql.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => quote = Some(c),
            b'[' => quote = Some(b']'),
            _ if starts_keyword(sql, i, "check") => {
                if let Some((expr, end)) = parenthesised(sql, i + "check".len()) {
                    found.insert(normalise(expr));
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Whether the word `keyword` (any case) starts at byte `at`, as a whole word.
fn starts_keyword(sql: &str, at: usize, keyword: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = sql.as_bytes();
    let end = at + keyword.len();
    end <= bytes.len()
        && bytes[at..end].eq_ignore_ascii_case(keyword.as_bytes())
        && (at == 0 || !word(bytes[at - 1]))
        && (end == bytes.len() || !word(bytes[end]))
}

/// The text inside the parentheses that open after `from` (whitespace
/// allowed before them), and the byte after the closing one.
fn parenthesised(sql: &str, from: usize) -> Option<(&str, usize)> {
    let start = from + sql[from..].find(|c: char| !c.is_whitespace())?;
    if sql.as_bytes()[start] != b'(' {
        return None;
    }
    let (mut depth, mut quote) = (0i32, None);
    for (offset, c) in sql[start..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    let end = start + offset;
                    return Some((&sql[start + 1..end], end + 1));
                }
            }
            _ => {}
        }
    }
    None
}

/// One spelling per expression: lower case and identifier quotes dropped
/// outside string literals, whitespace collapsed, none beside parentheses
/// and commas, redundant outer parentheses removed.
pub fn normalise(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut in_literal = false;
    let mut pending_space = false;
    for c in expr.chars() {
        if in_literal {
            out.push(c);
            in_literal = c != '\'';
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if matches!(c, '"' | '`' | '[' | ']') {
            continue;
        }
        let glued = out.is_empty() || out.ends_with(['(', ',']) || matches!(c, ')' | ',');
        if pending_space && !glued {
            out.push(' ');
        }
        pending_space = false;
        in_literal = c == '\'';
        out.extend(c.to_lowercase());
    }
    while out.starts_with('(') && parenthesised(&out, 0).is_some_and(|(_, end)| end == out.len()) {
        out = out[1..out.len() - 1].to_owned();
    }
    out
}

/// The columns each CHECK of a SQLite `CREATE TABLE` reads, one entry per
/// check, sorted (SQLite keeps its checks only as the statement's text).
/// The checks are found by [`in_create_table`], which reads any clause
/// SQLite accepts; only each expression is tokenized.
pub fn columns_each_reads(
    create: &str,
    columns: &BTreeMap<String, bool>,
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut checks: Vec<Vec<String>> = in_create_table(create)
        .iter()
        .map(|expr| columns_read(expr, columns))
        .collect::<anyhow::Result<_>>()?;
    checks.sort();
    Ok(checks)
}

/// The table's columns named in `expr`, sorted.
fn columns_read(expr: &str, columns: &BTreeMap<String, bool>) -> anyhow::Result<Vec<String>> {
    let dialect = sqlparser::dialect::SQLiteDialect {};
    let tokens = sqlparser::tokenizer::Tokenizer::new(&dialect, expr)
        .tokenize()
        .with_context(|| format!("sqlparser cannot read the CHECK expression `{expr}`"))?;
    let named: BTreeSet<String> = tokens
        .iter()
        .filter_map(|t| match t {
            sqlparser::tokenizer::Token::Word(w) => columns
                .keys()
                .find(|c| c.eq_ignore_ascii_case(&w.value))
                .cloned(),
            _ => None,
        })
        .collect();
    Ok(named.into_iter().collect())
}

/// CHECK constraints compared as a multiset of the column sets they read.
pub fn column_sets_diff(
    out: &mut Vec<String>,
    table: &str,
    (a, a_name): (&[Vec<String>], &str),
    (b, b_name): (&[Vec<String>], &str),
) {
    let count =
        |list: &[Vec<String>], columns: &Vec<String>| list.iter().filter(|c| *c == columns).count();
    let all: BTreeSet<&Vec<String>> = a.iter().chain(b).collect();
    for columns in all {
        let (in_a, in_b) = (count(a, columns), count(b, columns));
        let on = format!("({})", columns.join(", "));
        match (in_a, in_b) {
            (x, y) if x == y => {}
            (_, 0) => out.push(format!(
                "{table}: a CHECK on {on} on {a_name}, none on {b_name}"
            )),
            (0, _) => out.push(format!(
                "{table}: a CHECK on {on} on {b_name}, none on {a_name}"
            )),
            (x, y) => out.push(format!(
                "{table}: {x} CHECKs on {on} on {a_name}, {y} on {b_name}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_column_and_table_checks_in_one_form() {
        let migrations = "CREATE TABLE secrets (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128), \
                          kind TEXT CHECK (kind IN ('a', 'b')))";
        let other_tool = "CREATE TABLE \"secrets\" (\n  \"id\" INTEGER NOT NULL, \"name\" VARCHAR NOT NULL, \"kind\" TEXT,\n  \
                          CONSTRAINT ck_name CHECK ((LENGTH(\"name\") between 1 and 128)),\n  CHECK( kind in ('a','b') ), PRIMARY KEY (id))";
        let expected = BTreeSet::from([
            "length(name) between 1 and 128".to_owned(),
            "kind in ('a','b')".to_owned(),
        ]);
        assert_eq!(in_create_table(migrations), expected);
        assert_eq!(in_create_table(other_tool), expected);
    }

    #[test]
    fn a_string_or_a_name_containing_check_is_not_a_check() {
        let sql = "CREATE TABLE t (checked TEXT DEFAULT 'CHECK (x)', \"check\" INT, recheck INT)";
        assert_eq!(in_create_table(sql), BTreeSet::new());
    }

    #[test]
    fn literals_keep_their_case_and_spacing() {
        assert_eq!(normalise("X = 'A  B'"), "x = 'A  B'");
        assert_ne!(normalise("x = 'a'"), normalise("x = 'A'"));
    }

    #[test]
    fn inner_parentheses_that_are_not_outer_stay() {
        assert_eq!(normalise("(a > 1) AND (b < 2)"), "(a > 1) and (b < 2)");
        assert_eq!(normalise("((a > 1))"), "a > 1");
    }
}
