//! What a SQLite `CREATE TABLE` says that changes behaviour and that no
//! pragma reports: `COLLATE` on a column, `ON CONFLICT`, `AUTOINCREMENT`,
//! `PRIMARY KEY DESC` (no rowid alias then), `DEFERRABLE`/`INITIALLY`, a
//! generated column's expression, and the table's options (`STRICT`,
//! `WITHOUT ROWID`). Read from the statement's text (string literals,
//! quoted names and comments skipped), one line per clause naming its
//! column or constraint, so `migrate adopt` refuses a clause found on one
//! side only: stricter than the engine, never laxer.

use std::collections::BTreeSet;

use crate::schema::checks::normalise;

/// Top-level pieces of SQL text.
#[derive(Debug, PartialEq)]
enum Token {
    /// An unquoted word, upper case.
    Word(String),
    /// A quoted name or string literal, as written.
    Quoted(String),
    /// The text inside a pair of parentheses.
    Group(String),
    Other(char),
}

/// Every behaviour-changing clause of `create_table`, as `"<owner>: <clause>"`
/// (`"name: COLLATE NOCASE"`, `"UNIQUE (name): ON CONFLICT REPLACE"`,
/// `"table: STRICT"`); a clause written twice on one owner is counted.
pub fn in_create_table(create_table: &str) -> BTreeSet<String> {
    let top = tokens(create_table);
    let Some(body_at) = top.iter().position(|t| matches!(t, Token::Group(_))) else {
        return BTreeSet::new();
    };
    let mut found = Vec::new();
    if let Token::Group(body) = &top[body_at] {
        for definition in split_top_level(body) {
            let parts = tokens(&definition);
            let owner = owner(&parts);
            found.extend(clauses(&parts).into_iter().map(|c| format!("{owner}: {c}")));
        }
    }
    let options: Vec<String> = top[body_at + 1..]
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    if !options.is_empty() {
        found.push(format!("table: {}", options.join(" ")));
    }
    counted(found)
}

/// One string per clause; the second of two equal ones gets " (2)", and so on.
fn counted(found: Vec<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for clause in found {
        let mut n = 1;
        let mut key = clause.clone();
        while out.contains(&key) {
            n += 1;
            key = format!("{clause} ({n})");
        }
        out.insert(key);
    }
    out
}

/// The column a definition declares, or the table constraint it is
/// (`UNIQUE (name)`, its name left out).
fn owner(parts: &[Token]) -> String {
    let mut rest = parts;
    if matches!(rest.first(), Some(Token::Word(w)) if w == "CONSTRAINT") {
        rest = rest.get(2..).unwrap_or_default();
    }
    match rest.first() {
        Some(Token::Word(w)) if ["PRIMARY", "UNIQUE", "CHECK", "FOREIGN"].contains(&w.as_str()) => {
            let mut kind = Vec::new();
            for token in rest {
                match token {
                    Token::Word(w) => kind.push(w.clone()),
                    Token::Group(g) => {
                        kind.push(format!("({})", normalise(g)));
                        break;
                    }
                    _ => break,
                }
            }
            kind.join(" ")
        }
        Some(Token::Word(w)) => w.to_lowercase(),
        Some(Token::Quoted(q)) => q.trim_matches(['"', '`', '[', ']']).to_owned(),
        _ => "table".into(),
    }
}

/// The clauses among a definition's tokens; inside a key's column list
/// (`PRIMARY KEY (id DESC)`, `UNIQUE (name COLLATE NOCASE)`) too.
fn clauses(parts: &[Token]) -> Vec<String> {
    let word = |i: usize| match parts.get(i) {
        Some(Token::Word(w)) => w.as_str(),
        _ => "",
    };
    let mut out = Vec::new();
    for (i, token) in parts.iter().enumerate() {
        match token {
            Token::Word(w) => match w.as_str() {
                "COLLATE" => out.push(format!("COLLATE {}", word_or_quoted(parts.get(i + 1)))),
                "CONFLICT" if word(i.wrapping_sub(1)) == "ON" => {
                    out.push(format!("ON CONFLICT {}", word(i + 1)));
                }
                "AUTOINCREMENT" | "DESC" | "STORED" | "VIRTUAL" => out.push(w.clone()),
                "DEFERRABLE" if word(i.wrapping_sub(1)) == "NOT" => {
                    out.push("NOT DEFERRABLE".into());
                }
                "DEFERRABLE" => out.push(w.clone()),
                "INITIALLY" => out.push(format!("INITIALLY {}", word(i + 1))),
                "AS" => {
                    if let Some(Token::Group(g)) = parts.get(i + 1) {
                        out.push(format!("GENERATED AS ({})", normalise(g)));
                    }
                }
                _ => {}
            },
            Token::Group(g) if matches!(word(i.wrapping_sub(1)), "KEY" | "UNIQUE") => {
                for column in split_top_level(g) {
                    let inner = tokens(&column);
                    out.extend(
                        clauses(&inner)
                            .into_iter()
                            .map(|c| format!("({}) {c}", normalise(&column))),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

fn word_or_quoted(token: Option<&Token>) -> String {
    match token {
        Some(Token::Word(w)) => w.clone(),
        Some(Token::Quoted(q)) => q.trim_matches(['"', '\'', '`', '[', ']']).to_uppercase(),
        _ => String::new(),
    }
}

/// The top-level tokens of `sql`; comments dropped.
fn tokens(sql: &str) -> Vec<Token> {
    spanned(sql).into_iter().map(|(_, t)| t).collect()
}

/// [`tokens`], each with the char index just after it.
fn spanned(sql: &str) -> Vec<(usize, Token)> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if matches!(c, '\'' | '"' | '`' | '[') {
            let close = if c == '[' { ']' } else { c };
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
            out.push((
                i,
                Token::Quoted(chars[start..i.min(chars.len())].iter().collect()),
            ));
        } else if c == '(' {
            let start = i + 1;
            let end = closing(&chars, i);
            i = end + 1;
            out.push((
                i,
                Token::Group(chars[start..end.min(chars.len())].iter().collect()),
            ));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$')) {
                i += 1;
            }
            out.push((
                i,
                Token::Word(chars[start..i].iter().collect::<String>().to_uppercase()),
            ));
        } else {
            i += 1;
            out.push((i, Token::Other(c)));
        }
    }
    out
}

/// The index of the `)` closing the `(` at `open` (quotes and comments skipped).
fn closing(chars: &[char], open: usize) -> usize {
    let (mut depth, mut quote, mut i) = (0, None::<char>, open);
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '[' => quote = Some(']'),
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    chars.len()
}

/// Splits at commas outside parentheses and quotes.
fn split_top_level(body: &str) -> Vec<String> {
    let chars: Vec<char> = body.chars().collect();
    let (mut parts, mut start, mut i, mut quote) = (Vec::new(), 0, 0, None::<char>);
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '[' => quote = Some(']'),
                '(' => i = closing(&chars, i),
                ',' => {
                    parts.push(chars[start..i].iter().collect::<String>().trim().to_owned());
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    parts.push(
        chars[start.min(chars.len())..]
            .iter()
            .collect::<String>()
            .trim()
            .to_owned(),
    );
    parts.retain(|p| !p.is_empty());
    parts
}

/// The `WHERE` of a partial index, normalised; None for a full index.
pub fn index_predicate(create_index: &str) -> Option<String> {
    let after = spanned(create_index)
        .into_iter()
        .find(|(_, t)| *t == Token::Word("WHERE".into()))?
        .0;
    let predicate: String = create_index.chars().skip(after).collect();
    Some(normalise(predicate.trim().trim_end_matches(';')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_clauses_with_their_owner_and_skips_literals_and_comments() {
        let sql = "CREATE TABLE t (id INTEGER PRIMARY KEY DESC AUTOINCREMENT, \"name\" TEXT COLLATE nocase \
                   NOT NULL ON CONFLICT IGNORE, note TEXT DEFAULT 'COLLATE x' /* DESC */, \
                   low TEXT GENERATED ALWAYS AS (lower(name)) STORED, \
                   CONSTRAINT u UNIQUE (name COLLATE RTRIM) ON CONFLICT REPLACE, \
                   FOREIGN KEY (id) REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED) STRICT, WITHOUT ROWID";
        let found = in_create_table(sql);
        let expected: BTreeSet<String> = [
            "id: DESC",
            "id: AUTOINCREMENT",
            "name: COLLATE NOCASE",
            "name: ON CONFLICT IGNORE",
            "low: GENERATED AS (lower(name))",
            "low: STORED",
            "UNIQUE (name collate rtrim): (name collate rtrim) COLLATE RTRIM",
            "UNIQUE (name collate rtrim): ON CONFLICT REPLACE",
            "FOREIGN KEY (id): DEFERRABLE",
            "FOREIGN KEY (id): INITIALLY DEFERRED",
            "table: STRICT WITHOUT ROWID",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_plain_table_has_none() {
        let sql = "CREATE TABLE secrets (id INTEGER NOT NULL, value TEXT NOT NULL, PRIMARY KEY (id), \
                   CONSTRAINT ck CHECK (length(CAST(value AS BLOB)) > 0), \
                   FOREIGN KEY(id) REFERENCES s (id) ON DELETE CASCADE)";
        assert_eq!(in_create_table(sql), BTreeSet::new());
    }

    #[test]
    fn a_partial_index_has_its_predicate() {
        assert_eq!(
            index_predicate("CREATE UNIQUE INDEX u ON secrets(name) WHERE id < 0"),
            Some("id < 0".into())
        );
        assert_eq!(index_predicate("CREATE INDEX \"where\" ON t (a)"), None);
    }
}
