//! Fixtures shared by the integration tests of the backend and the xtask:
//! the repository's paths and migrations (with the Postgres twin rule), the
//! test Postgres server and scratch databases on it, the real backend as a
//! process, and a blocking HTTP client.
//!
//! Helpers of one tree stay in its own support module
//! (`backend/tests/it/common`, `xtask/ops/tests/it/support`), which re-exports these.
//! Running the operations binary is there too: `env!("CARGO_BIN_EXE_secrets-ops")`
//! exists only in the operations crate's tests.

#![allow(clippy::unwrap_used)] // a panic in a fixture is a failed test with its cause

mod backend;
mod http;
mod paths;
mod pg;

pub use backend::{
    Backend, backend_command, create_token, stderr_lines, test_key_file, token_command,
};
pub use http::{agent, agent_with_timeout, free_port, status_of, wait_for_health};
pub use paths::{
    Engine, copy_migrations, copy_migrations_with_twins, migration_files, migration_version,
    migrations_dir, migrations_for, read_migrations, repo_root, sqlite_url,
};
pub use pg::{PgDatabase, postgres_server, with_database};
