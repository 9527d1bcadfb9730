//! A database's schema as a comparable model, its dump, and sample rows for
//! the upgrade-path checks. Each engine's reader lives in its folder
//! (`sqlite/schema.rs`, `postgres/schema.rs`).

pub mod checks;
pub mod dump;
pub mod model;
pub mod sample_rows;
