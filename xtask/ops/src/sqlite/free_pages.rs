//! The free pages a SQLite migration leaves (a table rebuild leaves the
//! whole old table): reclaimed inside the window with `migrate --vacuum`,
//! otherwise reported after it, read from the live database, with how to
//! reclaim them and what it would cost (measured on the rehearsal snapshot).

use crate::program::OPS;
use std::path::Path;

use rusqlite::Connection;

use crate::{
    engine::backups::human_size,
    quote,
    sqlite::{
        self,
        free_space::{self, FreeSpace, VacuumEstimate},
    },
};

/// `migrate --vacuum`: VACUUM the migrated database; says what it reclaimed.
pub fn vacuum(conn: &Connection) -> anyhow::Result<String> {
    let before = FreeSpace::read(conn)?;
    let (took, after) = free_space::vacuum(conn)?;
    Ok(format!(
        "VACUUM {:.2} s: {} reclaimed, the database is {} now",
        took.as_secs_f64(),
        human_size(before.database_bytes.saturating_sub(after.database_bytes)),
        human_size(after.database_bytes)
    ))
}

/// After the window: the free pages of `db` as they are now, when they are
/// worth reclaiming, and how.
pub fn advice(db: &Path, rehearsed: Option<&VacuumEstimate>) -> Option<String> {
    let space = match sqlite::open(db, false).and_then(|c| FreeSpace::read(&c)) {
        Ok(space) if space.worth_reclaiming() => space,
        Ok(_) => return None,
        Err(e) => return Some(format!("free pages could not be read: {e:#}")),
    };
    let measured = match rehearsed.map(|v| &v.took) {
        Some(Ok(took)) => format!("{:.2} s on the rehearsal snapshot", took.as_secs_f64()),
        _ => "not measured".to_owned(),
    };
    Some(format!(
        "{} after the window (read from the database). To give it back to the filesystem, run VACUUM \
         outside the window, at a quiet time: `sqlite3 {} VACUUM` — it needs about {} free on disk and \
         holds the write lock for its duration ({measured}); or let the next window do it inside, after \
         its migration: `{OPS} migrate --vacuum`",
        space.describe(),
        quote::shell(&db.to_string_lossy()),
        human_size(space.database_bytes)
    ))
}
