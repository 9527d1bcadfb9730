//! What the two engines (`sqlite/`, `postgres/`) share, and the interface
//! the commands call them through: the roles an engine plays (`roles.rs`:
//! the window's runner, backups, adoption), the options it is built with,
//! the window's status lines and journal (`steps.rs`, `journal.rs`), one
//! refinery driver (`refinery.rs`), and what every backup has (names,
//! rotation, space, atomic publication: `backups.rs`, `backup_names.rs`).
//! Nothing here knows about one engine; nothing here is a command.

mod backup_names;
pub mod backups;
pub mod journal;
pub mod refinery;
pub mod roles;
pub mod steps;

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
