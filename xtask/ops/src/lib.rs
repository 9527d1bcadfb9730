//! `secrets-ops`: the secrets service's operations tool, as a library for its
//! binary (`main.rs`), for `cargo xtask bench` and for the tests.
//!
//! Commands, each a folder above the mechanics it uses; nothing imports a
//! command but `main.rs` (and the benchmarks, which measure them).

// Commands, each a folder with its mechanics below it.
pub mod copy;
pub mod migrations;
pub mod window;

// One folder per engine: everything that differs between them (opening,
// locks, history, backups and restores, the window's steps, the schema
// reader, adoption, the rolling-deploy job).
pub mod pg;
pub mod sqlite;

// What the engines share, and the interface the commands call them through.
pub mod engine;
pub mod history;
pub mod schema;

// Small modules everyone uses.
pub mod config;
pub mod embedded;
pub mod flags;
pub mod paths;
pub mod program;
pub mod progress;
pub mod redact;

// Shared with the repository automation (`cargo xtask`), re-exported so that
// every module names them as `crate::git`, `crate::fsutil`, ….
pub use xtask_common::{closed_stdout, failpoint, fsutil, git, process, quote, run_lock, stamp};
