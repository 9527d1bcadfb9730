//! What each parsed statement does to a rolling deploy: one [`Class`] per
//! statement, or per action of a multi-action `ALTER TABLE`.
//!
//! Tables created earlier in the same file by a plain `CREATE TABLE` (not
//! IF NOT EXISTS, not TEMP) are new: nothing reads them yet and they are
//! empty, so the rules do not apply to them. Names are compared as the
//! engine resolves them (schema included, quoted case kept on Postgres).
//! Every other table counts as existing, which is the safe assumption; and
//! a statement the lint does not positively know to be safe needs a marker.

use std::collections::BTreeSet;

use sqlparser::{
    ast::{
        AlterColumnOperation as Column, AlterTableOperation as Action, ColumnDef, ColumnOption,
        CreateIndex, ObjectName, ObjectType, SetExpr, Statement, TableConstraint, TableFactor,
        TableObject, TableWithJoins,
    },
    keywords::Keyword,
};

use super::{
    calls::{PURE, STABLE, first_call_outside, has_keyword, has_locking_clause},
    names::{key, linked_table, parents, renamed_key, renamed_to},
    parse::Parsed,
};
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
    let rebuilds = rebuilds(&asts, engine);
    let mut new_tables = BTreeSet::new();
    statements
        .iter()
        .map(|parsed| {
            let statement = match &parsed.ast {
                Ok(statement) => statement,
                Err(e) => {
                    let mut classes = vec![Class::Unknown(format!(
                        "the {} parser cannot read it ({e})",
                        engine_name(engine)
                    ))];
                    if has_locking_clause(&parsed.text, engine) {
                        classes.push(Class::Rule("row-lock"));
                    }
                    return classes;
                }
            };
            let classes = if rebuilds.iter().any(|r| r.touches(statement)) {
                vec![Class::Rule("table-rebuild")]
            } else {
                let classes = statement_classes(statement, &parsed.text, engine, &new_tables);
                with_row_locks(classes, statement, &parsed.text, engine)
            };
            track_new_tables(statement, engine, &mut new_tables);
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

fn track_new_tables(statement: &Statement, engine: Engine, new_tables: &mut BTreeSet<String>) {
    match statement {
        Statement::CreateTable(create)
            if !create.if_not_exists
                && !create.temporary
                && !create.or_replace
                && parents(create).all(|p| new_tables.contains(&key(p, engine))) =>
        {
            new_tables.insert(key(&create.name, engine));
        }
        Statement::AlterTable(alter) if new_tables.contains(&key(&alter.name, engine)) => {
            let is_new = |name: &ObjectName| new_tables.contains(&key(name, engine));
            // A partition or parent that is not new makes the table reach
            // its rows: from here on it is existing too.
            let reaches_existing = alter
                .operations
                .iter()
                .any(|a| linked_table(a).is_some_and(|other| !is_new(other)));
            if reaches_existing {
                new_tables.remove(&key(&alter.name, engine));
                return;
            }
            for action in &alter.operations {
                if let Action::RenameTable { table_name } = action {
                    new_tables.insert(renamed_key(&alter.name, renamed_to(table_name), engine));
                }
            }
        }
        _ => {}
    }
}

/// A locking clause in a statement that reads rows locks them until the
/// migration commits, whatever else the statement does.
fn with_row_locks(classes: Vec<Class>, s: &Statement, text: &str, engine: Engine) -> Vec<Class> {
    let reads_rows = matches!(
        s,
        Statement::Query(_)
            | Statement::CreateTable(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Merge(_)
    );
    if !reads_rows || !has_locking_clause(text, engine) {
        return classes;
    }
    let mut classes: Vec<Class> = classes
        .into_iter()
        .filter(|c| !matches!(c, Class::Expand | Class::Neutral))
        .collect();
    classes.push(Class::Rule("row-lock"));
    classes
}

fn statement_classes(
    s: &Statement,
    text: &str,
    engine: Engine,
    new: &BTreeSet<String>,
) -> Vec<Class> {
    let is_new = |name: &ObjectName| new.contains(&key(name, engine));
    let one = match s {
        Statement::AlterTable(alter) if is_new(&alter.name) => {
            return alter
                .operations
                .iter()
                .map(|a| match linked_table(a) {
                    Some(other) if !is_new(other) => Class::Rule("partition-or-inherit"),
                    _ => Class::Expand,
                })
                .collect();
        }
        Statement::AlterTable(alter) => {
            return alter.operations.iter().map(|a| action(a, engine)).collect();
        }
        Statement::CreateIndex(index) => return create_index(index, engine, new),
        Statement::Drop {
            object_type, names, ..
        } => drop(*object_type, names, engine, new),
        Statement::Truncate(truncate) if truncate.table_names.iter().all(|t| is_new(&t.name)) => {
            Class::Neutral
        }
        Statement::Truncate(_) => Class::Rule("truncate"),
        Statement::DropTrigger(_) => Class::Rule("drop-view-or-trigger"),
        Statement::CreateTable(create) if parents(create).any(|p| !is_new(p)) => {
            Class::Rule("partition-or-inherit")
        }
        // CREATE TABLE … AS runs its query: judged like the query alone.
        Statement::CreateTable(create) if !create.or_replace => match &create.query {
            Some(query) => match query_class(&query.to_string(), engine) {
                Class::Neutral => Class::Expand,
                other => other,
            },
            None => Class::Expand,
        },
        Statement::CreateView(view) if !view.or_replace && !view.or_alter => Class::Expand,
        Statement::CreateTrigger(_) | Statement::CreateRule(_) => Class::Rule("create-trigger"),
        Statement::CreateFunction(_)
        | Statement::CreateProcedure { .. }
        | Statement::Call(_)
        | Statement::CreateExtension(_) => Class::Rule("runs-code"),
        Statement::CreateSchema { .. } => Class::Rule("create-schema"),
        Statement::CreateSequence { .. } | Statement::CreateType { .. } => Class::Expand,
        Statement::Set(_) | Statement::Reset(_) => Class::Rule("session-setting"),
        Statement::Insert(insert) if upsert_on_existing(insert, &is_new) => {
            Class::Rule("data-change")
        }
        Statement::Insert(insert) => insert_class(insert, engine),
        // Rows of a table this file created: nothing reads them yet.
        Statement::Update(update) if dml_on_new(std::slice::from_ref(&update.table), &is_new) => {
            calls_class(text, engine)
        }
        Statement::Delete(delete) if delete_on_new(delete, &is_new) => calls_class(text, engine),
        Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_) => {
            Class::Rule("data-change")
        }
        Statement::Query(_) => query_class(text, engine),
        Statement::Comment { .. } => Class::Neutral,
        _ => Class::Unknown("the lint does not classify this kind of statement".into()),
    };
    vec![one]
}

/// An INSERT that rewrites the rows it collides with (ON CONFLICT … DO
/// UPDATE, SQLite's INSERT OR REPLACE, REPLACE INTO) into a table this
/// file did not create.
fn upsert_on_existing(
    insert: &sqlparser::ast::Insert,
    is_new: &dyn Fn(&ObjectName) -> bool,
) -> bool {
    use sqlparser::ast::{OnConflictAction, OnInsert, SqliteOnConflict};
    let rewrites = insert.replace_into
        || insert.or == Some(SqliteOnConflict::Replace)
        || matches!(
            &insert.on,
            Some(OnInsert::DuplicateKeyUpdate(_))
                | Some(OnInsert::OnConflict(sqlparser::ast::OnConflict {
                    action: OnConflictAction::DoUpdate(_),
                    ..
                }))
        );
    let on_new = matches!(&insert.table, TableObject::TableName(name) if is_new(name));
    rewrites && !on_new
}

/// Rows written from a query (INSERT … SELECT) copy or derive data of
/// existing tables; VALUES only add rows the previous release ignores.
fn insert_class(insert: &sqlparser::ast::Insert, engine: Engine) -> Class {
    match &insert.source {
        Some(q) if q.with.is_none() && matches!(*q.body, SetExpr::Values(_)) => {
            query_class(&q.to_string(), engine)
        }
        Some(_) => Class::Rule("data-change"),
        None => Class::Neutral,
    }
}

/// A query changes nothing unless it hides DML in a WITH, changes a
/// setting, or calls a function the lint does not know to be pure.
fn query_class(text: &str, engine: Engine) -> Class {
    let dml = [
        Keyword::DELETE,
        Keyword::UPDATE,
        Keyword::INSERT,
        Keyword::MERGE,
    ];
    if has_keyword(text, &dml, engine) {
        return Class::Rule("data-change");
    }
    calls_class(text, engine)
}

/// A statement calling only known-pure functions is neutral.
fn calls_class(text: &str, engine: Engine) -> Class {
    match first_call_outside(text, PURE, engine) {
        Some(name) if name.ends_with("set_config") => Class::Rule("session-setting"),
        Some(_) => Class::Rule("runs-code"),
        None => Class::Neutral,
    }
}

fn dml_on_new(tables: &[TableWithJoins], is_new: &dyn Fn(&ObjectName) -> bool) -> bool {
    tables.iter().all(|t| {
        t.joins.is_empty() && matches!(&t.relation, TableFactor::Table { name, .. } if is_new(name))
    })
}

fn delete_on_new(delete: &sqlparser::ast::Delete, is_new: &dyn Fn(&ObjectName) -> bool) -> bool {
    let from = match &delete.from {
        sqlparser::ast::FromTable::WithFromKeyword(t)
        | sqlparser::ast::FromTable::WithoutKeyword(t) => t,
    };
    delete.tables.is_empty() && delete.using.is_none() && dml_on_new(from, is_new)
}

/// A unique index on an existing table refuses the previous release's
/// duplicate writes (contract), and without CONCURRENTLY blocks writes.
fn create_index(index: &CreateIndex, engine: Engine, new: &BTreeSet<String>) -> Vec<Class> {
    if new.contains(&key(&index.table_name, engine)) {
        return vec![Class::Expand];
    }
    let mut classes = Vec::new();
    if engine == Engine::Postgres && !index.concurrently {
        classes.push(Class::Rule("create-index-not-concurrently"));
    }
    if index.unique {
        classes.push(Class::Rule("tighten-constraint"));
    }
    if classes.is_empty() {
        classes.push(Class::Expand);
    }
    classes
}

fn drop(kind: ObjectType, names: &[ObjectName], engine: Engine, new: &BTreeSet<String>) -> Class {
    match kind {
        ObjectType::Table if names.iter().all(|n| new.contains(&key(n, engine))) => Class::Neutral,
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
        Action::AttachPartitionOf { .. }
        | Action::DetachPartitionOf { .. }
        | Action::Inherit { .. }
        | Action::NoInherit { .. } => Class::Rule("partition-or-inherit"),
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
    // A foreign key locks the referenced table; a CHECK scans every row.
    if options().any(|o| matches!(o, ColumnOption::ForeignKey(_) | ColumnOption::Check(_))) {
        return Class::Rule("add-constraint-not-valid");
    }
    let volatile = options().any(|o| {
        matches!(o, ColumnOption::Default(e)
            if first_call_outside(&e.to_string(), STABLE, engine).is_some())
    });
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
        // NOT VALID skips the scan, but new writes of the previous release
        // that break the constraint fail from now on.
        TableConstraint::Check(_) | TableConstraint::ForeignKey(_) if not_valid => {
            Class::Rule("tighten-constraint")
        }
        TableConstraint::Check(_) | TableConstraint::ForeignKey(_) => {
            Class::Rule("add-constraint-not-valid")
        }
        TableConstraint::Unique(_) | TableConstraint::PrimaryKey(_) => {
            Class::Rule("add-unique-constraint")
        }
        other => Class::Unknown(format!("the lint does not classify ADD {other}")),
    }
}

/// SQLite's table rebuild: `CREATE TABLE temp`, copy, `DROP TABLE table`,
/// `ALTER TABLE temp RENAME TO table`, recreate the indexes.
struct Rebuild {
    temp: String,
    table: String,
    engine: Engine,
}

fn rebuilds(asts: &[&Statement], engine: Engine) -> Vec<Rebuild> {
    let key = |name: &ObjectName| key(name, engine);
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
                    engine,
                    temp: key(&alter.name),
                    table: renamed_key(&alter.name, renamed_to(table_name), engine),
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
        let key = |name: &ObjectName| key(name, self.engine);
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
