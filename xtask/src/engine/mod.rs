//! The two database engines' mechanics: opening, the migration history,
//! applying migrations, backups and restores. Nothing here knows about the
//! maintenance window or the service; the commands compose these.

pub mod backups;
pub mod pg;
pub mod pg_backups;
pub mod pg_restore_point;
mod refinery;
pub mod sqlite;
