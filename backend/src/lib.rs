//! The secrets service.
//!
//! `dburl`, `maintenance` and `schema` are plain std: they are the contract the
//! operator tooling (`cargo xtask`) shares with the service, and compile without
//! the `server` feature. Everything else is the HTTP service itself.

pub mod dburl;
pub mod maintenance;
pub mod schema;

#[cfg(feature = "server")]
mod api;
#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod db;
#[cfg(feature = "server")]
mod pg;

/// The release version, kept in step across the repository by `cargo xtask release`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
