//! Splits a migration's SQL into statements, keeping the line each starts
//! on and the comments, for the file checks and the marker comments the
//! zero-downtime lint reads (its statements come from sqlparser, which drops
//! comments: see `history/lint/parse.rs`).
//!
//! It knows SQL's quoting ('…', "…", `…`, […]), Postgres's E'…' strings
//! (backslash escapes) and dollar quoting ($$…$$, $tag$…$tag$), and comments
//! (`--`, `/* */`, nested as Postgres nests them), so that its statements and
//! markers agree with the parser: a `-- contract:` inside a string or a block
//! comment is no marker. SQLite has no dollar quoting nor E'' strings; a
//! SQLite file that used `$$` or `E'\'` would not run, so reading them the
//! Postgres way loses nothing. It also knows that a `CREATE TRIGGER … BEGIN
//! … END;` is one statement, however many semicolons its body has. It is a
//! lexer, not a parser.

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
                let end = block_comment_end(bytes, i);
                line += sql[i..end].matches('\n').count();
                current.push(' ');
                i = end;
                continue;
            }
            b'\'' | b'"' | b'`' | b'[' | b'$' => {
                let Some(end) = quoted_end(bytes, i) else {
                    start_line.get_or_insert(line);
                    current.push('$');
                    i += 1;
                    continue;
                };
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

/// The end (exclusive) of the block comment at `start`; Postgres nests them.
fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    let (mut depth, mut i) = (0usize, start);
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The end (exclusive) of the quoted text opening at `start`, or `None`
/// when a `$` opens no dollar quote (a `$1` parameter, a `$` in a name).
fn quoted_end(bytes: &[u8], start: usize) -> Option<usize> {
    let c = bytes[start];
    if c == b'$' {
        return dollar_quoted_end(bytes, start);
    }
    let close = if c == b'[' { b']' } else { c };
    // E'…' (any case, not the end of a longer word) takes backslash escapes.
    let escapes = c == b'\''
        && start > 0
        && bytes[start - 1].eq_ignore_ascii_case(&b'e')
        && !(start > 1 && is_word_byte(bytes[start - 2]));
    let mut end = start + 1;
    while end < bytes.len() {
        if escapes && bytes[end] == b'\\' {
            end += 2;
            continue;
        }
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
    Some((end + 1).min(bytes.len()))
}

/// `$tag$…$tag$` (the tag empty or a name not starting with a digit), as
/// Postgres reads it; a `$` inside a word is part of the word.
fn dollar_quoted_end(bytes: &[u8], start: usize) -> Option<usize> {
    if start > 0 && is_word_byte(bytes[start - 1]) {
        return None;
    }
    let tag_len = bytes[start + 1..].iter().position(|b| *b == b'$')?;
    let tag = &bytes[start..start + tag_len + 2];
    let valid = tag[1..tag.len() - 1].iter().all(|b| is_word_byte(*b))
        && !tag.get(1).is_some_and(u8::is_ascii_digit);
    if !valid {
        return None;
    }
    let body = start + tag.len();
    let close = bytes[body..].windows(tag.len()).position(|w| w == tag);
    Some(close.map_or(bytes.len(), |n| body + n + tag.len()))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
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
    fn dollar_quotes_e_strings_and_nested_comments_hide_semicolons_and_markers() {
        let sql = "CREATE INDEX CONCURRENTLY i ON t (x) WHERE x <> $$a;b$$;\n\
                   CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN\n  \
                   -- contract: in the body\n  RETURN 1; END $body$;\n\
                   SELECT E'\\' -- contract: in a string';\n\
                   /* /* */ -- contract: in a comment */ SELECT $1, a$b;\n";
        let (statements, comments) = split(sql);
        let lines: Vec<usize> = statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 2, 5, 6], "{statements:?}");
        assert!(statements[1].text.ends_with("END $body$"), "{statements:?}");
        assert_eq!(statements[3].text, "SELECT $1, a$b");
        assert!(comments.is_empty(), "{comments:?}");
        // A standard string ends at its second quote: the comment is real.
        let (_, comments) = split("SELECT '\\'; -- contract: real\n");
        assert_eq!(comments.len(), 1);
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
