#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

//! The backend's integration tests, one binary (one link instead of one per
//! suite): each module is a suite against real SQLite files, the Postgres
//! server, the real router on a loopback socket and the real binary.

#[macro_use]
mod common;

mod api;
mod auth;
mod maintenance;
mod pool;
mod sealing;
mod startup;
