//! The copy itself, in one transaction on the target: version and
//! emptiness checks, every table in foreign-key order through binary COPY,
//! sequences moved past the copied ids, and each table verified.
//! `bench copy` runs it too.

use crate::program::OPS;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use postgres::{Client, Transaction, types::Type};
use rusqlite::{Connection, OpenFlags, types::ValueRef};
use secrets_contract::dburl::PgUrl;

use super::{
    binary::BinaryRows,
    cells::{Cell, convert},
    columns::{Column, check_source_columns, quote, target_columns},
    keys::{defer_keys_and_indexes, recreate, reset_sequences},
    progress::Progress,
    verify::{Checksum, hex, row_digest, target_checksum},
};
use crate::{
    history::{self, Engine},
    pg,
    schema::model as schema_model,
    sqlite,
};

/// Per-table outcome, for the report and the benchmark.
#[derive(Debug, Clone)]
pub struct TableCopy {
    pub table: String,
    pub rows: u64,
    pub checksum: String,
    pub elapsed: Duration,
}

/// The whole copy, in one target transaction; returns what each table got.
pub fn copy(
    source: &std::path::Path,
    target: &PgUrl,
    migrations: &std::path::Path,
    progress: bool,
) -> anyhow::Result<Vec<TableCopy>> {
    let conn = open_source(source)?;
    let mut client = pg::connect(target, "db copy")?;
    check_versions(&conn, &mut client, source, target, migrations)?;
    let tables = tables_in_dependency_order(&conn)?;
    // One read transaction: the whole copy sees one state of the source.
    conn.execute_batch("BEGIN")
        .context("starting a read transaction on the source")?;
    let mut tx = client
        .transaction()
        .context("starting the target's transaction")?;
    refuse_non_empty(&mut tx, &tables)?;
    let schema_before =
        crate::pg::schema::postgres(&mut tx).context("reading the target's schema")?;
    // Keys and indexes are built once after the load instead of row by
    // row, and foreign keys checked in one pass: what makes a bulk load fast.
    let deferred = defer_keys_and_indexes(&mut tx, &tables)?;
    let mut sent = Vec::new();
    for table in &tables {
        let start = Instant::now();
        let columns = target_columns(&mut tx, table)?;
        check_source_columns(&conn, table, &columns)?;
        let (rows, source_sum) = copy_table(&conn, &mut tx, table, &columns, progress)
            .with_context(|| {
                format!("copying table {table} (the target was rolled back: nothing was written)")
            })?;
        sent.push((table, columns, rows, source_sum, start.elapsed()));
    }
    recreate(&mut tx, &deferred)?;
    let schema_after =
        crate::pg::schema::postgres(&mut tx).context("reading the target's schema")?;
    if schema_after != schema_before {
        bail!(
            "the target's keys and indexes did not come back as they were ({}); the target was rolled back",
            schema_model::differences("before", &schema_before, "after", &schema_after).join("; ")
        );
    }
    let mut copied = Vec::new();
    for (table, columns, rows, source_sum, elapsed) in sent {
        let start = Instant::now();
        reset_sequences(&mut tx, table, &columns)?;
        let target_sum = target_checksum(&mut tx, table, &columns)?;
        if source_sum != target_sum || source_sum.0 != rows {
            bail!(
                "table {table}: verification failed — the source's rows: {} with checksum {}; the target's: {} with \
                 checksum {}. The target was rolled back",
                source_sum.0,
                hex(source_sum.1),
                target_sum.0,
                hex(target_sum.1)
            );
        }
        copied.push(TableCopy {
            table: table.clone(),
            rows,
            checksum: hex(source_sum.1),
            elapsed: elapsed + start.elapsed(),
        });
    }
    crate::failpoint::hit("copy-before-commit")?;
    tx.commit().context("committing the copy")?;
    let _ = conn.execute_batch("COMMIT");
    Ok(copied)
}

pub(super) fn open_source(path: &std::path::Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        bail!(
            "source database {} does not exist: check --from",
            path.display()
        );
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {} read-only", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .with_context(|| format!("{} is not a usable SQLite database", path.display()))?;
    Ok(conn)
}

/// Both databases at the same schema version, and both histories matching
/// the migration files (so "same version" means "same schema").
pub(super) fn check_versions(
    conn: &Connection,
    client: &mut Client,
    source: &std::path::Path,
    target: &PgUrl,
    migrations: &std::path::Path,
) -> anyhow::Result<()> {
    let sqlite_files = history::load_for(migrations, Engine::Sqlite)?;
    let pg_files = history::load_for(migrations, Engine::Postgres)?;
    let source_history =
        sqlite::applied_history(conn).context("reading the source's migration history")?;
    let target_history =
        pg::applied_history(client).context("reading the target's migration history")?;
    let source_version = history::compare(source_history, &sqlite_files)
        .and_then(|c| c.refuse_inconsistency().map(|()| c.current))
        .with_context(|| format!("the source {}", source.display()))?;
    let target_version = history::compare(target_history, &pg_files)
        .and_then(|c| c.refuse_inconsistency().map(|()| c.current))
        .with_context(|| format!("the target {target}"))?;
    if source_version == 0 {
        bail!(
            "the source {} has no migrations applied: nothing to copy",
            source.display()
        );
    }
    if source_version != target_version {
        bail!(
            "the source is at schema version {source_version} but the target at {target_version}: migrate both to \
             the same version first (`{OPS} migrate --database-url …` on each; the newest files migrate both \
             to V{}). Nothing was copied",
            sqlite_files.last().map_or(0, |f| f.version)
        );
    }
    Ok(())
}

/// The source's tables (its history table left out), parents before children.
pub(super) fn tables_in_dependency_order(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?1 ORDER BY name",
    )?;
    let names: Vec<String> = stmt
        .query_map([sqlite::HISTORY_TABLE], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in &names {
        let mut stmt =
            conn.prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")?;
        let refs: BTreeSet<String> = stmt
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        parents.insert(
            name.clone(),
            refs.into_iter().filter(|p| p != name).collect(),
        );
    }
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < names.len() {
        let ready: Vec<String> = names
            .iter()
            .filter(|n| !ordered.contains(n))
            .filter(|n| {
                parents[*n]
                    .iter()
                    .all(|p| ordered.contains(p) || !names.contains(p))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            bail!(
                "the foreign keys between {} form a cycle: `db copy` cannot order them",
                names
                    .iter()
                    .filter(|n| !ordered.contains(n))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        ordered.extend(ready);
    }
    Ok(ordered)
}

pub(super) fn refuse_non_empty(tx: &mut Transaction, tables: &[String]) -> anyhow::Result<()> {
    let mut full = Vec::new();
    for table in tables {
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])?
            .get(0);
        if !exists {
            bail!("the target has no table {table}: it is not migrated like the source");
        }
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", quote(table)), &[])?
            .get(0);
        if rows > 0 {
            full.push(format!("{table} ({rows} rows)"));
        }
    }
    if !full.is_empty() {
        bail!(
            "the target is not empty: {}. `db copy` only fills an empty, freshly migrated database — drop and \
             recreate it (`{OPS} migrate --create --database-url …`) and run again. Nothing was copied",
            full.join(", ")
        );
    }
    Ok(())
}

/// Streams the table into `COPY … FROM STDIN (FORMAT binary)`.
pub(super) fn copy_table(
    conn: &Connection,
    tx: &mut Transaction,
    table: &str,
    columns: &[Column],
    progress: bool,
) -> anyhow::Result<(u64, Checksum)> {
    let total: i64 =
        conn.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
            r.get(0)
        })?;
    let total = u64::try_from(total).unwrap_or(0);
    let mut bar = Progress::new(table, total, progress);
    let list = columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let sink = tx
        .copy_in(&format!(
            "COPY {} ({list}) FROM STDIN (FORMAT binary)",
            quote(table)
        ))
        .context("starting COPY")?;
    let types: Vec<Type> = columns.iter().map(|c| c.ty.clone()).collect();
    let mut writer = BinaryRows::new(sink, types);
    // The rowid names a failing row; a WITHOUT ROWID table has none.
    let mut stmt = conn
        .prepare(&format!("SELECT rowid, {list} FROM {}", quote(table)))
        .or_else(|_| conn.prepare(&format!("SELECT NULL, {list} FROM {}", quote(table))))?;
    let mut rows = stmt.query([])?;
    let mut cells: Vec<Cell> = Vec::with_capacity(columns.len());
    let mut sent = 0u64;
    // The source's checksum, over the very values sent.
    let (mut sum, mut buffer) = (0u128, Vec::new());
    while let Some(row) = rows.next()? {
        cells.clear();
        for (i, column) in columns.iter().enumerate() {
            let value = row.get_ref(i + 1)?;
            let cell = convert(value, &column.ty).map_err(|why| {
                anyhow::anyhow!(
                    "row {} (row {} read), column {}: {why}; fix the value in the source, or the column's type",
                    row_label(row),
                    sent + 1,
                    column.name
                )
            })?;
            cells.push(cell);
        }
        sum = sum.wrapping_add(row_digest(&cells, &mut buffer));
        writer
            .write(&cells)
            .map_err(|e| anyhow::anyhow!("row {}: {e}", row_label(row)))?;
        sent += 1;
        bar.tick(sent);
    }
    let written = writer.finish()?;
    bar.done(written);
    Ok((written, (sent, sum)))
}

pub(super) fn row_label(row: &rusqlite::Row<'_>) -> String {
    match row.get_ref(0) {
        Ok(ValueRef::Integer(rowid)) => format!("with rowid {rowid}"),
        _ => "without a rowid".into(),
    }
}
