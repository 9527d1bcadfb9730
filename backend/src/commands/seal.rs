//! `backend seal [--batch-size N]`: seals every row that is not sealed
//! under the current key — the previous release's plaintext rows (the
//! backfill) and rows under an older key (the rotation).
//!
//! It walks the table by id in batches, each its own short transaction, so
//! the service keeps serving; a batch re-reads its rows and only updates a
//! row whose key id is still the one it read, so a row deleted or sealed
//! meanwhile is left alone. Everything it does is keyed on the rows' state,
//! so a run that was killed is resumed by running it again, and several runs
//! at once (Postgres: rows another run holds are skipped) share the work.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, bail};

use super::SealArgs;
use crate::{
    dburl::DatabaseUrl,
    maintenance,
    seal::keyfile,
    store::{Db, Store, Vault},
};

/// Passes over the table: a later one picks up rows a concurrent run held,
/// or that a previous release's instance wrote during the first.
const PASSES: usize = 3;
/// A pause before another pass, for a concurrent run to finish its batch.
const PAUSE_BETWEEN_PASSES: Duration = Duration::from_millis(500);

pub fn run(args: SealArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::from_env().context("reading DATABASE_URL")?;
    let key_file = keyfile::path_from_env();
    let vault = Vault::new(keyfile::read(&key_file)?);
    let flag = maintenance::flag_path_from_env(&url);
    if flag.exists() {
        bail!(
            "the maintenance flag {} exists (a maintenance window is running): run \
             `backend seal` once it is over",
            flag.display()
        );
    }
    let mut store = open(&url, &vault)?;
    store.with_db(|db| seal_all(db, &vault, args.batch_size))?
}

/// The database, refused when it is behind this build (no sealed column yet).
fn open(url: &DatabaseUrl, vault: &Vault) -> anyhow::Result<Store> {
    let mut store = Store::open(url, 1)?;
    store.schema_state()?.refuse_behind(url)?;
    // A wrong key under the right id would seal the previous release's rows
    // under a key no backup holds: refused before any row is touched.
    store.ready_vault(vault)?;
    Ok(store)
}

/// Seals batch after batch, pass after pass, until nothing is left or what
/// is left cannot be opened; prints progress and a final line.
fn seal_all(db: &mut Db, vault: &Vault, batch_size: u32) -> anyhow::Result<()> {
    let current = vault.keys().current_id();
    let total = db.count_to_seal(vault)?;
    println!("{total} rows to seal under key {current}, in batches of {batch_size}");
    let mut sealed = 0;
    let mut failures = BTreeMap::new();
    for pass in 0..PASSES {
        if pass > 0 {
            std::thread::sleep(PAUSE_BETWEEN_PASSES);
        }
        sealed += one_pass(db, vault, batch_size, total, sealed, &mut failures)?;
        if db.count_to_seal(vault)? <= failures.len() as u64 {
            break;
        }
    }
    finish(db, vault, sealed, &failures)
}

/// One walk over the table by id; returns how many rows it sealed.
fn one_pass(
    db: &mut Db,
    vault: &Vault,
    batch_size: u32,
    total: u64,
    before: u64,
    failures: &mut BTreeMap<i64, String>,
) -> anyhow::Result<u64> {
    let mut after = 0;
    let mut sealed = 0;
    loop {
        let started = std::time::Instant::now();
        let batch = db
            .seal_batch(vault, after, batch_size)
            .with_context(|| format!("sealing the rows after id {after}"))?;
        let Some(last) = batch.last_id else {
            return Ok(sealed);
        };
        // As long again without the lock: the service's writes (SQLite has
        // one writer at a time) get at least half of it, so none waits
        // behind batch after batch.
        std::thread::sleep(started.elapsed());
        after = last;
        sealed += batch.sealed;
        for (id, why) in batch.failures {
            // Each row once, though a later pass meets it again.
            if let std::collections::btree_map::Entry::Vacant(entry) = failures.entry(id) {
                eprintln!("cannot seal row {id}: {why}");
                entry.insert(why);
            }
        }
        println!("sealed {} of {total} rows", before + sealed);
    }
}

/// The final line; an error (non-zero exit) while any row is left.
fn finish(
    db: &mut Db,
    vault: &Vault,
    sealed: u64,
    failures: &BTreeMap<i64, String>,
) -> anyhow::Result<()> {
    let current = vault.keys().current_id();
    let left = db.count_to_seal(vault)?;
    if left == 0 {
        if !db.checkpoint()? {
            println!(
                "note: the database's write-ahead log is still in use; the service's next checkpoint moves it into the file"
            );
        }
        println!("done: sealed {sealed} rows; every row is sealed under key {current}");
        return Ok(());
    }
    if !failures.is_empty() {
        bail!(
            "sealed {sealed} rows, but {left} are not sealed under key {current}; {} of them do \
             not open (listed above): put the key that sealed them back in the key file and run \
             `backend seal` again",
            failures.len()
        );
    }
    bail!(
        "sealed {sealed} rows, but {left} are not sealed under key {current} yet (another \
         `backend seal` holds them, or an instance of the previous release is still writing): \
         run `backend seal` again"
    )
}
