//! Keys and indexes dropped before the bulk load and rebuilt after it;
//! sequences moved past the copied ids.

use anyhow::Context;
use postgres::Transaction;

use super::columns::{Column, quote};
use crate::pg;

/// What was dropped before the load, to be recreated in this order.
pub(super) struct Deferred {
    /// `ALTER TABLE … ADD CONSTRAINT …` for primary and unique keys.
    keys: Vec<String>,
    /// `CREATE INDEX …` for the plain indexes.
    indexes: Vec<String>,
    /// `ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY …`, validated in bulk.
    foreign_keys: Vec<String>,
}

/// Drops the tables' foreign keys, plain indexes and primary/unique keys
/// (in that order), remembering their exact definitions.
pub(super) fn defer_keys_and_indexes(
    tx: &mut Transaction,
    tables: &[String],
) -> anyhow::Result<Deferred> {
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    let constraints = |tx: &mut Transaction,
                       kinds: &str|
     -> anyhow::Result<Vec<(String, String, String)>> {
        let rows = tx.query(
            &format!(
                "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE contype IN ({kinds}) AND (conrelid = ANY($1::text[]::regclass[]) OR confrelid = ANY($1::text[]::regclass[])) \
                 ORDER BY conrelid, conname"
            ),
            &[&tables],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    };
    let foreign = constraints(tx, "'f'")?;
    let keys = constraints(tx, "'p', 'u'")?;
    let indexes: Vec<(String, String)> = tx
        .query(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i \
             WHERE indrelid = ANY($1::text[]::regclass[]) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            &[&tables],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (table, name, _) in &foreign {
        tx.batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))?;
    }
    for (index, _) in &indexes {
        tx.batch_execute(&format!("DROP INDEX {index}"))?;
    }
    for (table, name, _) in &keys {
        tx.batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))?;
    }
    let add = |list: &[(String, String, String)]| {
        list.iter()
            .map(|(table, name, def)| format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"))
            .collect()
    };
    Ok(Deferred {
        keys: add(&keys),
        indexes: indexes.into_iter().map(|(_, def)| def).collect(),
        foreign_keys: add(&foreign),
    })
}

/// Builds the keys and indexes again, then checks every foreign key in one
/// pass each; a violation names the constraint and the key values.
pub(super) fn recreate(tx: &mut Transaction, deferred: &Deferred) -> anyhow::Result<()> {
    for statement in deferred
        .keys
        .iter()
        .chain(&deferred.indexes)
        .chain(&deferred.foreign_keys)
    {
        tx.batch_execute(statement).map_err(|e| {
            anyhow::anyhow!(
                "rebuilding after the load: `{statement}` failed: {}; the target was rolled back",
                pg::describe(&e)
            )
        })?;
    }
    Ok(())
}

/// Identity and serial columns continue after the largest id copied.
pub(super) fn reset_sequences(
    tx: &mut Transaction,
    table: &str,
    columns: &[Column],
) -> anyhow::Result<()> {
    for column in columns {
        let sequence: Option<String> = tx
            .query_one(
                "SELECT pg_get_serial_sequence($1, $2)",
                &[&quote(table), &column.name],
            )?
            .get(0);
        if let Some(sequence) = sequence {
            tx.query_one(
                &format!(
                    "SELECT setval($1::text::regclass, COALESCE((SELECT MAX({col}) FROM {t}), 0) + 1, false)",
                    col = quote(&column.name),
                    t = quote(table)
                ),
                &[&sequence],
            )
            .with_context(|| format!("resetting the sequence {sequence} of {table}.{}", column.name))?;
        }
    }
    Ok(())
}
