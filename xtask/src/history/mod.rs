//! The migration history as files: loading and checking `V{n}__{name}.sql`
//! (with the Postgres twins), their SQL text, and the zero-downtime lint.
//! Nothing here touches a database.

mod compare;
mod files;
pub mod lint;
pub mod sql_text;

pub use compare::{Comparison, compare, stems};
pub use files::*;
