//! The zero-downtime lint (expand/contract).
//!
//! During a rolling deploy the previous release's code keeps running against
//! the migrated schema. An *expand* change (new table, index, view, trigger,
//! nullable or defaulted column) is invisible to that code. A *contract*
//! change removes or reshapes something it still uses. Contract changes ship
//! in their own migration, once no running code needs the old shape, and say
//! so with a marker comment giving the reason:
//!
//! ```sql
//! -- contract: column `legacy_note` unused since 0.3.0
//! ```
//!
//! [`RULES`] is the one list of what counts as a contract change and why;
//! `docs/migrations.md` shows it to people.

use crate::{history::MigrationFile, history::sql_text};

/// A contract rule: its id, what it matches, why it breaks old code.
pub struct Rule {
    pub id: &'static str,
    pub matches: &'static str,
    pub why: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "drop-table",
        matches: "DROP TABLE",
        why: "code of the previous release still reads and writes the table",
    },
    Rule {
        id: "drop-column",
        matches: "ALTER TABLE … DROP COLUMN",
        why: "code of the previous release still selects or inserts the column",
    },
    Rule {
        id: "rename-table",
        matches: "ALTER TABLE … RENAME TO",
        why: "code of the previous release still uses the old table name",
    },
    Rule {
        id: "rename-column",
        matches: "ALTER TABLE … RENAME [COLUMN] … TO",
        why: "code of the previous release still uses the old column name",
    },
    Rule {
        id: "drop-index",
        matches: "DROP INDEX",
        why: "queries of the previous release may depend on it for speed or uniqueness",
    },
    Rule {
        id: "drop-view-or-trigger",
        matches: "DROP VIEW, DROP TRIGGER",
        why: "code of the previous release may read the view or rely on the trigger's effect",
    },
    Rule {
        id: "add-not-null-column",
        matches: "ALTER TABLE … ADD COLUMN … NOT NULL without DEFAULT",
        why: "inserts by the previous release do not set the new column and fail",
    },
    Rule {
        id: "table-rebuild",
        matches: "CREATE TABLE x_new, copy, DROP TABLE x, ALTER TABLE x_new RENAME TO x (SQLite's way to change a type, constraint or key)",
        why: "the table is replaced: writes by the previous release during the copy are lost, and changed types or constraints can reject its writes",
    },
    Rule {
        id: "mixed-file",
        matches: "expand and contract statements in one migration",
        why: "expand must run before the new code rolls out and contract after the old code is gone; one file cannot do both",
    },
];

/// One finding: where, what, which rule and why.
#[derive(Debug, Clone)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub statement: String,
    pub rule: &'static str,
    pub why: &'static str,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` — {} breaks zero-downtime deploys: {}",
            self.file, self.line, self.statement, self.rule, self.why
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Expand,
    Contract(&'static str),
    Neutral,
}

/// The marker that allows contract statements in a file, with its reason.
pub fn contract_reason(file: &MigrationFile) -> Option<String> {
    let (_, comments) = sql_text::split(&file.sql);
    comments.iter().find_map(|c| {
        let rest = c.text.strip_prefix("contract:")?.trim();
        (!rest.is_empty()).then(|| rest.to_owned())
    })
}

/// The lint's findings for one file; empty when it is fine.
pub fn lint(file: &MigrationFile) -> Vec<Finding> {
    let (statements, _) = sql_text::split(&file.sql);
    let classes = classify(&statements);
    let path = file.path.display().to_string();
    let finding = |index: usize, rule: &'static str| Finding {
        file: path.clone(),
        line: statements[index].line,
        statement: shorten(&statements[index].text),
        rule,
        why: RULES.iter().find(|r| r.id == rule).map_or("", |r| r.why),
    };
    let mut findings = Vec::new();
    let first_expand = classes.iter().position(|c| *c == Class::Expand);
    let first_contract = classes.iter().position(|c| matches!(c, Class::Contract(_)));
    if let (Some(_), Some(contract)) = (first_expand, first_contract) {
        findings.push(finding(contract, "mixed-file"));
    }
    if contract_reason(file).is_none() {
        let mut reported_rebuild = false;
        for (index, class) in classes.iter().enumerate() {
            if let Class::Contract(rule) = class {
                if *rule == "table-rebuild" {
                    if reported_rebuild {
                        continue;
                    }
                    reported_rebuild = true;
                }
                findings.push(finding(index, rule));
            }
        }
    }
    findings
}

/// [`RULES`] as a Markdown table: `cargo xtask migrations rules` prints it
/// and docs/migrations.md carries it (a test keeps the two in step).
pub fn rules_markdown() -> String {
    let mut out =
        String::from("| rule | matches | why it breaks a rolling deploy |\n| --- | --- | --- |\n");
    for rule in RULES {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            rule.id, rule.matches, rule.why
        ));
    }
    out
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 80 {
        return text.to_owned();
    }
    format!("{}…", text.chars().take(79).collect::<String>())
}

fn classify(statements: &[sql_text::Statement]) -> Vec<Class> {
    let words: Vec<Vec<String>> = statements.iter().map(sql_text::Statement::words).collect();
    let rebuilt = rebuilds(&words);
    words
        .iter()
        .map(|w| {
            if rebuilt
                .iter()
                .any(|(temp, table)| touches_rebuild(w, temp, table))
            {
                return Class::Contract("table-rebuild");
            }
            classify_one(w)
        })
        .collect()
}

/// (temporary table, rebuilt table) for each `ALTER TABLE tmp RENAME TO t`
/// where the file also creates `tmp` and drops `t`.
fn rebuilds(words: &[Vec<String>]) -> Vec<(String, String)> {
    words
        .iter()
        .filter_map(|w| match w.as_slice() {
            [alter, table, temp, rename, to, target, ..]
                if alter == "ALTER" && table == "TABLE" && rename == "RENAME" && to == "TO" =>
            {
                Some((temp.clone(), target.clone()))
            }
            _ => None,
        })
        .filter(|(temp, target)| {
            words
                .iter()
                .any(|w| created_table(w).as_deref() == Some(temp))
                && words.iter().any(|w| {
                    dropped(w).is_some_and(|(kind, name)| kind == "TABLE" && name == *target)
                })
        })
        .collect()
}

/// Statements that belong to the rebuild of `table` through `temp`.
fn touches_rebuild(w: &[String], temp: &str, table: &str) -> bool {
    created_table(w).as_deref() == Some(temp)
        || (w.first().is_some_and(|s| s == "INSERT") && w.iter().any(|x| x == temp))
        || dropped(w).is_some_and(|(kind, name)| kind == "TABLE" && name == table)
        || (w.first().is_some_and(|s| s == "ALTER") && w.get(2).is_some_and(|x| x == temp))
        || (w.first().is_some_and(|s| s == "CREATE")
            && w.contains(&"INDEX".to_owned())
            && index_table(w).as_deref() == Some(table))
}

fn skip_if_exists(w: &[String], at: usize) -> usize {
    match w.get(at..at + 3) {
        Some([a, b, c]) if a == "IF" && b == "NOT" && c == "EXISTS" => at + 3,
        _ => match w.get(at..at + 2) {
            Some([a, b]) if a == "IF" && b == "EXISTS" => at + 2,
            _ => at,
        },
    }
}

fn created_table(w: &[String]) -> Option<String> {
    if w.first()? != "CREATE" {
        return None;
    }
    let at = w.iter().position(|x| x == "TABLE").filter(|&i| i <= 2)?;
    w.get(skip_if_exists(w, at + 1)).cloned()
}

fn dropped(w: &[String]) -> Option<(String, String)> {
    if w.first()? != "DROP" {
        return None;
    }
    let kind = w.get(1)?.clone();
    Some((kind, w.get(skip_if_exists(w, 2))?.clone()))
}

fn index_table(w: &[String]) -> Option<String> {
    let on = w.iter().position(|x| x == "ON")?;
    w.get(on + 1).cloned()
}

fn classify_one(w: &[String]) -> Class {
    let first = w.first().map(String::as_str).unwrap_or_default();
    match first {
        "CREATE" => Class::Expand,
        "DROP" => match w.get(1).map(String::as_str) {
            Some("TABLE") => Class::Contract("drop-table"),
            Some("INDEX") => Class::Contract("drop-index"),
            _ => Class::Contract("drop-view-or-trigger"),
        },
        "ALTER" => classify_alter(w),
        _ => Class::Neutral,
    }
}

/// `ALTER TABLE t <action> …`.
fn classify_alter(w: &[String]) -> Class {
    let action: Vec<&str> = w.iter().skip(3).map(String::as_str).collect();
    match action.as_slice() {
        ["RENAME", "TO", ..] => Class::Contract("rename-table"),
        ["RENAME", ..] => Class::Contract("rename-column"),
        ["DROP", ..] => Class::Contract("drop-column"),
        ["ADD", rest @ ..] => {
            let not_null = rest.windows(2).any(|p| p == ["NOT", "NULL"]);
            if not_null && !rest.contains(&"DEFAULT") {
                Class::Contract("add-not-null-column")
            } else {
                Class::Expand
            }
        }
        _ => Class::Neutral,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(sql: &str) -> MigrationFile {
        MigrationFile {
            version: 9,
            name: "x".into(),
            path: "V9__x.sql".into(),
            sql: sql.into(),
        }
    }

    fn rules(sql: &str) -> Vec<&'static str> {
        lint(&file(sql)).iter().map(|f| f.rule).collect()
    }

    #[test]
    fn docs_carry_the_rule_table() {
        let docs = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/migrations.md"
        ))
        .unwrap();
        assert!(
            docs.contains(&rules_markdown()),
            "docs/migrations.md is out of date: paste the output of `cargo xtask migrations rules` into it"
        );
    }

    #[test]
    fn expand_changes_pass() {
        for sql in [
            "CREATE TABLE t (id INTEGER PRIMARY KEY);",
            "CREATE INDEX i ON t (x);",
            "ALTER TABLE t ADD COLUMN c TEXT;",
            "ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT 'x';",
            "CREATE VIEW v AS SELECT 1; UPDATE t SET c = 'x';",
        ] {
            assert_eq!(rules(sql), Vec::<&str>::new(), "{sql}");
        }
    }

    #[test]
    fn each_contract_rule_fires_without_a_marker() {
        let cases = [
            ("DROP TABLE t;", "drop-table"),
            ("DROP TABLE IF EXISTS t;", "drop-table"),
            ("ALTER TABLE t DROP COLUMN c;", "drop-column"),
            ("ALTER TABLE t RENAME TO u;", "rename-table"),
            ("ALTER TABLE t RENAME COLUMN a TO b;", "rename-column"),
            ("ALTER TABLE t RENAME a TO b;", "rename-column"),
            ("DROP INDEX i;", "drop-index"),
            ("DROP VIEW v;", "drop-view-or-trigger"),
            ("DROP TRIGGER g;", "drop-view-or-trigger"),
            (
                "ALTER TABLE t ADD COLUMN c TEXT NOT NULL;",
                "add-not-null-column",
            ),
        ];
        for (sql, rule) in cases {
            assert_eq!(rules(sql), [rule], "{sql}");
            let finding = &lint(&file(&format!("\n\n{sql}")))[0];
            assert_eq!(finding.line, 3);
            assert!(finding.to_string().contains("V9__x.sql:3:"), "{finding}");
        }
    }

    #[test]
    fn a_table_rebuild_is_one_contract_finding_not_a_mixed_file() {
        let sql = "CREATE TABLE t_new (id INTEGER PRIMARY KEY, x TEXT NOT NULL);\n\
                   INSERT INTO t_new SELECT id, x FROM t;\nDROP TABLE t;\n\
                   ALTER TABLE t_new RENAME TO t;\nCREATE INDEX t_x ON t (x);\n";
        assert_eq!(rules(sql), ["table-rebuild"]);
        assert_eq!(
            rules(&format!(
                "-- contract: x becomes NOT NULL, unused by 0.2\n{sql}"
            )),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_marker_needs_a_reason_and_does_not_excuse_mixing() {
        assert_eq!(rules("-- contract:\nDROP TABLE t;"), ["drop-table"]);
        assert_eq!(
            rules("-- contract: gone since 0.3\nDROP TABLE t;"),
            Vec::<&str>::new()
        );
        assert_eq!(
            rules("-- contract: gone\nCREATE TABLE u (x);\nDROP TABLE t;"),
            ["mixed-file"]
        );
        assert_eq!(
            rules("CREATE TABLE u (x);\nDROP TABLE t;"),
            ["mixed-file", "drop-table"]
        );
    }
}
