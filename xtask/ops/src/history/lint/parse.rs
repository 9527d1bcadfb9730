//! Reading a migration with sqlparser, in the dialect of the engine that
//! runs it. Statements come from the parser (so `public.t`, `IF EXISTS`,
//! `ONLY` and multi-action `ALTER`s are what they are); the marker comments
//! come from the text, since the parser drops comments.

use sqlparser::{
    ast,
    dialect::{Dialect, PostgreSqlDialect, SQLiteDialect},
    keywords::Keyword,
    parser::Parser,
    tokenizer::{Token, TokenWithSpan, Tokenizer},
};

use crate::history::{Engine, MigrationFile, sql_text};

/// One statement as the parser read it, or why it could not.
pub struct Parsed {
    pub line: usize,
    /// The statement's text, comments left out, whitespace collapsed.
    pub text: String,
    pub ast: Result<ast::Statement, String>,
    /// The statement says CONCURRENTLY (read from its tokens, so a
    /// statement the parser does not know still counts).
    pub concurrently: bool,
}

fn dialect(engine: Engine) -> &'static dyn Dialect {
    match engine {
        Engine::Sqlite => &SQLiteDialect {},
        Engine::Postgres => &PostgreSqlDialect {},
    }
}

/// Every statement of `sql` as `engine` reads it. A statement the parser
/// cannot read is kept, with the parser's message, so it is never skipped.
pub fn statements(sql: &str, engine: Engine) -> Vec<Parsed> {
    let dialect = dialect(engine);
    let tokens = match Tokenizer::new(dialect, sql).tokenize_with_location() {
        Ok(tokens) => tokens,
        Err(e) => {
            return vec![Parsed {
                line: usize::try_from(e.location.line).unwrap_or(1).max(1),
                text: sql.split_whitespace().collect::<Vec<_>>().join(" "),
                ast: Err(e.message),
                concurrently: false,
            }];
        }
    };
    let mut parser = Parser::new(dialect).with_tokens_with_locations(tokens.clone());
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let first = parser.peek_token();
        if first.token == Token::EOF {
            break;
        }
        let start = parser.index();
        let ast = parse_one(&mut parser);
        let range = &tokens[start.min(tokens.len())..parser.index().min(tokens.len())];
        out.push(Parsed {
            line: usize::try_from(first.span.start.line).unwrap_or(1),
            text: text_of(range),
            ast,
            concurrently: range
                .iter()
                .any(|t| is_keyword(&t.token, Keyword::CONCURRENTLY)),
        });
    }
    out
}

/// One statement up to its `;`; on an error, skips to the next `;` so the
/// statements after it are still read.
fn parse_one(parser: &mut Parser) -> Result<ast::Statement, String> {
    let result = parser.parse_statement().map_err(|e| e.to_string());
    let next = parser.peek_token().token;
    let result = result.and_then(|statement| match next {
        Token::SemiColon | Token::EOF => Ok(statement),
        other => Err(format!(
            "expected the end of the statement, found `{other}`"
        )),
    });
    if result.is_err() {
        while !matches!(parser.peek_token().token, Token::SemiColon | Token::EOF) {
            parser.next_token();
        }
    }
    result
}

fn is_keyword(token: &Token, keyword: Keyword) -> bool {
    matches!(token, Token::Word(w) if w.keyword == keyword)
}

fn text_of(tokens: &[TokenWithSpan]) -> String {
    let mut text = String::new();
    for t in tokens {
        match &t.token {
            Token::Whitespace(_) => text.push(' '),
            other => text.push_str(&other.to_string()),
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The reason of the file's `-- contract: <reason>` marker, if it has one.
pub fn contract_reason(file: &MigrationFile) -> Option<String> {
    markers(file, "contract:").find(|reason| !reason.is_empty())
}

/// The file carries `-- xtask: no-transaction` above its first statement:
/// the runner applies it outside a transaction (for CONCURRENTLY). The
/// runner's own reading, so the lint and the runner never disagree.
pub fn no_transaction(file: &MigrationFile) -> bool {
    crate::history::no_transaction::is_no_transaction(file)
}

/// What follows `prefix` in each `--` comment that starts with it.
fn markers(file: &MigrationFile, prefix: &str) -> impl Iterator<Item = String> {
    let (_, comments) = sql_text::split(&file.sql);
    let prefix = prefix.to_owned();
    comments
        .into_iter()
        .filter_map(move |c| Some(c.text.strip_prefix(&prefix)?.trim().to_owned()))
}
