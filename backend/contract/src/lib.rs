//! The contract between the secrets service and its operations tool
//! (`secrets-ops`, `cargo xtask` in a checkout): plain std, so the tool
//! shares it without compiling the service's web stack.
//!
//! - `dburl`: `DATABASE_URL`, its two engines, and redaction of credentials;
//! - `maintenance`: where the maintenance flag lives;
//! - `schema`: the history table and the versions this build serves;
//! - `db_error`: a database error as a line safe to print (with `pg`, the
//!   Postgres client's errors too).

pub mod db_error;
pub mod dburl;
pub mod maintenance;
pub mod schema;
