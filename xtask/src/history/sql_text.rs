//! Splits a migration's SQL into statements, keeping the line each starts
//! on and the comments, for the file checks and the marker comments the
//! zero-downtime lint reads (its statements come from sqlparser, which drops
//! comments: see `history/lint/parse.rs`).
//!
//! It knows SQL's quoting ('…', "…", `…`, […]) and comments (`--`, `/* */`),
//! and that a `CREATE TRIGGER … BEGIN … END;` is one statement, however many
//! semicolons its body has. It is a lexer, not a parser.

/// One statement: where it starts, its text without comments, collapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub text: String,
}

impl Statement {
    /// The upper-cased words (identifiers unquoted), for classification.
    pub fn words(&self) -> Vec<String> {
        words(&self.text)
    }
}

/// A `--` comment and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub line: usize,
    pub text: String,
}

/// Statements and line comments of `sql`.
pub fn split(sql: &str) -> (Vec<Statement>, Vec<Comment>) {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut comments = Vec::new();
    let mut current = String::new();
    let mut start_line = None;
    let (mut line, mut i) = (1, 0);
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                let end = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
                comments.push(Comment {
                    line,
                    text: sql[i + 2..end].trim().to_owned(),
                });
                i = end;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
                line += sql[i..end].matches('\n').count();
                current.push(' ');
                i = end;
                continue;
            }
            b'\'' | b'"' | b'`' | b'[' => {
                let close = if c == b'[' { b']' } else { c };
                let mut end = i + 1;
                while end < bytes.len() {
                    if bytes[end] == close {
                        // A doubled quote is an escaped quote, except for [ ].
                        if close != b']' && bytes.get(end + 1) == Some(&close) {
                            end += 2;
                            continue;
                        }
                        break;
                    }
                    end += 1;
                }
                let end = (end + 1).min(bytes.len());
                start_line.get_or_insert(line);
                line += sql[i..end].matches('\n').count();
                current.push_str(&sql[i..end]);
                i = end;
                continue;
            }
            b';' if !inside_trigger_body(&current) => {
                push_statement(&mut statements, &mut current, &mut start_line);
            }
            b'\n' => {
                line += 1;
                current.push(' ');
            }
            _ => {
                if !c.is_ascii_whitespace() {
                    start_line.get_or_insert(line);
                }
                current.push(c as char);
            }
        }
        i += 1;
    }
    push_statement(&mut statements, &mut current, &mut start_line);
    (statements, comments)
}

fn push_statement(
    statements: &mut Vec<Statement>,
    current: &mut String,
    start_line: &mut Option<usize>,
) {
    let text = current.split_whitespace().collect::<Vec<_>>().join(" ");
    if let (false, Some(line)) = (text.is_empty(), start_line.take()) {
        statements.push(Statement { line, text });
    }
    current.clear();
    *start_line = None;
}

/// True while `text` is a CREATE TRIGGER whose BEGIN has no matching END yet.
fn inside_trigger_body(text: &str) -> bool {
    let words = words(text);
    let is_trigger = words.first().is_some_and(|w| w == "CREATE")
        && words.iter().take(4).any(|w| w == "TRIGGER");
    if !is_trigger {
        return false;
    }
    let opened = words
        .iter()
        .filter(|w| *w == "BEGIN" || *w == "CASE")
        .count();
    let closed = words.iter().filter(|w| *w == "END").count();
    opened > closed
}

/// Upper-cased words; quoted identifiers lose their quotes, string literals
/// become `'…'` so their contents never look like keywords.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                word.push(c.to_ascii_uppercase());
                chars.next();
            }
            out.push(word);
        } else if matches!(c, '"' | '`' | '[') {
            let close = if c == '[' { ']' } else { c };
            chars.next();
            let word: String = chars.by_ref().take_while(|&c| c != close).collect();
            out.push(word.to_ascii_uppercase());
        } else if c == '\'' {
            chars.next();
            let _: String = chars.by_ref().take_while(|&c| c != '\'').collect();
            out.push("'…'".into());
        } else {
            if matches!(c, '(' | ')' | ',') {
                out.push(c.to_string());
            }
            chars.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_lines_and_comments() {
        let sql = "-- contract: old column unused\nCREATE TABLE a (\n  x TEXT DEFAULT 'a;b' -- inline\n);\n\n/* block\n comment */ DROP TABLE b;\n";
        let (statements, comments) = split(sql);
        assert_eq!(
            statements,
            [
                Statement {
                    line: 2,
                    text: "CREATE TABLE a ( x TEXT DEFAULT 'a;b' )".into()
                },
                Statement {
                    line: 7,
                    text: "DROP TABLE b".into()
                },
            ]
        );
        assert_eq!(
            comments[0],
            Comment {
                line: 1,
                text: "contract: old column unused".into()
            }
        );
        assert_eq!(comments[1].line, 3);
    }

    #[test]
    fn a_trigger_body_is_one_statement() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = CASE WHEN 1 THEN 2 END;\n  DELETE FROM b;\nEND;\nBEGIN;\n";
        let (statements, _) = split(sql);
        assert_eq!(statements.len(), 2, "{statements:?}");
        assert_eq!(
            statements[1],
            Statement {
                line: 5,
                text: "BEGIN".into()
            }
        );
    }

    #[test]
    fn words_unquote_identifiers_and_hide_strings() {
        assert_eq!(
            words("alter table \"my t\" add column `c` text default 'drop table x'"),
            [
                "ALTER", "TABLE", "MY T", "ADD", "COLUMN", "C", "TEXT", "DEFAULT", "'…'"
            ]
        );
    }
}
