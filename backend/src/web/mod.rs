//! The HTTP side of the service, in layers that only point downwards:
//!
//! - `error`: the `{"error": ...}` answer the API and its gate give on failure;
//! - `state`: the shared connection slot and maintenance mode, over `store`;
//! - `guard`, `auth`, `health`, `api`: the gates and handlers, which use
//!   `state` and `error` (`api` reads the token name `auth` leaves on a
//!   request) and not the others;
//! - `headers`: the caching and security headers every answer carries.
//!
//! None of these modules assembles the router or knows about the others'
//! routes: `app` does that, so the handlers never import the server.

pub mod api;
pub mod auth;
pub mod error;
pub mod guard;
pub mod headers;
pub mod health;
pub mod state;
