//! What the service knows about the migration history it was built with.

/// The table refinery keeps its history in (its default name).
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// The oldest schema this build serves. From V5 on it reads a secret in
/// either form (sealed, or the plaintext `value` of the release before) and
/// writes only sealed ones, so it serves a database whose later migrations
/// are all contract steps still waiting for their window: V6 drops the
/// plaintext column once `backend seal` has emptied it, and this build is
/// the one that runs `backend seal`. Raise it when a migration adds
/// something this build needs.
pub const OLDEST_SERVED_VERSION: i64 = 5;

/// The highest migration version in `migrations/` when this binary was built.
pub fn expected_version() -> i64 {
    // Written by build.rs from the migration file names; always an integer.
    env!("EXPECTED_SCHEMA_VERSION").parse().unwrap_or(0)
}
