-- The schema after every migration, written by `cargo xtask migrations check --bless`.
-- Do not edit: change the schema with a new migration, then bless.

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at TEXT NOT NULL,
    revoked_at TEXT CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);

CREATE TABLE secret_access_log (
    id INTEGER PRIMARY KEY,
    secret_id INTEGER NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('read')),
    accessed_at TEXT NOT NULL,
    token_name TEXT
);

CREATE TABLE "secrets" (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    created_at TEXT NOT NULL,
    expires_at TEXT CHECK (expires_at IS NULL OR expires_at > created_at),
    sealed_value BLOB NOT NULL,
    key_id TEXT NOT NULL
);

CREATE INDEX secret_access_log_secret_id ON secret_access_log (secret_id);

CREATE INDEX secrets_expires_at ON secrets (expires_at);
