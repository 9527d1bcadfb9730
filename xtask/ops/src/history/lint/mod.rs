//! The zero-downtime lint (expand/contract, and locks).
//!
//! During a rolling deploy the previous release's code keeps running against
//! the migrated schema, and keeps serving. An *expand* change (new table,
//! index, view, trigger, nullable or defaulted column) is invisible to that
//! code. A *contract* change removes or reshapes something it still uses; a
//! *locking* change holds a table lock long enough to stall every request.
//! Both ship on their own, when no running code needs the old shape or in a
//! window, and say so with a marker comment giving the reason:
//!
//! ```sql
//! -- contract: column `legacy_note` unused since 0.3.0
//! ```
//!
//! Each file is read by sqlparser in the dialect of the engine that runs it
//! ([`lint_migration`]); [`RULES`] is the one list of what is refused, why,
//! and what to write instead.

mod calls;
mod classify;
mod names;
mod parse;
mod rules;
#[cfg(test)]
mod tests;

pub use parse::{contract_reason, no_transaction};
pub use rules::{Kind, rules_markdown};

use classify::{Class, classify};
use parse::Parsed;

use crate::history::{Engine, MigrationFile};

/// One finding: where, what, which rule, why and what to do instead.
#[derive(Debug, Clone)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub rule: &'static str,
    pub why: String,
    pub recipe: &'static str,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match rules::rule(self.rule).map(|r| r.kind) {
            Some(Kind::Unknown) => "needs a marker",
            _ => "breaks zero-downtime deploys",
        };
        write!(
            f,
            "{}:{}: `{}` — {} {verb}: {}. Instead: {}",
            self.file, self.line, self.statement, self.rule, self.why, self.recipe
        )
    }
}

/// One migration: its shared file (as SQLite runs it, and as Postgres does
/// when there is no twin) and its Postgres twin. A `-- contract:` marker in
/// either file covers both: they are one logical migration.
pub fn lint_migration(shared: &MigrationFile, twin: Option<&MigrationFile>) -> Vec<Finding> {
    let marked = declared_contract(shared, twin).is_some();
    let mut findings = lint_file(shared, Engine::Sqlite, marked);
    match twin {
        Some(twin) => findings.extend(lint_file(twin, Engine::Postgres, marked)),
        None => {
            for mut finding in lint_file(shared, Engine::Postgres, marked) {
                let seen = findings
                    .iter()
                    .any(|f| f.line == finding.line && f.rule == finding.rule);
                if finding.why.contains("the Postgres parser cannot read it") {
                    finding.why.push_str(
                        "; this shared file has no Postgres twin, so Postgres runs it as it is: \
                         add a twin with Postgres SQL in the postgres/ folder",
                    );
                }
                if !seen {
                    findings.push(finding);
                }
            }
        }
    }
    findings
}

/// The `-- contract:` reason of either file of a migration.
pub fn declared_contract(shared: &MigrationFile, twin: Option<&MigrationFile>) -> Option<String> {
    twin.and_then(contract_reason)
        .or_else(|| contract_reason(shared))
}

/// The findings of one file read as `engine` reads it; `marked` allows the
/// contract, locking and unknown statements (never the file rules).
pub fn lint_file(file: &MigrationFile, engine: Engine, marked: bool) -> Vec<Finding> {
    let statements = parse::statements(&file.sql, engine);
    let classes = classify(&statements, engine);
    let path = file.path.display().to_string();
    let finding = |at: &Parsed, rule: &'static str| finding(&path, at, rule, None);
    let mut findings = Vec::new();
    if let Some(contract) = mixed(&classes) {
        findings.push(finding(&statements[contract], "mixed-file"));
    }
    file_rules(file, &statements, &mut |at, rule| {
        findings.push(finding(at, rule))
    });
    if marked {
        return findings;
    }
    let mut reported_rebuild = false;
    for (at, classes) in statements.iter().zip(&classes) {
        for class in classes {
            match class {
                // A rebuild is one unit: reported once, at its first statement.
                Class::Rule("table-rebuild") if reported_rebuild => {}
                Class::Rule(rule) => {
                    reported_rebuild |= *rule == "table-rebuild";
                    findings.push(finding(at, rule));
                }
                Class::Unknown(why) => {
                    findings.push(self::finding(&path, at, "unknown-statement", Some(why)))
                }
                Class::Expand | Class::Neutral => {}
            }
        }
    }
    findings
}

fn finding(path: &str, at: &Parsed, rule: &'static str, detail: Option<&str>) -> Finding {
    let (why, recipe) = rules::rule(rule).map_or(("", ""), |r| (r.why, r.recipe));
    Finding {
        file: path.to_owned(),
        line: at.line,
        statement: shorten(&at.text),
        rule,
        why: match detail {
            Some(detail) => format!("{why} — {detail}"),
            None => why.to_owned(),
        },
        recipe,
    }
}

/// The first contract statement of a file that also expands.
fn mixed(classes: &[Vec<Class>]) -> Option<usize> {
    let is_contract = |c: &Class| matches!(c, Class::Rule(id) if rules::rule(id).is_some_and(|r| r.kind == Kind::Contract));
    classes.iter().find(|c| c.contains(&Class::Expand))?;
    classes.iter().position(|c| c.iter().any(is_contract))
}

/// The rules on how the file is put together: CONCURRENTLY only alone in
/// a no-transaction file.
fn file_rules(
    file: &MigrationFile,
    statements: &[Parsed],
    report: &mut dyn FnMut(&Parsed, &'static str),
) {
    // A marked file with more than one statement never gets here: loading
    // the files refuses it (`no_transaction::refuse_unrunnable`), in the
    // same file:line: rule form, for every command.
    if !no_transaction(file) {
        for at in statements.iter().filter(|s| s.concurrently) {
            report(at, "concurrently-in-transaction");
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 80 {
        return text.to_owned();
    }
    format!("{}…", text.chars().take(79).collect::<String>())
}
