//! NAME
//!     cargo xtask db copy — move the data of a SQLite database into Postgres
//!
//! SYNOPSIS
//!     cargo xtask db copy --from sqlite:///data/secrets.db --to postgres://… [--migrations DIR]
//!
//! DESCRIPTION
//!     Step 3 of the move to Postgres, in a maintenance window (the service
//!     stopped or in maintenance, so the source does not change):
//!       1. refuse unless the target is migrated to the source's version and
//!          every table of it is empty
//!       2. copy every table in foreign-key order with `COPY … FROM STDIN
//!          (FORMAT binary)`, each value converted by the target column's type
//!          (0/1 to boolean, RFC 3339 or `YYYY-MM-DD HH:MM:SS` text to
//!          timestamptz, blobs to bytea, …)
//!       3. move each identity/serial sequence past the largest id copied
//!       4. verify each table: row count, and a content checksum computed the
//!          same way from the rows read back from both databases
//!     All of it is one transaction on the target: any failure (naming the
//!     table, row and column) leaves the target as it was. A progress bar
//!     per table is drawn when stderr is a terminal.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{IsTerminal, Read, Write},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use backend::dburl::{DatabaseUrl, PgUrl};
use postgres::{
    Client, CopyInWriter, CopyOutReader, Transaction,
    types::{FromSql, IsNull, ToSql, Type, private::BytesMut, to_sql_checked},
};
use rusqlite::{Connection, OpenFlags, types::ValueRef};
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime, PrimitiveDateTime, format_description::well_known::Rfc3339};

use crate::{
    engine::pg,
    engine::sqlite,
    flags::DbCopyArgs,
    history::{self, Engine},
    schema::model as schema_model,
};

/// Per-table outcome, for the report and the benchmark.
#[derive(Debug, Clone)]
pub struct TableCopy {
    pub table: String,
    pub rows: u64,
    pub checksum: String,
    pub elapsed: Duration,
}

pub fn run(repo: &std::path::Path, args: &DbCopyArgs) -> anyhow::Result<()> {
    let source = match DatabaseUrl::parse(&args.from)? {
        DatabaseUrl::Sqlite(path) => path,
        DatabaseUrl::Postgres(_) => bail!(
            "--from must be a SQLite database (sqlite:///path): `db copy` moves SQLite data into Postgres"
        ),
    };
    let DatabaseUrl::Postgres(target) = DatabaseUrl::parse(&args.to)? else {
        bail!(
            "--to must be a Postgres database (postgres://user@host/db): `db copy` moves SQLite data into Postgres"
        );
    };
    let migrations = args
        .migrations
        .clone()
        .unwrap_or_else(|| crate::paths::migrations_dir(repo));
    let start = Instant::now();
    let copied = copy(
        &source,
        &target,
        &migrations,
        std::io::stderr().is_terminal(),
    )?;
    let rows: u64 = copied.iter().map(|t| t.rows).sum();
    for table in &copied {
        println!(
            "  {:24} {:>10} rows  checksum {}  {:.2} s",
            table.table,
            table.rows,
            table.checksum,
            table.elapsed.as_secs_f64()
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "copied {rows} rows in {} tables from {} to {target} in {elapsed:.2} s ({:.0} rows/s); \
         row counts and checksums match; committed",
        copied.len(),
        source.display(),
        rows as f64 / elapsed.max(1e-9)
    );
    Ok(())
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
    let schema_before = schema_model::postgres(&mut tx).context("reading the target's schema")?;
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
    let schema_after = schema_model::postgres(&mut tx).context("reading the target's schema")?;
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

fn open_source(path: &std::path::Path) -> anyhow::Result<Connection> {
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
fn check_versions(
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
             the same version first (`cargo xtask migrate --database-url …` on each; the newest files migrate both \
             to V{}). Nothing was copied",
            sqlite_files.last().map_or(0, |f| f.version)
        );
    }
    Ok(())
}

/// The source's tables (its history table left out), parents before children.
fn tables_in_dependency_order(conn: &Connection) -> anyhow::Result<Vec<String>> {
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

fn refuse_non_empty(tx: &mut Transaction, tables: &[String]) -> anyhow::Result<()> {
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
             recreate it (`cargo xtask migrate --create --database-url …`) and run again. Nothing was copied",
            full.join(", ")
        );
    }
    Ok(())
}

/// A target column: its name, type, and whether it is part of the primary key.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    ty: Type,
}

fn target_columns(tx: &mut Transaction, table: &str) -> anyhow::Result<Vec<Column>> {
    let rows = tx.query(
        "SELECT a.attname::text, a.atttypid FROM pg_attribute a \
         WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        &[&table],
    )?;
    rows.iter()
        .map(|r| {
            let name: String = r.get(0);
            let oid: u32 = r.get(1);
            let ty = Type::from_oid(oid).with_context(|| {
                format!("{table}.{name}: a column type (oid {oid}) `db copy` does not know")
            })?;
            Ok(Column { name, ty })
        })
        .collect()
}

fn check_source_columns(conn: &Connection, table: &str, columns: &[Column]) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let source: BTreeSet<String> = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let target: BTreeSet<String> = columns.iter().map(|c| c.name.clone()).collect();
    if source != target {
        bail!(
            "table {table} has columns {:?} in the source but {:?} in the target: the schemas differ \
             (run `cargo xtask migrations check --postgres URL`)",
            source,
            target
        );
    }
    Ok(())
}

/// One value, converted to the target column's type.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Text(String),
    Bytes(Vec<u8>),
    TimestampTz(OffsetDateTime),
    Timestamp(PrimitiveDateTime),
    Date(Date),
    Json(serde_json::Value),
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::I16(v) => v.to_sql(ty, out),
            Cell::I32(v) => v.to_sql(ty, out),
            Cell::I64(v) => v.to_sql(ty, out),
            Cell::F32(v) => v.to_sql(ty, out),
            Cell::F64(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
            Cell::TimestampTz(v) => v.to_sql(ty, out),
            Cell::Timestamp(v) => v.to_sql(ty, out),
            Cell::Date(v) => v.to_sql(ty, out),
            Cell::Json(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Cell {
    /// Bytes that identify the value the same way whichever side it came
    /// from: a tag (NULL or not), then the value, length-prefixed where its
    /// length varies, so no two rows can run into each other.
    fn canonical(&self, out: &mut Vec<u8>) {
        let mut bytes = |b: &[u8]| {
            out.push(1);
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        };
        match self {
            Cell::Null => out.push(0),
            Cell::Bool(v) => bytes(&[u8::from(*v)]),
            Cell::I16(v) => bytes(&i64::from(*v).to_be_bytes()),
            Cell::I32(v) => bytes(&i64::from(*v).to_be_bytes()),
            Cell::I64(v) => bytes(&v.to_be_bytes()),
            Cell::F32(v) => bytes(&v.to_bits().to_be_bytes()),
            Cell::F64(v) => bytes(&v.to_bits().to_be_bytes()),
            Cell::Text(v) => bytes(v.as_bytes()),
            Cell::Bytes(v) => bytes(v),
            Cell::TimestampTz(v) => bytes(&v.unix_timestamp_nanos().to_be_bytes()),
            Cell::Timestamp(v) => bytes(&v.assume_utc().unix_timestamp_nanos().to_be_bytes()),
            Cell::Date(v) => bytes(&v.to_julian_day().to_be_bytes()),
            Cell::Json(v) => bytes(v.to_string().as_bytes()),
        }
    }
}

/// Converts one SQLite value to the target column's type, or says why not.
fn convert(value: ValueRef<'_>, ty: &Type) -> Result<Cell, String> {
    use ValueRef::{Blob, Integer, Null, Real, Text};
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| "text that is not UTF-8".to_owned())
    };
    let cell = match (value, ty) {
        (Null, _) => Cell::Null,
        (Integer(v), &Type::BOOL) if v == 0 || v == 1 => Cell::Bool(v == 1),
        (Text(t), &Type::BOOL) => match t {
            b"1" | b"t" | b"true" | b"TRUE" => Cell::Bool(true),
            b"0" | b"f" | b"false" | b"FALSE" => Cell::Bool(false),
            _ => return Err(format!("`{}` is not a boolean", String::from_utf8_lossy(t))),
        },
        (Integer(v), &Type::INT2) => {
            Cell::I16(i16::try_from(v).map_err(|_| format!("{v} does not fit smallint"))?)
        }
        (Integer(v), &Type::INT4) => {
            Cell::I32(i32::try_from(v).map_err(|_| format!("{v} does not fit integer"))?)
        }
        (Integer(v), &Type::INT8) => Cell::I64(v),
        (Integer(v), &Type::FLOAT4) => Cell::F32(v as f32),
        (Integer(v), &Type::FLOAT8) => Cell::F64(v as f64),
        (Real(v), &Type::FLOAT4) => Cell::F32(v as f32),
        (Real(v), &Type::FLOAT8) => Cell::F64(v),
        (Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
            Cell::Text(text(t)?)
        }
        (Integer(v), &Type::TEXT | &Type::VARCHAR) => Cell::Text(v.to_string()),
        (Real(v), &Type::TEXT | &Type::VARCHAR) => Cell::Text(v.to_string()),
        (Blob(b), &Type::BYTEA) => Cell::Bytes(b.to_vec()),
        (Text(t), &Type::BYTEA) => Cell::Bytes(t.to_vec()),
        (Text(t), &Type::TIMESTAMPTZ) => Cell::TimestampTz(parse_timestamp(&text(t)?)?),
        (Integer(v), &Type::TIMESTAMPTZ) => Cell::TimestampTz(
            OffsetDateTime::from_unix_timestamp(v)
                .map_err(|_| format!("{v} is not a Unix time"))?,
        ),
        (Text(t), &Type::TIMESTAMP) => {
            let ts = parse_timestamp(&text(t)?)?.to_offset(time::UtcOffset::UTC);
            Cell::Timestamp(PrimitiveDateTime::new(ts.date(), ts.time()))
        }
        (Text(t), &Type::DATE) => {
            let t = text(t)?;
            Cell::Date(
                OffsetDateTime::parse(&format!("{t}T00:00:00Z"), &Rfc3339)
                    .map(OffsetDateTime::date)
                    .map_err(|_| format!("`{t}` is not a date (YYYY-MM-DD)"))?,
            )
        }
        (Text(t), &Type::JSON | &Type::JSONB) => {
            let t = text(t)?;
            Cell::Json(serde_json::from_str(&t).map_err(|e| format!("`{t}` is not JSON: {e}"))?)
        }
        (value, ty) => {
            return Err(format!(
                "a SQLite {} cannot be converted to {ty}",
                match value {
                    Null => "NULL",
                    Integer(_) => "integer",
                    Real(_) => "real",
                    Text(_) => "text",
                    Blob(_) => "blob",
                }
            ));
        }
    };
    Ok(cell)
}

/// RFC 3339 (`2026-11-24T01:02:03Z`, the service's form) or SQLite's
/// `CURRENT_TIMESTAMP` form (`2026-11-24 01:02:03`, UTC).
fn parse_timestamp(text: &str) -> Result<OffsetDateTime, String> {
    let sqlite_form = |t: &str| {
        let (date, time) = t.split_once(' ')?;
        OffsetDateTime::parse(&format!("{date}T{time}Z"), &Rfc3339).ok()
    };
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| sqlite_form(text))
        .ok_or(())
        .map_err(|_| {
            format!("`{text}` is not a timestamp (RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC)")
        })
}

/// A value read back from the target (binary format; None: NULL) as the
/// same [`Cell`] the conversion produced.
fn cell_from_sql(
    ty: &Type,
    raw: Option<&[u8]>,
) -> Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
    fn get<'a, T: FromSql<'a>>(
        ty: &Type,
        raw: Option<&'a [u8]>,
        wrap: impl Fn(T) -> Cell,
    ) -> Result<Cell, Box<dyn std::error::Error + Sync + Send>> {
        Ok(<Option<T> as FromSql>::from_sql_nullable(ty, raw)?.map_or(Cell::Null, wrap))
    }
    match *ty {
        Type::BOOL => get(ty, raw, Cell::Bool),
        Type::INT2 => get(ty, raw, Cell::I16),
        Type::INT4 => get(ty, raw, Cell::I32),
        Type::INT8 => get(ty, raw, Cell::I64),
        Type::FLOAT4 => get(ty, raw, Cell::F32),
        Type::FLOAT8 => get(ty, raw, Cell::F64),
        Type::BYTEA => get(ty, raw, Cell::Bytes),
        Type::TIMESTAMPTZ => get(ty, raw, Cell::TimestampTz),
        Type::TIMESTAMP => get(ty, raw, Cell::Timestamp),
        Type::DATE => get(ty, raw, Cell::Date),
        Type::JSON | Type::JSONB => get(ty, raw, Cell::Json),
        _ => get(ty, raw, Cell::Text),
    }
}

fn select_all(table: &str, columns: &[Column]) -> String {
    let list = columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {list} FROM {}", quote(table))
}

/// Streams the table into `COPY … FROM STDIN (FORMAT binary)`.
fn copy_table(
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

fn row_label(row: &rusqlite::Row<'_>) -> String {
    match row.get_ref(0) {
        Ok(ValueRef::Integer(rowid)) => format!("with rowid {rowid}"),
        _ => "without a rowid".into(),
    }
}

/// PostgreSQL's binary COPY format: this signature, then flags and header
/// extension length (both 0).
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Encodes rows in the binary COPY format into large chunks. (The client's
/// own `BinaryCopyInWriter` enters its runtime once per row, which cost a
/// third of the copy's time.)
struct BinaryRows<'a> {
    sink: CopyInWriter<'a>,
    buf: BytesMut,
    types: Vec<Type>,
}

impl<'a> BinaryRows<'a> {
    const CHUNK: usize = 256 * 1024;

    fn new(sink: CopyInWriter<'a>, types: Vec<Type>) -> Self {
        let mut buf = BytesMut::with_capacity(Self::CHUNK + 64 * 1024);
        buf.extend_from_slice(COPY_HEADER);
        BinaryRows { sink, buf, types }
    }

    fn write(&mut self, cells: &[Cell]) -> Result<(), String> {
        let fields = i16::try_from(cells.len()).map_err(|_| "too many columns".to_owned())?;
        self.buf.extend_from_slice(&fields.to_be_bytes());
        for (cell, ty) in cells.iter().zip(&self.types) {
            let at = self.buf.len();
            self.buf.extend_from_slice(&[0; 4]);
            let length = match cell.to_sql(ty, &mut self.buf).map_err(|e| e.to_string())? {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4)
                    .map_err(|_| "a value over 2 GiB".to_owned())?,
            };
            self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
        }
        if self.buf.len() >= Self::CHUNK {
            self.send().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn send(&mut self) -> std::io::Result<()> {
        self.sink.write_all(&self.buf)?;
        self.sink.flush()?;
        self.buf.clear();
        Ok(())
    }

    /// Ends the stream; the server's row count.
    fn finish(mut self) -> anyhow::Result<u64> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.send().context("sending the last rows")?;
        self.sink
            .finish()
            .map_err(|e| anyhow::anyhow!("{}", pg::describe(&e)))
    }
}

/// Reads rows of the binary COPY format.
struct BinaryRowsIn<'a> {
    stream: std::io::BufReader<CopyOutReader<'a>>,
}

impl<'a> BinaryRowsIn<'a> {
    fn new(stream: CopyOutReader<'a>) -> anyhow::Result<Self> {
        let mut stream = std::io::BufReader::with_capacity(256 * 1024, stream);
        let mut header = [0u8; 19];
        stream
            .read_exact(&mut header)
            .context("reading the COPY header")?;
        if header[..11] != COPY_HEADER[..11] {
            bail!("the server's COPY stream has no binary signature");
        }
        let extension = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
        std::io::copy(
            &mut (&mut stream).take(u64::from(extension)),
            &mut std::io::sink(),
        )?;
        Ok(BinaryRowsIn { stream })
    }

    /// Starts the next row; false at the end of the stream.
    fn next_row(&mut self, columns: usize) -> anyhow::Result<bool> {
        let mut count = [0u8; 2];
        self.stream
            .read_exact(&mut count)
            .context("reading the COPY stream")?;
        match i16::from_be_bytes(count) {
            -1 => Ok(false),
            n if usize::try_from(n).ok() == Some(columns) => Ok(true),
            n => bail!("the server sent a row of {n} fields, expected {columns}"),
        }
    }

    /// The next field into `raw`; false when it is NULL.
    fn field(&mut self, raw: &mut Vec<u8>) -> anyhow::Result<bool> {
        let mut length = [0u8; 4];
        self.stream
            .read_exact(&mut length)
            .context("reading the COPY stream")?;
        let Ok(length) = usize::try_from(i32::from_be_bytes(length)) else {
            return Ok(false);
        };
        raw.resize(length, 0);
        self.stream
            .read_exact(raw)
            .context("reading the COPY stream")?;
        Ok(true)
    }
}

/// What was dropped before the load, to be recreated in this order.
struct Deferred {
    /// `ALTER TABLE … ADD CONSTRAINT …` for primary and unique keys.
    keys: Vec<String>,
    /// `CREATE INDEX …` for the plain indexes.
    indexes: Vec<String>,
    /// `ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY …`, validated in bulk.
    foreign_keys: Vec<String>,
}

/// Drops the tables' foreign keys, plain indexes and primary/unique keys
/// (in that order), remembering their exact definitions.
fn defer_keys_and_indexes(tx: &mut Transaction, tables: &[String]) -> anyhow::Result<Deferred> {
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
fn recreate(tx: &mut Transaction, deferred: &Deferred) -> anyhow::Result<()> {
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
fn reset_sequences(tx: &mut Transaction, table: &str, columns: &[Column]) -> anyhow::Result<()> {
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

/// Row count and an order-independent digest: the wrapping sum of each
/// row's SHA-256 (first 16 bytes) over its canonical bytes, so both sides
/// agree without sorting by collations that differ between the engines.
type Checksum = (u64, u128);

fn row_digest(cells: &[Cell], buffer: &mut Vec<u8>) -> u128 {
    buffer.clear();
    for cell in cells {
        cell.canonical(buffer);
    }
    let hash = Sha256::digest(&buffer[..]);
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(first)
}

fn target_checksum(
    tx: &mut Transaction,
    table: &str,
    columns: &[Column],
) -> anyhow::Result<Checksum> {
    let (mut count, mut sum, mut buffer) = (0u64, 0u128, Vec::new());
    let mut cells = Vec::with_capacity(columns.len());
    let stream = tx.copy_out(&format!(
        "COPY ({}) TO STDOUT (FORMAT binary)",
        select_all(table, columns)
    ))?;
    let mut rows = BinaryRowsIn::new(stream)?;
    let mut raw = Vec::new();
    while rows.next_row(columns.len())? {
        cells.clear();
        for column in columns {
            let present = rows.field(&mut raw)?;
            cells.push(
                cell_from_sql(&column.ty, present.then_some(raw.as_slice()))
                    .map_err(|e| anyhow::anyhow!("reading back {table}.{}: {e}", column.name))?,
            );
        }
        sum = sum.wrapping_add(row_digest(&cells, &mut buffer));
        count += 1;
    }
    Ok((count, sum))
}

fn hex(sum: u128) -> String {
    format!("{sum:032x}")
}

/// `"name"`, with inner quotes doubled.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A one-line progress bar on stderr, redrawn at most ten times a second.
struct Progress {
    table: String,
    total: u64,
    enabled: bool,
    last: Instant,
}

impl Progress {
    fn new(table: &str, total: u64, enabled: bool) -> Progress {
        Progress {
            table: table.to_owned(),
            total,
            enabled,
            last: Instant::now(),
        }
    }

    fn tick(&mut self, done: u64) {
        if self.enabled && self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            self.draw(done);
        }
    }

    fn draw(&self, done: u64) {
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH)
            .checked_div(self.total)
            .unwrap_or(WIDTH)
            .min(WIDTH);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r  {:24} [{bar}] {done}/{} rows",
            self.table, self.total
        );
        let _ = err.flush();
    }

    fn done(&self, done: u64) {
        if self.enabled {
            self.draw(done);
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: ValueRef<'_>, ty: &Type) -> Cell {
        convert(value, ty).unwrap_or_else(|e| panic!("{value:?} -> {ty}: {e}"))
    }

    #[test]
    fn integers_are_range_checked_and_booleans_read_in_sqlite_forms() {
        assert!(matches!(
            ok(ValueRef::Integer(32_767), &Type::INT2),
            Cell::I16(32_767)
        ));
        let too_big = convert(ValueRef::Integer(32_768), &Type::INT2).unwrap_err();
        assert!(too_big.contains("does not fit smallint"), "{too_big}");
        assert!(convert(ValueRef::Integer(1 << 40), &Type::INT4).is_err());
        for (text, want) in [(&b"t"[..], true), (b"false", false), (b"1", true)] {
            assert!(matches!(ok(ValueRef::Text(text), &Type::BOOL), Cell::Bool(b) if b == want));
        }
        assert!(convert(ValueRef::Text(b"yes please"), &Type::BOOL).is_err());
        assert!(convert(ValueRef::Real(0.5), &Type::BOOL).is_err());
    }

    #[test]
    fn timestamps_in_both_forms_name_the_same_instant() {
        let Cell::TimestampTz(a) = ok(ValueRef::Text(b"2026-11-24T01:02:03Z"), &Type::TIMESTAMPTZ)
        else {
            panic!("not a timestamp")
        };
        let Cell::TimestampTz(b) = ok(ValueRef::Text(b"2026-11-24 01:02:03"), &Type::TIMESTAMPTZ)
        else {
            panic!("not a timestamp")
        };
        assert_eq!(a, b);
        assert!(convert(ValueRef::Text(b"24/11/2026"), &Type::TIMESTAMPTZ).is_err());
        assert!(convert(ValueRef::Text(&[0xff, 0xfe]), &Type::TEXT).is_err());
    }

    #[test]
    fn the_checksum_tells_null_from_empty_and_ignores_row_order() {
        let mut buffer = Vec::new();
        let null = row_digest(&[Cell::Null, Cell::Text("x".into())], &mut buffer);
        let empty = row_digest(
            &[Cell::Text(String::new()), Cell::Text("x".into())],
            &mut buffer,
        );
        assert_ne!(null, empty);
        let one = row_digest(&[Cell::I64(1)], &mut buffer);
        let two = row_digest(&[Cell::I64(2)], &mut buffer);
        assert_eq!(one.wrapping_add(two), two.wrapping_add(one));
    }
}
