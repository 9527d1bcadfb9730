//! What the benchmarks build: sizes from the command line, and databases of
//! this repository's schema filled to a size.

use std::path::Path;

use anyhow::{Context, bail};

pub(super) fn parse_size(size: &str) -> anyhow::Result<u64> {
    let lower = size.trim().to_ascii_lowercase();
    let (number, unit) = lower.split_at(
        lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len()),
    );
    let factor = match unit {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => bail!("size `{size}`: use a number with KiB, MiB or GiB, e.g. 1GiB"),
    };
    Ok(number
        .parse::<u64>()
        .with_context(|| format!("size `{size}` is not a number"))?
        * factor)
}

/// This repository's schema, `secrets` filled with 16 KiB values to `bytes`.
pub(super) fn fill_database(db: &Path, migrations: &Path, bytes: u64) -> anyhow::Result<()> {
    let files = crate::history::load(migrations)?;
    let mut conn = crate::engine::sqlite::open(db, true)?;
    crate::engine::sqlite::apply_pending(&mut conn, &files)?;
    let value: String = (0..16 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let rows = bytes / (16 * 1024 + 200);
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare("INSERT INTO secrets (name, value, created_at) VALUES (?1, ?2, ?3)")?;
        for i in 0..rows {
            insert.execute(rusqlite::params![
                format!("secret-{i:09}"),
                value,
                format!("2026-01-01T00:00:{:02}Z", i % 60)
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}
