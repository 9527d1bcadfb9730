//! [`RULES`]: the one list of what the zero-downtime lint refuses, why, on
//! which engine, and what to write instead. `cargo xtask migrations rules`
//! prints it and docs/migrations.md carries it.

/// What a rule protects against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Breaks the previous release's code, which still runs during a
    /// rolling deploy. A `-- contract: <reason>` marker allows it.
    Contract,
    /// Locks a table (or rewrites it) for as long as the statement runs,
    /// stalling every request. A marker allows it (e.g. in a window).
    Locking,
    /// The lint cannot tell what the statement does. A marker allows it.
    Unknown,
    /// How the file is put together; no marker allows it.
    File,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Contract => "contract",
            Kind::Locking => "locking",
            Kind::Unknown => "unknown",
            Kind::File => "file",
        }
    }
}

/// A rule: its id, the engines it applies to, what it matches, why it
/// breaks a rolling deploy, and the safe way to do the same thing.
pub struct Rule {
    pub id: &'static str,
    pub kind: Kind,
    pub engines: &'static str,
    pub matches: &'static str,
    pub why: &'static str,
    pub recipe: &'static str,
}

const BOTH: &str = "SQLite, Postgres";
const PG: &str = "Postgres";

pub const RULES: &[Rule] = &[
    Rule {
        id: "drop-table",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "DROP TABLE",
        why: "code of the previous release still reads and writes the table",
        recipe: "stop using the table in one release, drop it in a later one with a `-- contract:` marker",
    },
    Rule {
        id: "drop-column",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "ALTER TABLE … DROP COLUMN (any schema, IF EXISTS, ONLY, or one action among several)",
        why: "code of the previous release still selects or inserts the column",
        recipe: "stop using the column in one release, drop it in a later one with a `-- contract:` marker",
    },
    Rule {
        id: "rename-table",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "ALTER TABLE … RENAME TO",
        why: "code of the previous release still uses the old table name",
        recipe: "create the new table, write to both, backfill, switch reads, then drop the old one (marked)",
    },
    Rule {
        id: "rename-column",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "ALTER TABLE … RENAME [COLUMN] … TO",
        why: "code of the previous release still uses the old column name",
        recipe: "add the new column, write to both, backfill, switch reads, then drop the old one (marked)",
    },
    Rule {
        id: "drop-index",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "DROP INDEX",
        why: "queries of the previous release may depend on it for speed or uniqueness",
        recipe: "drop it in a release after the last code that uses it, with a `-- contract:` marker",
    },
    Rule {
        id: "drop-view-or-trigger",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "DROP VIEW, DROP TRIGGER",
        why: "code of the previous release may read the view or rely on the trigger's effect",
        recipe: "drop it in a release after the last code that uses it, with a `-- contract:` marker",
    },
    Rule {
        id: "add-not-null-column",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "ALTER TABLE … ADD COLUMN … NOT NULL without DEFAULT",
        why: "inserts by the previous release do not set the new column and fail",
        recipe: "add it with a constant DEFAULT, or nullable; tighten it once every writer sets it",
    },
    Rule {
        id: "table-rebuild",
        kind: Kind::Contract,
        engines: "SQLite",
        matches: "CREATE TABLE x_new, copy, DROP TABLE x, ALTER TABLE x_new RENAME TO x (SQLite's way to change a type, constraint or key)",
        why: "the table is replaced: writes by the previous release during the copy are lost, and changed types or constraints can reject its writes",
        recipe: "run it in a maintenance window (`cargo xtask migrate`), marked `-- contract:`",
    },
    Rule {
        id: "truncate",
        kind: Kind::Contract,
        engines: PG,
        matches: "TRUNCATE",
        why: "it takes an ACCESS EXCLUSIVE lock and removes rows the previous release still reads",
        recipe: "delete in small batches (`DELETE … WHERE id IN (SELECT … LIMIT 1000)`), or mark it for a window",
    },
    Rule {
        id: "data-change",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "DELETE, UPDATE, MERGE, INSERT … SELECT, INSERT … ON CONFLICT … DO UPDATE, INSERT OR REPLACE, and a WITH hiding DELETE, UPDATE or INSERT, on a table not created by this file",
        why: "it removes or rewrites rows the previous release still reads (or fills a table whose foreign keys then refuse its deletes), and holds row locks on every row it touches",
        recipe: "do it in a migration of its own marked `-- contract:`, in small batches, once no running code depends on the old rows",
    },
    Rule {
        id: "partition-or-inherit",
        kind: Kind::Contract,
        engines: PG,
        matches: "CREATE TABLE … PARTITION OF or INHERITS, ALTER TABLE … ATTACH or DETACH PARTITION, INHERIT or NO INHERIT, naming a table not created by this file (also through a table this file created)",
        why: "readers of the parent table then see (or stop seeing) other rows, writes to the parent can reach the child, and ATTACH or DETACH take an ACCESS EXCLUSIVE lock",
        recipe: "do it in a migration of its own marked `-- contract:`, once no running code depends on the tables' rows",
    },
    Rule {
        id: "row-lock",
        kind: Kind::Locking,
        engines: PG,
        matches: "a query with FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE or FOR KEY SHARE (SELECT, SELECT … INTO, CREATE TABLE … AS, INSERT … SELECT)",
        why: "it locks every row it reads until the migration commits, blocking the previous release's writes to them",
        recipe: "drop the locking clause, or mark it `-- contract:` for a window",
    },
    Rule {
        id: "create-trigger",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "CREATE [OR REPLACE] TRIGGER, CREATE RULE",
        why: "it changes what every write of the previous release does, and can make its writes fail",
        recipe: "make sure the previous release's writes pass it, then create it in a migration marked `-- contract:`",
    },
    Rule {
        id: "tighten-constraint",
        kind: Kind::Contract,
        engines: BOTH,
        matches: "ALTER TABLE … ADD CONSTRAINT … NOT VALID, CREATE UNIQUE INDEX [CONCURRENTLY], on a table not created by this file",
        why: "NOT VALID skips the scan of old rows, but new writes of the previous release that break the constraint fail from now on",
        recipe: "check that every writer of the previous release obeys it, then add it in a migration marked `-- contract:`",
    },
    Rule {
        id: "create-index-not-concurrently",
        kind: Kind::Locking,
        engines: PG,
        matches: "CREATE [UNIQUE] INDEX on a table of an earlier migration, without CONCURRENTLY",
        why: "it blocks every write to the table until the index is built",
        recipe: "`CREATE INDEX CONCURRENTLY`, alone in a Postgres twin marked `-- xtask: no-transaction`",
    },
    Rule {
        id: "add-constraint-not-valid",
        kind: Kind::Locking,
        engines: PG,
        matches: "ALTER TABLE … ADD CONSTRAINT … CHECK or FOREIGN KEY without NOT VALID, or ADD COLUMN … REFERENCES or … CHECK, on a table not created by this file",
        why: "it checks every row while holding a lock that blocks writes (a foreign key also locks the referenced table)",
        recipe: "`ADD CONSTRAINT … NOT VALID` in one migration, `ALTER TABLE … VALIDATE CONSTRAINT …` in the next",
    },
    Rule {
        id: "add-unique-constraint",
        kind: Kind::Locking,
        engines: PG,
        matches: "ALTER TABLE … ADD [CONSTRAINT] UNIQUE or PRIMARY KEY (also ADD COLUMN … UNIQUE) on a table of an earlier migration",
        why: "it builds a unique index while blocking every read and write of the table",
        recipe: "`CREATE UNIQUE INDEX CONCURRENTLY` in a no-transaction file, then `ADD CONSTRAINT … UNIQUE USING INDEX …` (marked)",
    },
    Rule {
        id: "set-not-null",
        kind: Kind::Locking,
        engines: PG,
        matches: "ALTER TABLE … ALTER COLUMN … SET NOT NULL",
        why: "it scans the whole table under an ACCESS EXCLUSIVE lock, and inserts by the previous release that leave the column out fail",
        recipe: "`ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID`, then `VALIDATE CONSTRAINT c`; SET NOT NULL then skips the scan (marked)",
    },
    Rule {
        id: "alter-column-type",
        kind: Kind::Locking,
        engines: PG,
        matches: "ALTER TABLE … ALTER COLUMN … [SET DATA] TYPE",
        why: "most type changes rewrite the table and its indexes under an ACCESS EXCLUSIVE lock, and the previous release may write values the new type rejects",
        recipe: "add a column of the new type, write to both, backfill in batches, switch reads, drop the old one (marked)",
    },
    Rule {
        id: "add-column-volatile-default",
        kind: Kind::Locking,
        engines: PG,
        matches: "ALTER TABLE … ADD COLUMN with a DEFAULT calling a function other than now() and its kin (unqualified or `pg_catalog.` only: `s.now()` is someone else's), or GENERATED … STORED, or a serial/identity column",
        why: "the table is rewritten under an ACCESS EXCLUSIVE lock (issue #12 measured 5.95 s on 1 M rows, every write stalled)",
        recipe: "add the column without a default (or with a constant one), then backfill in batches",
    },
    Rule {
        id: "runs-code",
        kind: Kind::Unknown,
        engines: BOTH,
        matches: "CREATE FUNCTION or PROCEDURE, CALL, CREATE EXTENSION, a query calling a function outside a short list of pure built-ins",
        why: "the code runs SQL the lint cannot see: it can drop, rewrite or lock any table",
        recipe: "write the DDL as plain statements the lint can read, or check the code by hand and say why it is safe with a `-- contract:` marker",
    },
    Rule {
        id: "create-schema",
        kind: Kind::Unknown,
        engines: PG,
        matches: "CREATE SCHEMA",
        why: "a schema on the search_path (e.g. one named like the role, `\"$user\"`) shadows `public`: sessions then read the new, empty tables",
        recipe: "check the schema is on no role's search_path, then create it in a migration marked `-- contract:`",
    },
    Rule {
        id: "session-setting",
        kind: Kind::Unknown,
        engines: PG,
        matches: "SET, RESET, set_config(…)",
        why: "it can turn off the lock_timeout and statement_timeout the runner sets (a blocked migration then waits for ever), or triggers and foreign keys (session_replication_role)",
        recipe: "leave the session to the runner (`migrate --job` sets lock_timeout); if it is deliberate, say why with a `-- contract:` marker",
    },
    Rule {
        id: "unknown-statement",
        kind: Kind::Unknown,
        engines: BOTH,
        matches: "a statement the parser cannot read, or one the lint does not classify",
        why: "the lint cannot tell whether it locks a table or breaks the previous release",
        recipe: "rewrite it in a form the lint knows, or say why it is safe with a `-- contract:` marker",
    },
    Rule {
        id: "mixed-file",
        kind: Kind::File,
        engines: BOTH,
        matches: "expand and contract statements in one migration",
        why: "expand must run before the new code rolls out and contract after the old code is gone; one file cannot do both",
        recipe: "split it: the expand statements in this release, the contract ones in a later migration",
    },
    Rule {
        id: "concurrently-in-transaction",
        kind: Kind::File,
        engines: PG,
        matches: "CONCURRENTLY in a file without `-- xtask: no-transaction`",
        why: "Postgres refuses CONCURRENTLY inside a transaction, and every other migration runs in one",
        recipe: "move the statement alone into a file marked `-- xtask: no-transaction`",
    },
    Rule {
        id: "no-transaction-one-statement",
        kind: Kind::File,
        engines: BOTH,
        matches: "a `-- xtask: no-transaction` file with other than exactly one statement",
        why: "outside a transaction a failure half-way leaves the statements before it applied",
        recipe: "one statement per no-transaction file; put the others in migrations of their own",
    },
];

/// The rule of `id` (every id the lint reports is in [`RULES`]).
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// [`RULES`] as a Markdown table: `cargo xtask migrations rules` prints it
/// and docs/migrations.md carries it (a test keeps the two in step).
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "| rule | kind | engines | matches | why it breaks a rolling deploy | do instead |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in RULES {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.id,
            r.kind.word(),
            r.engines,
            r.matches,
            r.why,
            r.recipe
        ));
    }
    out
}
