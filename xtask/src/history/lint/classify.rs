//! What each parsed statement does to a rolling deploy: one [`Class`] per
//! statement, or per action of a multi-action `ALTER TABLE`.
//!
//! Tables created earlier in the same file are new: nothing reads them yet
//! and they are empty, so the locking rules do not apply to them. Every
//! other table (one of an earlier migration, or one the history does not
//! show) counts as existing, which is the safe assumption.

use std::collections::BTreeSet;

use sqlparser::{
    ast::{
        AlterColumnOperation as Column, AlterTableOperation as Action, ColumnDef, ColumnOption,
        CreateIndex, Expr, ObjectName, ObjectType, RenameTableNameKind, Statement, TableConstraint,
        TableObject,
    },
    dialect::PostgreSqlDialect,
    tokenizer::{Token, Tokenizer},
};

use super::parse::Parsed;
use crate::history::Engine;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Invisible to the previous release: new tables, indexes, columns.
    Expand,
    /// Changes data or metadata only (INSERT, UPDATE, VALIDATE CONSTRAINT).
    Neutral,
    /// Matches the rule of this id.
    Rule(&'static str),
    /// The lint cannot tell; the text says why.
    Unknown(String),
}

/// Every statement's classes, in order.
pub fn classify(statements: &[Parsed], engine: Engine) -> Vec<Vec<Class>> {
    let asts: Vec<&Statement> = statements
        .iter()
        .filter_map(|p| p.ast.as_ref().ok())
        .collect();
    let rebuilds = rebuilds(&asts);
    let mut new_tables = BTreeSet::new();
    statements
        .iter()
        .map(|parsed| {
            let statement = match &parsed.ast {
                Ok(statement) => statement,
                Err(e) => {
                    return vec![Class::Unknown(format!(
                        "the {} parser cannot read it ({e})",
                        engine_name(engine)
                    ))];
                }
            };
            let classes = if rebuilds.iter().any(|r| r.touches(statement)) {
                vec![Class::Rule("table-rebuild")]
            } else {
                statement_classes(statement, engine, &new_tables)
            };
            track_new_tables(statement, &mut new_tables);
            classes
        })
        .collect()
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "SQLite",
        Engine::Postgres => "Postgres",
    }
}

/// The table's name without its schema, lower-cased: `public.Secrets`,
/// `main.secrets` and `"secrets"` are one table.
fn key(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map_or_else(|| name.to_string(), |ident| ident.value.to_lowercase())
}

fn track_new_tables(statement: &Statement, new_tables: &mut BTreeSet<String>) {
    match statement {
        Statement::CreateTable(create) => {
            new_tables.insert(key(&create.name));
        }
        Statement::AlterTable(alter) if new_tables.contains(&key(&alter.name)) => {
            for action in &alter.operations {
                if let Action::RenameTable { table_name } = action {
                    new_tables.insert(key(renamed_to(table_name)));
                }
            }
        }
        _ => {}
    }
}

fn renamed_to(kind: &RenameTableNameKind) -> &ObjectName {
    match kind {
        RenameTableNameKind::As(name) | RenameTableNameKind::To(name) => name,
    }
}

fn statement_classes(s: &Statement, engine: Engine, new: &BTreeSet<String>) -> Vec<Class> {
    let one = match s {
        Statement::AlterTable(alter) if new.contains(&key(&alter.name)) => Class::Expand,
        Statement::AlterTable(alter) => {
            return alter.operations.iter().map(|a| action(a, engine)).collect();
        }
        Statement::CreateIndex(index) => create_index(index, engine, new),
        Statement::Drop {
            object_type, names, ..
        } => drop(*object_type, names, new),
        Statement::Truncate(truncate)
            if truncate
                .table_names
                .iter()
                .all(|t| new.contains(&key(&t.name))) =>
        {
            Class::Neutral
        }
        Statement::Truncate(_) => Class::Rule("truncate"),
        Statement::DropTrigger(_) => Class::Rule("drop-view-or-trigger"),
        Statement::CreateTable(create) if !create.or_replace => Class::Expand,
        Statement::CreateView(view) if !view.or_replace && !view.or_alter => Class::Expand,
        Statement::CreateTrigger(trigger) if !trigger.or_replace && !trigger.or_alter => {
            Class::Expand
        }
        Statement::CreateFunction(function) if !function.or_replace && !function.or_alter => {
            Class::Expand
        }
        Statement::CreateSequence { .. }
        | Statement::CreateSchema { .. }
        | Statement::CreateType { .. }
        | Statement::CreateExtension(_) => Class::Expand,
        // `SET lock_timeout = …` and the like: the session, not the schema.
        Statement::Set(_) => Class::Neutral,
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Query(_)
        | Statement::Comment { .. } => Class::Neutral,
        _ => Class::Unknown("the lint does not classify this kind of statement".into()),
    };
    vec![one]
}

fn create_index(index: &CreateIndex, engine: Engine, new: &BTreeSet<String>) -> Class {
    let existing = !new.contains(&key(&index.table_name));
    if engine == Engine::Postgres && existing && !index.concurrently {
        Class::Rule("create-index-not-concurrently")
    } else {
        Class::Expand
    }
}

fn drop(kind: ObjectType, names: &[ObjectName], new: &BTreeSet<String>) -> Class {
    match kind {
        ObjectType::Table if names.iter().all(|n| new.contains(&key(n))) => Class::Neutral,
        ObjectType::Table => Class::Rule("drop-table"),
        ObjectType::Index => Class::Rule("drop-index"),
        ObjectType::View | ObjectType::MaterializedView => Class::Rule("drop-view-or-trigger"),
        other => Class::Unknown(format!("the lint does not classify DROP {other}")),
    }
}

/// One action of an `ALTER TABLE` on an existing table.
fn action(action: &Action, engine: Engine) -> Class {
    match action {
        Action::AddColumn { column_def, .. } => add_column(column_def, engine),
        Action::AddConstraint {
            constraint,
            not_valid,
        } => add_constraint(constraint, *not_valid, engine),
        Action::DropColumn { .. } => Class::Rule("drop-column"),
        Action::RenameColumn { .. } => Class::Rule("rename-column"),
        Action::RenameTable { .. } => Class::Rule("rename-table"),
        Action::AlterColumn { op, .. } => match op {
            Column::SetNotNull => Class::Rule("set-not-null"),
            Column::SetDataType { .. } => Class::Rule("alter-column-type"),
            // Loosening, or a default for future inserts only: metadata.
            Column::DropNotNull | Column::SetDefault { .. } => Class::Expand,
            other => Class::Unknown(format!("the lint does not classify ALTER COLUMN … {other}")),
        },
        // Takes a lock that lets reads and writes go on.
        Action::ValidateConstraint { .. } => Class::Neutral,
        other => Class::Unknown(format!("the lint does not classify the action `{other}`")),
    }
}

fn add_column(column: &ColumnDef, engine: Engine) -> Class {
    let options = || column.options.iter().map(|o| &o.option);
    let has_default = options().any(|o| matches!(o, ColumnOption::Default(_)));
    let generated = options().any(|o| {
        matches!(
            o,
            ColumnOption::Generated { .. } | ColumnOption::Identity(_)
        )
    });
    if options().any(|o| matches!(o, ColumnOption::NotNull)) && !has_default && !generated {
        return Class::Rule("add-not-null-column");
    }
    if engine == Engine::Sqlite {
        return Class::Expand;
    }
    let volatile = options().any(|o| matches!(o, ColumnOption::Default(e) if calls_volatile(e)));
    let serial = column
        .data_type
        .to_string()
        .to_lowercase()
        .contains("serial");
    if volatile || generated || serial {
        Class::Rule("add-column-volatile-default")
    } else if options().any(|o| matches!(o, ColumnOption::Unique(_) | ColumnOption::PrimaryKey(_)))
    {
        Class::Rule("add-unique-constraint")
    } else {
        Class::Expand
    }
}

fn add_constraint(constraint: &TableConstraint, not_valid: bool, engine: Engine) -> Class {
    if engine == Engine::Sqlite {
        return Class::Unknown("SQLite has no ALTER TABLE … ADD CONSTRAINT".into());
    }
    match constraint {
        TableConstraint::Check(_) | TableConstraint::ForeignKey(_) if not_valid => Class::Expand,
        TableConstraint::Check(_) | TableConstraint::ForeignKey(_) => {
            Class::Rule("add-constraint-not-valid")
        }
        TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_) => {
            Class::Rule("add-unique-constraint")
        }
        other => Class::Unknown(format!("the lint does not classify ADD {other}")),
    }
}

/// Functions whose value is fixed for the transaction: Postgres stores such
/// a default once, without rewriting the table.
const STABLE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_timestamp",
    "current_date",
    "localtimestamp",
    "cast",
];

/// The expression calls a function other than [`STABLE`] ones (a type
/// after `::` or `AS` is not a call). Unreadable counts as volatile.
fn calls_volatile(expr: &Expr) -> bool {
    let text = expr.to_string();
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, &text).tokenize() else {
        return true;
    };
    let tokens: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    tokens.iter().enumerate().any(|(i, token)| {
        let Token::Word(word) = token else {
            return false;
        };
        let called = tokens.get(i + 1) == Some(&&Token::LParen);
        let a_type = i.checked_sub(1).is_some_and(|before| match tokens[before] {
            Token::DoubleColon => true,
            Token::Word(w) => w.value.eq_ignore_ascii_case("as"),
            _ => false,
        });
        called && !a_type && !STABLE.contains(&word.value.to_lowercase().as_str())
    })
}

/// SQLite's table rebuild: `CREATE TABLE temp`, copy, `DROP TABLE table`,
/// `ALTER TABLE temp RENAME TO table`, recreate the indexes.
struct Rebuild {
    temp: String,
    table: String,
}

fn rebuilds(asts: &[&Statement]) -> Vec<Rebuild> {
    let created = |name: &str| {
        asts.iter()
            .any(|s| matches!(s, Statement::CreateTable(c) if key(&c.name) == name))
    };
    let dropped = |name: &str| {
        asts.iter().any(|s| {
            matches!(s, Statement::Drop { object_type: ObjectType::Table, names, .. }
                if names.iter().any(|n| key(n) == name))
        })
    };
    asts.iter()
        .filter_map(|s| match s {
            Statement::AlterTable(alter) => match alter.operations.as_slice() {
                [Action::RenameTable { table_name }] => Some(Rebuild {
                    temp: key(&alter.name),
                    table: key(renamed_to(table_name)),
                }),
                _ => None,
            },
            _ => None,
        })
        .filter(|r| created(&r.temp) && dropped(&r.table))
        .collect()
}

impl Rebuild {
    fn touches(&self, statement: &Statement) -> bool {
        match statement {
            Statement::CreateTable(create) => key(&create.name) == self.temp,
            Statement::Insert(insert) => {
                matches!(&insert.table, TableObject::TableName(name) if key(name) == self.temp)
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => names.iter().any(|n| key(n) == self.table),
            Statement::AlterTable(alter) => key(&alter.name) == self.temp,
            Statement::CreateIndex(index) => key(&index.table_name) == self.table,
            _ => false,
        }
    }
}
