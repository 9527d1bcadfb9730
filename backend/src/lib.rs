//! The secrets service.
//!
//! `dburl`, `db_error`, `maintenance` and `schema` are the `secrets-contract`
//! crate, re-exported: plain std, the contract the operations tool
//! (`secrets-ops`) shares with the service without compiling its web stack.
//! Everything else is the HTTP service itself, layered so that imports only
//! point down:
//!
//! - `app`: the router and server loop, the one module that wires the rest;
//! - `web`: the HTTP handlers, their shared state and their error answer;
//! - `commands`: the operator commands of the binary (`backend token`, `backend key`, `backend seal`);
//! - `store`: the secrets on SQLite or Postgres, behind one interface;
//! - `api_token`: the bearer tokens' format, hash and comparison;
//! - `seal`: the key file and the AEAD that seals values at rest;
//! - `config`, then the std contract at the bottom.

pub use secrets_contract::{db_error, dburl, maintenance, schema};

#[cfg(feature = "server")]
pub mod api_token;
#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod commands;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod seal;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
mod web;

/// The release version, kept in step across the repository by `cargo xtask release`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
