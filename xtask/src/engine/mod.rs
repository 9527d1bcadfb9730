//! The two database engines' mechanics: opening, the migration history,
//! applying migrations, backups and restores. Nothing here knows about the
//! maintenance window or the service; the commands compose these.

pub mod backups;
pub mod free_space;
pub mod inventory;
pub mod pg;
pub mod pg_backups;
pub mod pg_indexes;
pub mod pg_restore_point;
pub mod pg_watch;
mod refinery;
pub mod sqlite;
