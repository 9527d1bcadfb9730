//! A restore point on the Postgres server: a copy of the database made with
//! `CREATE DATABASE <db>_restorepoint_<unix time> TEMPLATE <db>` inside the
//! window (a file-level copy on the server: ~0.3 s for 1 M rows where
//! `pg_dump` takes ~6 s), dumped to the usual backup file and dropped once
//! the service is back. The copy needs the database to itself (no session
//! on it, the caller's included), the CREATEDB privilege, ownership of the
//! database (or superuser), and free disk on the server for one more copy.
//!
//! A copy left by a run that died is found by its name on the next run,
//! saved to a backup file and dropped.

use crate::program::OPS;
use std::path::Path;

use anyhow::Context;
use postgres::Client;
use secrets_contract::dburl::PgUrl;

use crate::{
    engine::backups::Backup,
    pg::{
        self,
        backups::{self as pg_backups, database_bytes},
    },
};

/// What every restore point's name holds after (a prefix of) the database's.
const MARK: &str = "_restorepoint_";
/// Postgres cuts identifiers to 63 bytes.
const MAX_IDENTIFIER: usize = 63;

/// The prefix of every restore point of `db`, cut so that a name fits.
fn prefix(db: &str) -> String {
    let room = MAX_IDENTIFIER - MARK.len() - 10;
    let mut cut = db.len().min(room);
    while !db.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{MARK}", &db[..cut])
}

/// A new restore point's name for `db`.
pub fn new_name(db: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{}{now}", prefix(db))
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Why this user cannot make a restore point of the database `client` is
/// connected to (None: it can), and the bytes one will take on the server.
pub fn refusal(client: &mut Client) -> anyhow::Result<(Option<String>, u64)> {
    let row = client.query_one(
        "SELECT r.rolname::text, r.rolcreatedb, r.rolsuper, \
                (d.datdba = r.oid) OR pg_has_role(r.oid, d.datdba, 'MEMBER') \
         FROM pg_roles r, pg_database d \
         WHERE r.rolname = current_user AND d.datname = current_database()",
        &[],
    )?;
    let (user, createdb, superuser, owner): (String, bool, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let bytes = database_bytes(client)?;
    let reason = if superuser || (createdb && owner) {
        None
    } else if !createdb {
        Some(format!(
            "the user `{user}` lacks CREATEDB (grant it with `ALTER ROLE {user} CREATEDB`)"
        ))
    } else {
        Some(format!(
            "the user `{user}` does not own the database (only its owner or a superuser may copy it)"
        ))
    };
    Ok((reason, bytes))
}

/// Copies `db` to `copy` on the server; `admin` must not be connected to `db`,
/// and nobody else may be.
pub fn create(admin: &mut Client, db: &str, copy: &str) -> anyhow::Result<()> {
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quoted(copy),
            quoted(db)
        ))
        .map_err(|e| anyhow::anyhow!(pg::describe(&e)))
        .with_context(|| format!("copying the database {db} to {copy} on the server"))
}

/// Restore points of the database `client` is connected to, left by runs
/// that died (the caller holds the migration lock: no live run owns one).
pub fn leftovers(client: &mut Client, db: &str) -> anyhow::Result<Vec<String>> {
    let pattern = like_pattern(db);
    let rows = client.query(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY datname",
        &[&pattern],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `LIKE` pattern for every restore point of `db`: the name's own `_`, `%`
/// and `\` match only themselves.
fn like_pattern(db: &str) -> String {
    let literal = prefix(db)
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{literal}%")
}

/// Drops the restore point `copy` (from a session on another database).
pub fn drop_copy(client: &mut Client, copy: &str) -> anyhow::Result<()> {
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quoted(copy)))
        .map_err(|e| anyhow::anyhow!(pg::describe(&e)))
        .with_context(|| format!("dropping the restore point {copy}"))
}

/// Dumps the restore point `copy` to `dest` (verified, as every backup),
/// then drops it; on failure the copy stays, and the error names it.
pub fn save(client: &mut Client, url: &PgUrl, copy: &str, dest: &Path) -> anyhow::Result<Backup> {
    let backup = pg_backups::dump(&url.with_database(copy), dest).with_context(|| {
        format!(
            "saving the restore point {copy} to {}: it stays on the server; the next \
             `{OPS} migrate` saves and drops it",
            dest.display()
        )
    })?;
    drop_copy(client, copy)?;
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgres_identifiers_and_share_the_prefix() {
        let long = "d".repeat(63);
        let name = new_name(&long);
        assert!(name.len() <= MAX_IDENTIFIER, "{name}");
        assert!(name.starts_with(&prefix(&long)));
        assert!(new_name("secrets").starts_with("secrets_restorepoint_"));
    }

    #[test]
    fn the_leftover_pattern_matches_only_this_databases_restore_points() {
        assert_eq!(like_pattern("my_db"), "my\\_db\\_restorepoint\\_%");
        assert_eq!(like_pattern("a%b"), "a\\%b\\_restorepoint\\_%");
    }
}
