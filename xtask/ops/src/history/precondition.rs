//! The `-- xtask: refuse-unless-zero:` marker: a migration that may run only
//! once a count is zero (a contract that drops a column the backfill emptied
//! must not run while any row still needs that column). Three comment lines:
//!
//! ```sql
//! -- xtask: refuse-unless-zero: SELECT count(*) FROM secrets WHERE sealed_value IS NULL
//! -- xtask: hint: run `backend seal` while the service serves, then migrate again
//! -- xtask: check-backfill: UPDATE secrets SET sealed_value = X'00' WHERE sealed_value IS NULL
//! ```
//!
//! The runner counts inside the migration's own transaction, just before its
//! statements (so nothing can slip in between); the window also counts on
//! the live database in its preflight, before anything goes down. The hint
//! is what the operator reads when it refuses. `migrations check` cannot run
//! the application's backfill, so on its sample rows it runs the stand-in
//! `check-backfill` statement instead, and says so.

use crate::program::OPS;
use anyhow::bail;

use super::{files::MigrationFile, sql_text};

const COUNT: &str = "xtask: refuse-unless-zero:";
const HINT: &str = "xtask: hint:";
const CHECK_BACKFILL: &str = "xtask: check-backfill:";

/// A migration's precondition, read from its markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    /// A query returning one integer: the rows still in the way.
    pub count: String,
    /// What the operator runs to bring it to zero.
    pub hint: String,
    /// What `migrations check` runs on its sample rows in the backfill's place.
    pub check_backfill: Option<String>,
}

impl Precondition {
    /// Why the count could not be taken (`why`), naming the migration and
    /// the query, and what a count must be.
    pub fn uncountable(&self, file: &MigrationFile, why: &str) -> String {
        format!(
            "{}'s precondition `{}` cannot be counted: {why}; it must be one SELECT returning one \
             count of rows",
            file.stem(),
            self.count
        )
    }

    /// The refusal, naming the migration, what was counted and what to do;
    /// `before` is the version of the migration before it, which `--to`
    /// can apply alone.
    pub fn refusal(&self, file: &MigrationFile, found: i64, before: Option<i32>) -> String {
        let alone = before.map_or_else(String::new, |before| {
            format!(
                " (if migrations before it are pending too, apply them alone first: `{OPS} migrate --to \
                 {before}`)"
            )
        });
        format!(
            "{} refuses to run: {found} row(s) still in the way (`{}` must count 0): {}{alone}",
            file.stem(),
            self.count,
            // A migration's hint is written for a checkout: say it the way
            // the operator runs the tool here.
            self.hint.replace("cargo xtask ", &format!("{OPS} "))
        )
    }
}

/// The precondition `file` declares, if any; a marker without its partner,
/// twice, or with a query that is not one SELECT is an error naming the file.
pub fn of(file: &MigrationFile) -> anyhow::Result<Option<Precondition>> {
    let comments = sql_text::split(&file.sql).1;
    let value = |marker: &str| -> anyhow::Result<Option<String>> {
        let found: Vec<String> = comments
            .iter()
            .filter_map(|c| c.text.trim().strip_prefix(marker))
            .map(|rest| rest.trim().to_owned())
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] if !one.is_empty() => Ok(Some(one.clone())),
            [_] => bail!("{}: `-- {marker}` is empty", file.path.display()),
            _ => bail!(
                "{}: `-- {marker}` appears {} times; a migration has one",
                file.path.display(),
                found.len()
            ),
        }
    };
    let (count, hint, check_backfill) = (value(COUNT)?, value(HINT)?, value(CHECK_BACKFILL)?);
    let Some(count) = count else {
        if hint.is_some() || check_backfill.is_some() {
            bail!(
                "{}: `-- {HINT}` and `-- {CHECK_BACKFILL}` belong to a `-- {COUNT} SELECT …` marker, \
                 which this file lacks: add it, or remove them",
                file.path.display()
            );
        }
        return Ok(None);
    };
    let Some(hint) = hint else {
        bail!(
            "{}: `-- {COUNT}` needs a `-- {HINT}` line saying what the operator runs to bring the count \
             to zero (it is printed when the migration refuses)",
            file.path.display()
        );
    };
    let words: Vec<&str> = count.split_whitespace().collect();
    let is_select = words
        .first()
        .is_some_and(|w| w.eq_ignore_ascii_case("select"));
    if !is_select || count.contains(';') {
        bail!(
            "{}: `-- {COUNT}` takes one SELECT returning one integer (e.g. `SELECT count(*) FROM t WHERE …`), \
             not `{count}`",
            file.path.display()
        );
    }
    Ok(Some(Precondition {
        count,
        hint,
        check_backfill,
    }))
}

/// Every file's precondition problems, for `migrations check`: markers
/// that cannot be read or are misspelled, and a precondition on a
/// no-transaction file (which runs outside any transaction, so nothing
/// would hold the count).
pub fn problems(files: &[MigrationFile]) -> Vec<String> {
    let misspelled = files.iter().flat_map(misspelled_markers);
    files
        .iter()
        .filter_map(|f| match of(f) {
            Err(e) => Some(format!("{e:#}")),
            Ok(Some(_)) if super::no_transaction::is_no_transaction(f) => Some(format!(
                "{}: `-- {COUNT}` cannot go with `-- {}`: the file runs outside any transaction, so                  nothing holds the count until its statement runs; put the precondition on a                  transactional migration before it",
                f.path.display(),
                super::no_transaction::MARKER
            )),
            Ok(_) => None,
        })
        .chain(misspelled)
        .collect()
}

/// Comments that read as an xtask marker once spaces and case are ignored
/// but are not spelled as one (`--xtask:hint:…`, `-- XTASK: …`, tabs): a
/// guard misspelled would be silently ignored, and its migration run
/// unguarded.
fn misspelled_markers(file: &MigrationFile) -> Vec<String> {
    let spelled = |text: &str| {
        text == super::no_transaction::MARKER
            || [COUNT, HINT, CHECK_BACKFILL].iter().any(|m| {
                text.strip_prefix(m)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            })
    };
    sql_text::split(&file.sql)
        .1
        .iter()
        .filter(|c| {
            let squeezed: String = c.text.chars().filter(|ch| !ch.is_whitespace()).collect();
            squeezed.to_ascii_lowercase().starts_with("xtask:") && !spelled(&c.text)
        })
        .map(|c| {
            format!(
                "{}:{}: `-- {}` looks like an xtask marker but is not spelled as one, so it would be \
                 ignored: write `-- xtask: no-transaction`, `-- {COUNT} SELECT …`, `-- {HINT} …` or \
                 `-- {CHECK_BACKFILL} …` (lowercase, one space after each colon), or remove it",
                file.path.display(),
                c.line,
                c.text
            )
        })
        .collect()
}

/// [`problems`], refused before any command reads or changes a database.
pub fn refuse_unreadable(files: &[MigrationFile]) -> anyhow::Result<()> {
    let problems = problems(files);
    if !problems.is_empty() {
        bail!(
            "{} migration precondition(s) cannot be used; nothing was changed:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(sql: &str) -> MigrationFile {
        MigrationFile {
            version: 6,
            name: "contract".into(),
            path: PathBuf::from("V6__contract.sql"),
            sql: sql.into(),
        }
    }

    #[test]
    fn reads_the_three_markers() {
        let read = of(&file(
            "-- xtask: refuse-unless-zero: SELECT count(*) FROM t WHERE x IS NULL\n\
             -- xtask: hint: run the backfill\n\
             -- xtask: check-backfill: UPDATE t SET x = 1\nDROP TABLE u;\n",
        ))
        .unwrap();
        assert_eq!(
            read,
            Some(Precondition {
                count: "SELECT count(*) FROM t WHERE x IS NULL".into(),
                hint: "run the backfill".into(),
                check_backfill: Some("UPDATE t SET x = 1".into()),
            })
        );
    }

    #[test]
    fn a_file_without_markers_has_none() {
        assert_eq!(of(&file("DROP TABLE u;\n")).unwrap(), None);
    }

    #[test]
    fn refuses_half_markers_and_other_statements() {
        for sql in [
            "-- xtask: refuse-unless-zero: SELECT 1\n",
            "-- xtask: hint: run it\n",
            "-- xtask: refuse-unless-zero: DELETE FROM t\n-- xtask: hint: x\n",
            "-- xtask: refuse-unless-zero: SELECT 1; DROP TABLE t\n-- xtask: hint: x\n",
            "-- xtask: refuse-unless-zero: SELECT 1\n-- xtask: refuse-unless-zero: SELECT 2\n-- xtask: hint: x\n",
        ] {
            assert!(of(&file(sql)).is_err(), "accepted: {sql}");
        }
    }

    #[test]
    fn misspelled_markers_are_problems() {
        for sql in [
            "--xtask:refuse-unless-zero:SELECT 7\n--xtask:hint:x\nDROP TABLE u;\n",
            "-- XTASK: REFUSE-UNLESS-ZERO: SELECT 7\n-- XTASK: HINT: x\nDROP TABLE u;\n",
            "--\txtask:\trefuse-unless-zero:\tSELECT 7\n--\txtask:\thint:\tx\nDROP TABLE u;\n",
            "-- xtask: no transaction\nDROP TABLE u;\n",
        ] {
            assert!(!problems(&[file(sql)]).is_empty(), "accepted: {sql:?}");
        }
        let spelled = "--xtask: refuse-unless-zero: SELECT 0\n-- xtask: hint: x\nDROP TABLE u;\n";
        assert_eq!(problems(&[file(spelled)]), Vec::<String>::new());
    }
}
