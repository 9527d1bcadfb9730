//! The functions a statement calls, read from its tokens: a default that
//! calls anything but a known-stable pg_catalog function rewrites the table,
//! and a query that calls anything but a known-pure function runs code the
//! lint cannot see (a user function can drop or rewrite any table).

use sqlparser::{
    dialect::{PostgreSqlDialect, SQLiteDialect},
    keywords::Keyword,
    tokenizer::{Token, Tokenizer, TokenizerError, Word},
};

use crate::history::Engine;

/// Functions whose value is fixed for the transaction: Postgres stores such
/// a default once, without rewriting the table.
pub const STABLE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_timestamp",
    "current_date",
    "localtimestamp",
    "cast",
];

/// Built-in functions without side effects a migration's query may call.
pub const PURE: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "lower",
    "upper",
    "length",
    "char_length",
    "octet_length",
    "abs",
    "round",
    "trim",
    "substr",
    "substring",
    "concat",
    "cast",
    "now",
    "current_timestamp",
];

/// Words followed by `(` that are syntax, not calls.
const SYNTAX: &[Keyword] = &[
    Keyword::AS,
    Keyword::IN,
    Keyword::EXISTS,
    Keyword::VALUES,
    Keyword::ON,
    Keyword::USING,
    Keyword::OVER,
    Keyword::FILTER,
    Keyword::ANY,
    Keyword::ALL,
    Keyword::SOME,
    Keyword::FROM,
    Keyword::JOIN,
    Keyword::WHERE,
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::SELECT,
    Keyword::LATERAL,
    Keyword::BETWEEN,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
];

/// The first function `sql` calls that is not in `allowed` (matched with its
/// schema: unqualified or `pg_catalog` only; a type after `::` or `AS` is not
/// a call). Unreadable text counts as a call of `?`.
pub fn first_call_outside(sql: &str, allowed: &[&str], engine: Engine) -> Option<String> {
    let Ok(tokens) = tokenize(sql, engine) else {
        return Some("?".into());
    };
    let tokens: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let before = |i: usize, n: usize| i.checked_sub(n).map(|j| tokens[j]);
    tokens.iter().enumerate().find_map(|(i, token)| {
        let Token::Word(word) = token else {
            return None;
        };
        let called = tokens.get(i + 1) == Some(&&Token::LParen);
        let a_type = match before(i, 1) {
            Some(Token::DoubleColon) => true,
            Some(Token::Word(w)) => w.keyword == Keyword::AS,
            _ => false,
        };
        let syntax = word.quote_style.is_none() && SYNTAX.contains(&word.keyword);
        if !called || a_type || syntax {
            return None;
        }
        let schema = match (before(i, 1), before(i, 2)) {
            (Some(Token::Period), Some(Token::Word(s))) => Some(s.value.to_lowercase()),
            (Some(Token::Period), _) => Some("?".into()),
            _ => None,
        };
        let name = word.value.to_lowercase();
        let known = schema.as_deref().is_none_or(|s| s == "pg_catalog")
            && word.quote_style.is_none()
            && allowed.contains(&name.as_str());
        (!known).then(|| match schema {
            Some(schema) => format!("{schema}.{name}"),
            None => name,
        })
    })
}

/// The statement's tokens include one of `keywords` (unquoted); unreadable
/// text counts as including them.
pub fn has_keyword(sql: &str, keywords: &[Keyword], engine: Engine) -> bool {
    let Ok(tokens) = tokenize(sql, engine) else {
        return true;
    };
    let words = words(&tokens);
    words.iter().enumerate().any(|(i, w)| {
        // The UPDATE of a locking clause (FOR [NO KEY] UPDATE) changes no
        // row: [`has_locking_clause`] answers for it.
        let locking = w.keyword == Keyword::UPDATE
            && i.checked_sub(1)
                .and_then(|j| words.get(j))
                .is_some_and(|b| matches!(b.keyword, Keyword::FOR | Keyword::KEY));
        keywords.contains(&w.keyword) && !locking
    })
}

/// The statement has a row-locking clause: FOR UPDATE, FOR NO KEY UPDATE,
/// FOR SHARE or FOR KEY SHARE, in any of its queries.
pub fn has_locking_clause(sql: &str, engine: Engine) -> bool {
    let Ok(tokens) = tokenize(sql, engine) else {
        return false;
    };
    let words = words(&tokens);
    words.windows(2).any(|pair| {
        pair[0].keyword == Keyword::FOR
            && matches!(
                pair[1].keyword,
                Keyword::UPDATE | Keyword::SHARE | Keyword::NO | Keyword::KEY
            )
    })
}

/// The unquoted words of `tokens`, in order; anything else between two
/// words (other than whitespace) breaks their adjacency with a blank word.
fn words(tokens: &[Token]) -> Vec<Word> {
    tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.clone(),
            _ => Word {
                value: String::new(),
                quote_style: None,
                keyword: Keyword::NoKeyword,
            },
        })
        .collect()
}

fn tokenize(sql: &str, engine: Engine) -> Result<Vec<Token>, TokenizerError> {
    match engine {
        Engine::Sqlite => Tokenizer::new(&SQLiteDialect {}, sql).tokenize(),
        Engine::Postgres => Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize(),
    }
}
