//! Content checksums, computed the same way from both databases.

use postgres::Transaction;
use sha2::{Digest, Sha256};

use super::{
    binary::BinaryRowsIn,
    cells::{Cell, cell_from_sql},
    columns::{Column, select_all},
};

/// Row count and an order-independent digest: the wrapping sum of each
/// row's SHA-256 (first 16 bytes) over its canonical bytes, so both sides
/// agree without sorting by collations that differ between the engines.
pub(super) type Checksum = (u64, u128);

pub(super) fn row_digest(cells: &[Cell], buffer: &mut Vec<u8>) -> u128 {
    buffer.clear();
    for cell in cells {
        cell.canonical(buffer);
    }
    let hash = Sha256::digest(&buffer[..]);
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(first)
}

pub(super) fn target_checksum(
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

pub(super) fn hex(sum: u128) -> String {
    format!("{sum:032x}")
}
