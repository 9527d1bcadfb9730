//! The zero-downtime lint's cases (issue #12, items 4, 5 and 7, and the
//! findings 1-6 and 10-12 of the second adversarial pass), against the
//! shipped schema (`secrets`, `secret_access_log`), shared by the
//! `migrations check` test (SQLite, no server) and the `migrate --job` test
//! (real Postgres).

/// A migration after the shipped ones the lint must refuse: its shared file, its Postgres twin
/// (when the SQL is Postgres-only), and the rule and line it must report.
pub struct Case {
    pub shared: &'static str,
    pub twin: Option<&'static str>,
    /// The line of the finding in the file that carries the case's SQL.
    pub line: usize,
    pub rule: &'static str,
}

/// The migration name of every case (as the xtask names it, without
/// `.sql`): the version after the shipped ones.
pub fn case_name() -> String {
    format!("V{}__lint_case", super::next())
}

/// The file name of every case.
pub fn case_file() -> String {
    format!("{}.sql", case_name())
}

/// What the shared file holds when the case lives in the twin: valid on
/// SQLite and changes nothing.
pub const PORTABLE_NOOP: &str = "-- only the Postgres twin matters here\nSELECT 1;\n";

/// Each case's SQL starts on line 2, below this comment.
pub const HEAD: &str = "-- an unmarked migration\n";

const fn shared(sql: &'static str, rule: &'static str) -> Case {
    Case {
        shared: sql,
        twin: None,
        line: 2,
        rule,
    }
}

const fn twin(sql: &'static str, rule: &'static str) -> Case {
    Case {
        shared: PORTABLE_NOOP,
        twin: Some(sql),
        line: 2,
        rule,
    }
}

/// A case whose finding is on `line`; in the twin when `twin` is `Some`.
const fn at(line: usize, sql: &'static str, twin: Option<()>, rule: &'static str) -> Case {
    match twin {
        Some(()) => Case {
            shared: PORTABLE_NOOP,
            twin: Some(sql),
            line,
            rule,
        },
        None => Case {
            shared: sql,
            twin: None,
            line,
            rule,
        },
    }
}

pub const CASES: &[Case] = &[
    // Item 4: the spellings the word-splitting lint missed.
    shared(
        "ALTER TABLE main.secret_access_log DROP COLUMN accessed_at;\n",
        "drop-column",
    ),
    twin(
        "ALTER TABLE public.secret_access_log DROP COLUMN accessed_at;\n",
        "drop-column",
    ),
    twin(
        "ALTER TABLE IF EXISTS secret_access_log DROP COLUMN accessed_at;\n",
        "drop-column",
    ),
    twin(
        "ALTER TABLE ONLY secret_access_log DROP COLUMN accessed_at;\n",
        "drop-column",
    ),
    twin(
        "ALTER TABLE secret_access_log ADD COLUMN note TEXT, DROP COLUMN accessed_at;\n",
        "drop-column",
    ),
    // Item 5: locking and breaking changes, Postgres.
    shared(
        "CREATE INDEX secrets_created_at_lint ON secrets (created_at);\n",
        "create-index-not-concurrently",
    ),
    twin(
        "CREATE UNIQUE INDEX secrets_key_id_lint ON public.secrets (key_id);\n",
        "create-index-not-concurrently",
    ),
    twin(
        "ALTER TABLE secrets ADD CONSTRAINT secrets_name_lint CHECK (name <> '');\n",
        "add-constraint-not-valid",
    ),
    twin(
        "ALTER TABLE secret_access_log ADD CONSTRAINT log_secret_lint FOREIGN KEY (secret_id) REFERENCES secrets (id);\n",
        "add-constraint-not-valid",
    ),
    twin(
        "ALTER TABLE secrets ALTER COLUMN expires_at SET NOT NULL;\n",
        "set-not-null",
    ),
    twin(
        "ALTER TABLE secrets ALTER COLUMN name TYPE varchar(200);\n",
        "alter-column-type",
    ),
    twin(
        "ALTER TABLE secrets ADD COLUMN token TEXT DEFAULT md5(random()::text);\n",
        "add-column-volatile-default",
    ),
    twin(
        "ALTER TABLE secrets ADD CONSTRAINT secrets_key_id_unique_lint UNIQUE (key_id);\n",
        "add-unique-constraint",
    ),
    twin("TRUNCATE secret_access_log;\n", "truncate"),
    twin("DROP TABLE secret_access_log;\n", "drop-table"),
    twin(
        "ALTER TABLE secret_access_log RENAME TO access_log;\n",
        "rename-table",
    ),
    twin(
        "ALTER TABLE secret_access_log RENAME COLUMN action TO kind;\n",
        "rename-column",
    ),
    // Item 7: CONCURRENTLY only alone, in a no-transaction file.
    twin(
        "CREATE INDEX CONCURRENTLY secrets_created_at_lint ON secrets (created_at);\n",
        "concurrently-in-transaction",
    ),
    Case {
        shared: PORTABLE_NOOP,
        twin: Some(
            "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY a_lint ON secrets (created_at);\nCREATE INDEX CONCURRENTLY b_lint ON secrets (name);\n",
        ),
        line: 3,
        rule: "no-transaction-one-statement",
    },
    // Pass 2, finding 1: only a plain CREATE TABLE of the same qualified
    // name in the same file makes a table new.
    at(
        3,
        "CREATE TABLE IF NOT EXISTS secrets (id INTEGER PRIMARY KEY);\nALTER TABLE secrets DROP COLUMN key_id;\n",
        None,
        "drop-column",
    ),
    at(
        3,
        "CREATE TABLE IF NOT EXISTS secrets (id int);\nALTER TABLE secrets ALTER COLUMN name TYPE varchar(300), ALTER COLUMN name SET NOT NULL;\n",
        Some(()),
        "alter-column-type",
    ),
    at(
        3,
        "CREATE TABLE \"SECRETS\" (id int);\nALTER TABLE secrets DROP COLUMN key_id;\n",
        Some(()),
        "drop-column",
    ),
    at(
        3,
        "CREATE TABLE \"SECRETS\" (id int);\nCREATE INDEX secrets_created_lint ON secrets (created_at);\n",
        Some(()),
        "create-index-not-concurrently",
    ),
    at(
        4,
        "CREATE SCHEMA s5;\nCREATE TABLE s5.secret_access_log (id int);\nDROP TABLE public.secret_access_log;\n",
        Some(()),
        "drop-table",
    ),
    at(
        3,
        "CREATE TEMP TABLE secrets (id int);\nALTER TABLE public.secrets RENAME COLUMN key_id TO key_id2;\n",
        Some(()),
        "rename-column",
    ),
    // Findings 2 and 3: code the lint cannot see, triggers and rules.
    twin(
        "CREATE FUNCTION f5() RETURNS int LANGUAGE sql AS 'DROP TABLE secret_access_log; SELECT 1';\n",
        "runs-code",
    ),
    twin(
        "CREATE FUNCTION f6() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE secret_access_log; END $$;\n",
        "runs-code",
    ),
    twin("SELECT f5();\n", "runs-code"),
    twin("CALL p5();\n", "runs-code"),
    twin(
        "DO $$ BEGIN EXECUTE 'DROP TABLE secret_access_log'; END $$;\n",
        "unknown-statement",
    ),
    twin(
        "CREATE TRIGGER t5 BEFORE INSERT ON secrets FOR EACH ROW EXECUTE FUNCTION f5();\n",
        "create-trigger",
    ),
    shared(
        "CREATE TRIGGER t5 BEFORE INSERT ON secrets BEGIN SELECT RAISE(ABORT, 'no'); END;\n",
        "create-trigger",
    ),
    twin(
        "CREATE RULE r5 AS ON DELETE TO secrets DO INSTEAD NOTHING;\n",
        "create-trigger",
    ),
    at(
        3,
        "CREATE TABLE pins (secret_id BIGINT NOT NULL REFERENCES secrets (id) ON DELETE RESTRICT);\nINSERT INTO pins SELECT id FROM secrets;\n",
        Some(()),
        "data-change",
    ),
    // Finding 4: a schema named like a role shadows `public` for that role.
    twin(
        "CREATE SCHEMA postgres;\nCREATE TABLE postgres.secrets (id int);\n",
        "create-schema",
    ),
    // Finding 5: a default is stable only when pg_catalog's; FKs and CHECKs
    // in ADD COLUMN.
    twin(
        "ALTER TABLE secrets ADD COLUMN r double precision DEFAULT s5.now();\n",
        "add-column-volatile-default",
    ),
    twin(
        "ALTER TABLE secrets ADD COLUMN parent_id BIGINT REFERENCES secrets (id);\n",
        "add-constraint-not-valid",
    ),
    twin(
        "ALTER TABLE secrets ADD COLUMN n INT DEFAULT 0 CHECK (n >= 0);\n",
        "add-constraint-not-valid",
    ),
    // Finding 6: session settings defeat the job's lock_timeout.
    twin(
        "SET lock_timeout = 0;\nALTER TABLE secrets ADD COLUMN note TEXT;\n",
        "session-setting",
    ),
    twin("SET LOCAL lock_timeout TO DEFAULT;\n", "session-setting"),
    twin("RESET lock_timeout;\n", "session-setting"),
    twin(
        "SELECT set_config('lock_timeout', '0', false);\n",
        "session-setting",
    ),
    twin(
        "SET session_replication_role = replica;\n",
        "session-setting",
    ),
    // Finding 10: dollar quoting hides no statement from the one-statement rule.
    Case {
        shared: PORTABLE_NOOP,
        twin: Some(
            "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY secrets_name_lint ON secrets (name) WHERE name <> $$'$$;\nDELETE FROM secret_access_log;\nSELECT $$'$$;\n",
        ),
        line: 3,
        rule: "no-transaction-one-statement",
    },
    // Finding 11: a marker inside a string or a nested comment is none.
    twin(
        "DROP TABLE secret_access_log;\nSELECT $$\n-- contract: not a comment, a string\n$$;\n",
        "drop-table",
    ),
    twin(
        "DROP TABLE secret_access_log;\nSELECT E'\\' -- contract: not a comment, a string';\n",
        "drop-table",
    ),
    twin(
        "DROP TABLE secret_access_log;\n/* /* */ -- contract: still inside a comment */\n",
        "drop-table",
    ),
    // Finding 12: DML, and constraints that tighten what writers may do.
    twin("DELETE FROM secrets;\n", "data-change"),
    shared("DELETE FROM secret_access_log;\n", "data-change"),
    twin("UPDATE secrets SET key_id = 'x';\n", "data-change"),
    twin(
        "WITH d AS (DELETE FROM secrets RETURNING 1) SELECT count(*) FROM d;\n",
        "data-change",
    ),
    twin(
        "ALTER TABLE secrets ADD CONSTRAINT secrets_name_nv_lint CHECK (name <> '') NOT VALID;\n",
        "tighten-constraint",
    ),
    Case {
        shared: PORTABLE_NOOP,
        twin: Some(
            "-- xtask: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY secrets_key_id_lint ON secrets (key_id);\n",
        ),
        line: 2,
        rule: "tighten-constraint",
    },
    // Pass 3, bypass 1: a same-file table that reaches an existing one
    // (partitions, inheritance) is no longer new.
    at(
        3,
        "CREATE TABLE p5 (id bigint) PARTITION BY RANGE (id);\nALTER TABLE p5 ATTACH PARTITION secret_access_log DEFAULT;\nDROP TABLE p5 CASCADE;\n",
        Some(()),
        "partition-or-inherit",
    ),
    at(
        4,
        "CREATE TABLE p5 (id bigint) PARTITION BY RANGE (id);\nALTER TABLE p5 ATTACH PARTITION secret_access_log DEFAULT;\nDELETE FROM p5;\n",
        Some(()),
        "data-change",
    ),
    at(
        3,
        "CREATE TABLE c5 (id bigint);\nALTER TABLE c5 INHERIT secrets;\n",
        Some(()),
        "partition-or-inherit",
    ),
    twin(
        "CREATE TABLE p5 PARTITION OF secrets DEFAULT;\n",
        "partition-or-inherit",
    ),
    twin(
        "CREATE TABLE c5 () INHERITS (secret_access_log);\n",
        "partition-or-inherit",
    ),
    twin(
        "ALTER TABLE secrets DETACH PARTITION secrets_old;\n",
        "partition-or-inherit",
    ),
    // Bypass 2: upserts rewrite existing rows.
    twin(
        "INSERT INTO secrets (name, key_id) VALUES ('a', 'b') ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id;\n",
        "data-change",
    ),
    twin(
        "INSERT INTO secrets (id, key_id) VALUES (1, 'b') ON CONFLICT ON CONSTRAINT secrets_pkey DO UPDATE SET key_id = 'x';\n",
        "data-change",
    ),
    shared(
        "INSERT OR REPLACE INTO secrets (id, name, sealed_value, key_id, created_at) VALUES (1, 'a', x'00', 'b', 'now');\n",
        "data-change",
    ),
    shared(
        "INSERT INTO secrets (id, name, sealed_value, key_id, created_at) VALUES (1, 'a', x'00', 'b', 'now') ON CONFLICT(id) DO UPDATE SET key_id = 'x';\n",
        "data-change",
    ),
    // Bypass 3: a locking clause holds row locks, whatever the statement.
    twin(
        "CREATE TABLE t5 AS SELECT id FROM secrets FOR UPDATE;\n",
        "row-lock",
    ),
    twin("SELECT id INTO t5 FROM secrets FOR UPDATE;\n", "row-lock"),
    twin(
        "CREATE TABLE t5 AS SELECT * FROM (SELECT id FROM secrets FOR NO KEY UPDATE) s;\n",
        "row-lock",
    ),
    twin(
        "CREATE TABLE t5 AS SELECT id FROM secrets FOR KEY SHARE;\n",
        "row-lock",
    ),
    twin("SELECT id FROM secrets FOR SHARE;\n", "row-lock"),
    // CREATE TABLE … AS runs its query: the query's functions count.
    twin(
        "CREATE TABLE t5 AS SELECT set_config('lock_timeout', '0', false) AS s;\n",
        "session-setting",
    ),
    twin(
        "CREATE TABLE t5 AS SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity;\n",
        "runs-code",
    ),
    // A statement the parser cannot read, or one the lint does not know.
    twin(
        "ALTER TABLE secrets FROBNICATE name;\n",
        "unknown-statement",
    ),
    twin("GRANT SELECT ON secrets TO PUBLIC;\n", "unknown-statement"),
];

/// Migrations that do what the rules ask, or say why they may not: the lint
/// passes them. (shared file, twin)
pub const ALLOWED: &[(&str, Option<&str>)] = &[
    (
        PORTABLE_NOOP,
        Some(
            "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY secrets_created_at_lint ON secrets (created_at);\n",
        ),
    ),
    (
        PORTABLE_NOOP,
        Some(
            "-- contract: every writer of the previous release sets a non-empty name\nALTER TABLE secrets ADD CONSTRAINT secrets_name_lint CHECK (name <> '') NOT VALID;\n",
        ),
    ),
    (
        PORTABLE_NOOP,
        Some("ALTER TABLE secrets ADD COLUMN seen_at TIMESTAMPTZ DEFAULT now();\n"),
    ),
    (
        PORTABLE_NOOP,
        Some("ALTER TABLE secrets ADD COLUMN seen_at TIMESTAMPTZ DEFAULT pg_catalog.now();\n"),
    ),
    (
        PORTABLE_NOOP,
        Some(
            "-- xtask: no-transaction\nCREATE INDEX CONCURRENTLY secrets_name_lint ON secrets (name) WHERE name <> $$a;b$$;\n",
        ),
    ),
    (
        PORTABLE_NOOP,
        Some(
            "-- contract: checked by hand, changes no table\nCREATE FUNCTION f7() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\n",
        ),
    ),
    (
        "CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO labels (name) VALUES ('a');\nALTER TABLE labels ADD COLUMN note TEXT;\n",
        None,
    ),
    (
        "CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nCREATE INDEX labels_name ON labels (name);\n",
        None,
    ),
    (
        PORTABLE_NOOP,
        Some(
            "-- contract: 0.5 no longer reads the log\nALTER TABLE ONLY public.secret_access_log DROP COLUMN accessed_at;\n",
        ),
    ),
    (
        PORTABLE_NOOP,
        Some(
            "-- contract: a maintenance release; nothing serves during it\nTRUNCATE secret_access_log;\n",
        ),
    ),
    // Partitions, parents and upserts among this file's own tables.
    (
        PORTABLE_NOOP,
        Some(
            "CREATE TABLE p5 (id bigint) PARTITION BY RANGE (id);\nCREATE TABLE p5_all PARTITION OF p5 DEFAULT;\nCREATE TABLE c5 () INHERITS (p5);\nINSERT INTO p5 (id) VALUES (1) ON CONFLICT DO NOTHING;\n",
        ),
    ),
    (
        "CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT);\nINSERT OR REPLACE INTO labels (id, name) VALUES (1, 'a');\nINSERT INTO labels (id, name) VALUES (1, 'b') ON CONFLICT(id) DO UPDATE SET name = excluded.name;\n",
        None,
    ),
    (
        PORTABLE_NOOP,
        Some(
            "INSERT INTO secrets (name, sealed_value, key_id, created_at) VALUES ('a', '\\x00', 'b', now()) ON CONFLICT (name) DO NOTHING;\n",
        ),
    ),
];
