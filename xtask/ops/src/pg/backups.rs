//! Backups of a Postgres database: `pg_dump --format=custom` into a 0600
//! temp file, checked by reading its table of contents back with
//! `pg_restore --list`, then renamed to `<dbname>.pg.<sequence>.<UTC timestamp>.bak`.
//! A restore replays an archive with `pg_restore | psql`, inside one
//! transaction that first drops the public schema and commits only after the
//! whole script went through: the database ends exactly as dumped, or (on any
//! error, or if this process dies) exactly as it was.
//!
//! The password never appears on a command line (every local user can read
//! those): the tools get the URL without it and the password in `PGPASSWORD`.

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
    process::{Child, Command, Stdio},
};

use anyhow::{Context, bail};
use postgres::Client;
use secrets_contract::dburl::PgUrl;

use crate::engine::backups::{self, Backup};

/// `program` with the connection's settings in its environment.
fn tool(program: &str, url: &PgUrl) -> Command {
    let mut command = Command::new(program);
    command.env("PGCONNECT_TIMEOUT", "10");
    match url.password() {
        Some(password) => command.env(
            "PGPASSWORD",
            secrets_contract::dburl::percent_decode(password),
        ),
        None => command.env_remove("PGPASSWORD"),
    };
    command
}

fn spawn(command: &mut Command, program: &str) -> anyhow::Result<Child> {
    command.spawn().with_context(|| {
        format!(
            "starting `{program}`: install the Postgres client tools (Debian: postgresql-client) \
             matching the server's major version"
        )
    })
}

fn finish(child: Child, program: &str) -> anyhow::Result<()> {
    let output = child
        .wait_with_output()
        .with_context(|| format!("waiting for {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} failed ({}): {}",
            output.status,
            crate::redact::redact(String::from_utf8_lossy(&output.stderr).trim())
        );
    }
    Ok(())
}

/// What a Postgres database's backups are named after, `<dbname>.pg`
/// (`<dbname>.pg.<sequence>.<stamp>.bak`); the same name keys the local
/// lock file in the backup folder. A name, not a file.
pub fn backup_name(url: &PgUrl) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}.pg", url.database()))
}

/// Fails unless `pg_dump` is installed and not older than the server (an
/// older pg_dump refuses to dump a newer server).
pub fn check_tools(client: &mut Client) -> anyhow::Result<String> {
    let server: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int4", &[])?
        .get(0);
    let server_major = server / 10_000;
    let output = Command::new("pg_dump")
        .arg("--version")
        .output()
        .context("running `pg_dump --version`: install the Postgres client tools (Debian: postgresql-client)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let major: i32 = text
        .split_whitespace()
        .find_map(|word| word.split('.').next()?.parse().ok())
        .with_context(|| format!("cannot read pg_dump's version from `{}`", text.trim()))?;
    if major < server_major {
        bail!(
            "{} cannot dump a Postgres {server_major} server: install postgresql-client-{server_major}",
            text.trim()
        );
    }
    Ok(format!("{}, server {server_major}", text.trim()))
}

/// Dumps the database to `dest` (custom format, 0600), verified by listing
/// the archive's contents; nothing is left under `dest` if any step fails.
pub fn dump(url: &PgUrl, dest: &Path) -> anyhow::Result<Backup> {
    backups::with_temp(dest, |temp| {
        let file = backups::create_private(temp)
            .with_context(|| format!("creating {}", temp.display()))?;
        let child = spawn(
            tool("pg_dump", url)
                .args(["--format=custom", "--no-password", "--dbname"])
                .arg(url.without_password())
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(Stdio::piped()),
            "pg_dump",
        )?;
        finish(child, "pg_dump")?;
        File::open(temp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("flushing {}", temp.display()))?;
        verify(temp)?;
        let bytes = std::fs::metadata(temp)?.len();
        crate::failpoint::hit("mid-backup")?;
        backups::publish(temp, dest)?;
        Ok(Backup {
            path: dest.to_path_buf(),
            bytes,
        })
    })
}

/// Reads the archive's table of contents; returns how many table-data
/// entries it holds. A truncated or foreign file fails here.
pub fn verify(archive: &Path) -> anyhow::Result<usize> {
    let output = Command::new("pg_restore")
        .arg("--list")
        .arg(archive)
        .stdin(Stdio::null())
        .output()
        .context("running `pg_restore --list`: install the Postgres client tools (Debian: postgresql-client)")?;
    if !output.status.success() {
        bail!(
            "{} is not a readable pg_dump archive: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(" TABLE DATA "))
        .count())
}

/// The highest version in the archive's `refinery_schema_history` data
/// (None: the archive holds none). `pg_restore --data-only --table` reads
/// only that table's data: a custom-format archive written to a file records
/// where each table's data starts, so this is cheap however large it is.
pub fn schema_version(archive: &Path) -> anyhow::Result<Option<i32>> {
    let output = Command::new("pg_restore")
        .args(["--data-only", "--table=refinery_schema_history", "--file=-"])
        .arg(archive)
        .stdin(Stdio::null())
        .output()
        .context(
            "running `pg_restore`: install the Postgres client tools (Debian: postgresql-client)",
        )?;
    if !output.status.success() {
        bail!(
            "{} is not a readable pg_dump archive: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(highest_version(&String::from_utf8_lossy(&output.stdout)))
}

/// The highest `version` in the `COPY … refinery_schema_history (…) FROM stdin;`
/// block of a plain SQL script.
fn highest_version(script: &str) -> Option<i32> {
    let mut lines = script.lines();
    let header = lines.find(|l| l.starts_with("COPY ") && l.contains("refinery_schema_history"))?;
    let columns = header.split_once('(')?.1.split_once(')')?.0;
    let column = columns.split(',').position(|c| c.trim() == "version")?;
    lines
        .take_while(|l| *l != "\\.")
        .filter_map(|row| row.split('\t').nth(column)?.parse::<i32>().ok())
        .max()
}

/// Replaces everything in the database's public schema with the archive's
/// contents, in one transaction.
pub fn restore(url: &PgUrl, archive: &Path) -> anyhow::Result<()> {
    verify(archive)?;
    let mut restore = spawn(
        Command::new("pg_restore")
            .args(["--file=-"])
            .arg(archive)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        "pg_restore",
    )?;
    let mut psql = spawn(
        tool("psql", url)
            .args([
                "--no-psqlrc",
                "--quiet",
                "--no-password",
                "--set=ON_ERROR_STOP=1",
                "--file=-",
                "--dbname",
            ])
            .arg(url.without_password())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        "psql",
    )?;
    // pg_restore's stderr is read as it comes, so that it never blocks on
    // a full pipe while its stdout is being fed to psql.
    let restore_stderr = restore.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let fed = (|| -> anyhow::Result<()> {
        let mut input = psql.stdin.take().context("psql has no input")?;
        let mut script = restore.stdout.take().context("pg_restore has no output")?;
        // Our own BEGIN and COMMIT, not psql's --single-transaction: that
        // one commits at the end of its input, so a run killed mid-feed
        // would commit half a restore. Here a missing COMMIT means the
        // session ends inside the transaction, and the server rolls it back.
        input.write_all(b"BEGIN;\nDROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n")?;
        io::copy(&mut script, &mut input).context("feeding the backup to psql")?;
        crate::failpoint::hit("mid-restore")?;
        // Commit only a script pg_restore delivered whole: its exit status
        // decides, before the COMMIT is written.
        let status = restore.wait().context("waiting for pg_restore")?;
        if !status.success() {
            let stderr = restore_stderr
                .and_then(|t| t.join().ok())
                .unwrap_or_default();
            bail!(
                "pg_restore failed ({status}): {}",
                crate::redact::redact(stderr.trim())
            );
        }
        input.write_all(b"COMMIT;\n")?;
        Ok(())
    })();
    // Without a COMMIT psql reaches the end of its input inside the
    // transaction, and the server rolls it back when the session ends.
    let replayed = finish(psql, "psql");
    let _ = restore.wait();
    replayed.context("replaying the backup (rolled back: the database is as it was)")?;
    fed.context("the restore was rolled back: the database is as it was")?;
    Ok(())
}

/// Other sessions connected to the database: a restore or a migration
/// window must not run under a live service.
pub fn other_sessions(client: &mut Client) -> anyhow::Result<Vec<String>> {
    let rows = client.query(
        "SELECT pid, COALESCE(NULLIF(application_name, ''), 'unnamed client'), \
                COALESCE(host(client_addr), 'local') \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND backend_type = 'client backend'",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "pid {} `{}` from {}",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2)
            )
        })
        .collect())
}

/// The database's size on disk: what a dump will hold at most.
pub fn database_bytes(client: &mut Client) -> anyhow::Result<u64> {
    let bytes: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])?
        .get(0);
    Ok(u64::try_from(bytes).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_is_read_from_the_history_table_copy_block() {
        let script = "SET x = 1;\nCOPY public.secrets (id, name) FROM stdin;\n9\tx\n\\.\n\
                      COPY public.refinery_schema_history (version, name, applied_on, checksum) FROM stdin;\n\
                      1\tinitial\t2026\t1\n4\tfour\t2026\t2\n3\tthree\t2026\t3\n\\.\n";
        assert_eq!(super::highest_version(script), Some(4));
        assert_eq!(super::highest_version("SET x = 1;\n"), None);
    }

    #[test]
    fn passwords_are_percent_decoded_for_pgpassword() {
        assert_eq!(
            secrets_contract::dburl::percent_decode("s3cr%21t%40x"),
            "s3cr!t@x"
        );
        assert_eq!(secrets_contract::dburl::percent_decode("100%"), "100%");
    }
}
