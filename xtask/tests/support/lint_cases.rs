//! The zero-downtime lint's cases (issue #12, items 4, 5 and 7), against the
//! shipped schema (`secrets`, `secret_access_log`), shared by the
//! `migrations check` test (SQLite, no server) and the `migrate --job` test
//! (real Postgres).

/// A V5 migration the lint must refuse: its shared file, its Postgres twin
/// (when the SQL is Postgres-only), and the rule and line it must report.
pub struct Case {
    pub shared: &'static str,
    pub twin: Option<&'static str>,
    /// The line of the finding in the file that carries the case's SQL.
    pub line: usize,
    pub rule: &'static str,
}

/// The file name of every case.
pub const V5: &str = "V5__lint_case.sql";

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
        "CREATE UNIQUE INDEX secrets_value_lint ON public.secrets (value);\n",
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
        "ALTER TABLE secrets ADD CONSTRAINT secrets_value_unique_lint UNIQUE (value);\n",
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
            "ALTER TABLE secrets ADD CONSTRAINT secrets_name_lint CHECK (name <> '') NOT VALID;\n",
        ),
    ),
    (
        PORTABLE_NOOP,
        Some("ALTER TABLE secrets ADD COLUMN seen_at TIMESTAMPTZ DEFAULT now();\n"),
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
];
