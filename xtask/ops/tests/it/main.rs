#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

//! The xtask's integration tests, one binary: each module is one suite (the
//! real `cargo xtask` binary against real SQLite files, git repositories,
//! the Postgres server and backend processes). One binary links once, where
//! twenty did twenty times. The fault-injection suite (`faults.rs`) stays
//! apart: it needs the `failpoints` feature.

#[macro_use]
mod support;

mod adopt;
mod backups;
mod bench_args;
mod concurrency;
mod expand_contract;
mod free_pages;
mod gaps;
mod installed;
mod job;
mod layout;
mod limits;
mod migrate;
mod migrations_check;
mod operator;
mod operator_inputs;
mod paths;
mod postgres;
mod postgres_lint;
mod preconditions;
mod release;
mod release_build;
mod runbook;
mod sealed_copies;
