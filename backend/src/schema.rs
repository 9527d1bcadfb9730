//! What the service knows about the migration history it was built with.

/// The table refinery keeps its history in (its default name).
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// The highest migration version in `migrations/` when this binary was built.
pub fn expected_version() -> i64 {
    // Written by build.rs from the migration file names; always an integer.
    env!("EXPECTED_SCHEMA_VERSION").parse().unwrap_or(0)
}
