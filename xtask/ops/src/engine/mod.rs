//! The two database engines' mechanics: opening, the migration history,
//! applying migrations, backups and restores. Nothing here knows about the
//! maintenance window or the service; the commands compose these.

mod backup_names;
pub mod backups;
pub mod free_space;
pub mod inventory;
pub mod pg;
pub mod pg_backups;
pub mod pg_indexes;
pub mod pg_restore_point;
pub mod pg_scratch;
pub mod pg_watch;
mod refinery;
pub mod sqlite;

/// A history table that cannot be read as refinery's (`migrate adopt` meets
/// databases other tools built): the table, the cause, and the fix.
pub fn unreadable_history(database: &str, cause: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "{database}: the table {} cannot be read as refinery's migration history ({cause}): it is not \
         refinery's (columns version, name, applied_on, checksum). If another tool made it, rename it \
         (ALTER TABLE {0} RENAME TO …) and run adopt again; if it was refinery's, restore a backup",
        refinery::HISTORY_TABLE
    )
}
