//! Mechanics the repository automation (`cargo xtask`) and the operations
//! tool (`secrets-ops`) share, each a small module named for what it is.

pub mod closed_stdout;
pub mod failpoint;
pub mod fsutil;
pub mod git;
pub mod process;
pub mod quote;
pub mod run_lock;
pub mod stamp;
pub mod workspace_metadata;
