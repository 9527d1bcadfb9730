//! A database's schema as a comparable model, its dump, and sample rows for
//! the upgrade-path checks.

mod checks;
mod clauses;
pub mod dump;
pub mod model;
pub mod pg_model;
pub mod sample_rows;
pub mod sqlite_model;
