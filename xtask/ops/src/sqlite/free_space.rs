//! Free pages of a SQLite database: what a table rebuild (create, copy,
//! drop, rename) leaves behind. SQLite keeps the dropped table's pages in
//! the file for reuse; only `VACUUM` gives them back to the filesystem.

use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Connection;

use crate::engine::backups::human_size;

/// Free pages worth a word: at least this much…
const MIN_BYTES: u64 = 1 << 20;
/// …and at least this share of the database, in percent. Below either, a
/// VACUUM would cost a full rewrite for little.
const MIN_PERCENT: u64 = 10;

/// Read from the database itself (`PRAGMA freelist_count`, `page_count`,
/// `page_size`), never estimated.
#[derive(Debug, Clone, Copy)]
pub struct FreeSpace {
    pub free_bytes: u64,
    pub database_bytes: u64,
}

impl FreeSpace {
    pub fn read(conn: &Connection) -> anyhow::Result<FreeSpace> {
        let pragma = |name: &str| -> anyhow::Result<u64> {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .with_context(|| format!("reading PRAGMA {name}"))
        };
        let page_size = pragma("page_size")?;
        Ok(FreeSpace {
            free_bytes: pragma("freelist_count")? * page_size,
            database_bytes: pragma("page_count")? * page_size,
        })
    }

    pub fn worth_reclaiming(&self) -> bool {
        self.free_bytes >= MIN_BYTES && self.free_bytes * 100 >= self.database_bytes * MIN_PERCENT
    }

    /// `12 MiB free (48 % of the 25 MiB database)`.
    pub fn describe(&self) -> String {
        let percent = (self.free_bytes * 100)
            .checked_div(self.database_bytes)
            .unwrap_or(0);
        format!(
            "{} free ({percent} % of the {} database)",
            human_size(self.free_bytes),
            human_size(self.database_bytes)
        )
    }
}

/// `VACUUM`, then a checkpoint that truncates the WAL, so that the main file
/// really shrinks (in WAL mode VACUUM writes the new pages to the WAL first).
/// Returns the time it took and the space after.
pub fn vacuum(conn: &Connection) -> anyhow::Result<(Duration, FreeSpace)> {
    let start = Instant::now();
    conn.execute_batch("VACUUM").context("VACUUM")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .context("checkpointing the WAL after VACUUM")?;
    let took = start.elapsed();
    Ok((took, FreeSpace::read(conn)?))
}

/// What a VACUUM after the migration would reclaim and cost, measured on a
/// copy (the rehearsal's snapshot).
#[derive(Debug, Clone)]
pub struct VacuumEstimate {
    pub left: FreeSpace,
    pub took: Result<Duration, String>,
}

impl VacuumEstimate {
    /// Measured on the snapshot the migrations were rehearsed on, when they
    /// leave enough free pages to be worth a word.
    pub fn measure(snapshot: &Connection) -> anyhow::Result<Option<VacuumEstimate>> {
        let left = FreeSpace::read(snapshot)?;
        if !left.worth_reclaiming() {
            return Ok(None);
        }
        // A failed VACUUM on the copy says so; it is no reason to stop.
        let took = vacuum(snapshot)
            .map(|(took, _)| took)
            .map_err(|e| format!("{e:#}"));
        Ok(Some(VacuumEstimate { left, took }))
    }

    pub fn describe(&self) -> String {
        match &self.took {
            Ok(took) => format!(
                "; the migrations leave {}: VACUUM of the snapshot took {:.2} s",
                self.left.describe(),
                took.as_secs_f64()
            ),
            Err(e) => format!(
                "; the migrations leave {}: VACUUM of the snapshot failed ({e})",
                self.left.describe()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_large_share_of_free_pages_is_worth_reclaiming() {
        let space = |free: u64, total: u64| FreeSpace {
            free_bytes: free << 20,
            database_bytes: total << 20,
        };
        assert!(space(5, 10).worth_reclaiming());
        assert!(!space(5, 100).worth_reclaiming(), "5 % of the file");
        assert!(
            !FreeSpace {
                free_bytes: 512 << 10,
                database_bytes: 1 << 20
            }
            .worth_reclaiming()
        );
        assert_eq!(
            space(5, 10).describe(),
            "5 MiB free (50 % of the 10 MiB database)"
        );
    }

    #[test]
    fn a_dropped_table_leaves_free_pages_that_vacuum_gives_back() {
        let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
        let conn = Connection::open(dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO t SELECT randomblob(2000) FROM n;
             DROP TABLE t;",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let before = FreeSpace::read(&conn).unwrap_or_else(|e| panic!("{e}"));
        assert!(before.worth_reclaiming(), "{before:?}");
        let (_, after) = vacuum(&conn).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(after.free_bytes, 0);
        assert!(
            after.database_bytes < before.database_bytes / 10,
            "{after:?}"
        );
    }
}
