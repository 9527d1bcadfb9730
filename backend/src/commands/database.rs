//! The database an operator command works on: `DATABASE_URL` (default
//! `data/secrets.db`, relative to the working directory, as the service
//! reads it), one connection, and the same schema check as the service.

use anyhow::Context;

use crate::{
    dburl::DatabaseUrl,
    store::{Db, Store},
};

/// One connection to `DATABASE_URL`'s database; refused when its schema is
/// behind this build (the tables the command needs may not exist yet).
pub fn connect() -> anyhow::Result<Db> {
    let url = DatabaseUrl::from_env().context("reading DATABASE_URL")?;
    let mut store = Store::open(&url, 1)?;
    let state = store
        .schema_state()
        .with_context(|| format!("reading the migration history of {url}"))?;
    state.refuse_behind(&url)?;
    store.into_connection()
}
