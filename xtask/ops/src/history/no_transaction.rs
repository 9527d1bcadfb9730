//! The `-- xtask: no-transaction` marker: a migration whose one statement
//! cannot run inside a transaction (Postgres's `CREATE INDEX CONCURRENTLY`).
//! The runner applies such a file alone, outside any transaction, and
//! records it only once it succeeded; this module reads the marker and
//! refuses the files that cannot be run that way.

use anyhow::bail;

use super::{
    files::{Engine, MigrationFile, POSTGRES_DIR},
    sql_text,
};

/// The marker, as a `--` comment before the file's first statement.
pub const MARKER: &str = "xtask: no-transaction";

/// Whether `file` carries the marker above its first statement.
pub fn is_no_transaction(file: &MigrationFile) -> bool {
    let (statements, comments) = sql_text::split(&file.sql);
    let first = statements.first().map_or(usize::MAX, |s| s.line);
    comments
        .iter()
        .any(|c| c.line <= first && c.text.trim() == MARKER)
}

/// Every marked file must hold exactly one statement (it runs alone, and a
/// second statement would make Postgres wrap both in a transaction block);
/// SQLite runs none outside the window's transaction. All problems at once.
pub fn refuse_unrunnable(files: &[MigrationFile], engine: Engine) -> anyhow::Result<()> {
    let problems: Vec<String> = files
        .iter()
        .filter(|f| is_no_transaction(f))
        .filter_map(|file| problem(file, engine))
        .collect();
    if !problems.is_empty() {
        bail!(
            "{} no-transaction migration(s) cannot run; nothing was changed:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn problem(file: &MigrationFile, engine: Engine) -> Option<String> {
    let path = file.path.display();
    if engine == Engine::Sqlite {
        return Some(format!(
            "{path}: marked `-- {MARKER}`, but SQLite has no statement that needs it and the window \
             applies every migration in one transaction beside its backup: remove the marker here \
             and keep it in the Postgres twin ({POSTGRES_DIR}/{}.sql)",
            file.stem()
        ));
    }
    let statements = sql_text::split(&file.sql).0;
    // Named like the lint's findings (file:line: rule), at the statement too many.
    let line = statements.get(1).map_or(1, |s| s.line);
    match statements.len() {
        1 => None,
        n => Some(format!(
            "{path}:{line}: no-transaction-one-statement: marked `-- {MARKER}` but holds {n} \
             statements; such a file runs alone outside any transaction and must hold exactly one: \
             split it, one file per statement"
        )),
    }
}

/// The indexes `file` creates (bare names, without schema, as Postgres
/// stores them), so a run can tell an INVALID index is its own.
pub fn created_indexes(file: &MigrationFile) -> Vec<String> {
    sql_text::split(&file.sql)
        .0
        .iter()
        .filter_map(|statement| index_name(&identifiers(&statement.text)))
        .collect()
}

/// A word of SQL as Postgres reads it: unquoted ones fold to lower case
/// (and may hold `$`), quoted ones keep their case and are never keywords.
struct Word {
    text: String,
    quoted: bool,
}

impl Word {
    fn is(&self, keyword: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(keyword)
    }
}

/// The words of `text`, string literals and punctuation left out.
fn identifiers(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphabetic() || c == '_' {
            let mut word = c.to_lowercase().collect::<String>();
            while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || matches!(c, '_' | '$')) {
                word.extend(c.to_lowercase());
            }
            words.push(Word {
                text: word,
                quoted: false,
            });
        } else if c == '"' || c == '\'' {
            let mut quoted = String::new();
            // A doubled quote inside is the quote itself.
            while let Some(inner) = chars.next() {
                if inner == c && chars.next_if_eq(&c).is_none() {
                    break;
                }
                quoted.push(inner);
            }
            if c == '"' {
                words.push(Word {
                    text: quoted,
                    quoted: true,
                });
            }
        }
    }
    words
}

/// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [schema.]name ON …`.
fn index_name(words: &[Word]) -> Option<String> {
    let mut rest = words.iter();
    if !rest.next()?.is("CREATE") {
        return None;
    }
    let mut word = rest.next()?;
    if word.is("UNIQUE") {
        word = rest.next()?;
    }
    if !word.is("INDEX") {
        return None;
    }
    let mut word = rest.next()?;
    if word.is("CONCURRENTLY") {
        word = rest.next()?;
    }
    if word.is("IF") {
        rest.next()?; // NOT
        rest.next()?; // EXISTS
        word = rest.next()?;
    }
    // The dot of `schema.name` is left out: the name is the last word before ON.
    let mut name = word;
    for next in rest {
        if next.is("ON") {
            return Some(name.text.clone());
        }
        name = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(sql: &str) -> MigrationFile {
        MigrationFile {
            version: 6,
            name: "idx".into(),
            path: PathBuf::from("migrations/postgres/V6__idx.sql"),
            sql: sql.into(),
        }
    }

    #[test]
    fn the_marker_counts_only_above_the_first_statement() {
        assert!(is_no_transaction(&file(
            "-- why\n-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x);"
        )));
        assert!(!is_no_transaction(&file(
            "CREATE INDEX a ON t (x);\n-- xtask: no-transaction\n"
        )));
        assert!(!is_no_transaction(&file("CREATE INDEX a ON t (x);")));
    }

    #[test]
    fn index_names_with_every_optional_word() {
        for (sql, name) in [
            ("CREATE INDEX a ON t (x)", "a"),
            (
                "create unique index concurrently if not exists public.b on t (x)",
                "b",
            ),
            ("CREATE INDEX CONCURRENTLY c ON t USING btree (x)", "c"),
            (
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"Secrets_Created_Ix\" ON secrets (x)",
                "Secrets_Created_Ix",
            ),
            (
                "CREATE UNIQUE INDEX secrets_value$uq ON secrets (value)",
                "secrets_value$uq",
            ),
            (
                "CREATE INDEX \"Odd \"\"on\"\" name\" ON \"S\".t (x)",
                "Odd \"on\" name",
            ),
        ] {
            assert_eq!(created_indexes(&file(sql)), [name], "{sql}");
        }
        assert!(created_indexes(&file("CREATE TABLE i (x INT)")).is_empty());
    }
}
