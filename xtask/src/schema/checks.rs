//! CHECK constraints read from SQL text, in one normal form: SQLite keeps
//! them only in the `CREATE TABLE` statement, and two tools write the same
//! constraint differently (on the column or the table, named or not, quoted
//! or not, other spacing and case). Where a check sits does not change what
//! it does in SQLite, so a table's checks are compared as a set of expressions.
//! Views and triggers are compared in the same normal form.

use std::collections::BTreeSet;

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
