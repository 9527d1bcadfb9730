//! Table names as the engine resolves them, and the other tables a
//! statement links a table with (partitions, parents).

use sqlparser::ast::{AlterTableOperation as Action, CreateTable, ObjectName, RenameTableNameKind};

use crate::history::Engine;

/// The table's name as the engine resolves it: `schema.name`, the default
/// schema when unqualified; Postgres folds unquoted names to lower case and
/// keeps quoted ones, SQLite compares every name case-insensitively.
pub fn key(name: &ObjectName, engine: Engine) -> String {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) if ident.quote_style.is_some() && engine == Engine::Postgres => {
                ident.value.clone()
            }
            Some(ident) => ident.value.to_lowercase(),
            None => part.to_string(),
        })
        .collect();
    match parts.as_slice() {
        [table] => format!("{}.{table}", default_schema(engine)),
        _ => parts.join("."),
    }
}

pub fn default_schema(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "main",
        Engine::Postgres => "public",
    }
}

/// `ALTER TABLE s.t RENAME TO u` keeps the table in `s`.
pub fn renamed_key(from: &ObjectName, to: &ObjectName, engine: Engine) -> String {
    let to_key = key(to, engine);
    match (to.0.len(), key(from, engine).rsplit_once('.')) {
        (1, Some((schema, _))) => {
            let table = to_key.rsplit_once('.').map_or(to_key.as_str(), |(_, t)| t);
            format!("{schema}.{table}")
        }
        _ => to_key,
    }
}

/// The tables a `CREATE TABLE` attaches to as a partition or a child.
pub fn parents(create: &CreateTable) -> impl Iterator<Item = &ObjectName> {
    create
        .partition_of
        .iter()
        .chain(create.inherits.iter().flatten())
}

/// The other table an `ALTER TABLE` action links its table with, so that
/// reads or writes of one reach the other's rows.
pub fn linked_table(action: &Action) -> Option<&ObjectName> {
    match action {
        Action::AttachPartitionOf { partition, .. }
        | Action::DetachPartitionOf { partition, .. } => Some(partition),
        Action::Inherit { parent } | Action::NoInherit { parent } => Some(parent),
        _ => None,
    }
}

pub fn renamed_to(kind: &RenameTableNameKind) -> &ObjectName {
    match kind {
        RenameTableNameKind::As(name) | RenameTableNameKind::To(name) => name,
    }
}
