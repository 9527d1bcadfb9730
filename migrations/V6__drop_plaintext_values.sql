-- contract: drops the plaintext `value` column (issue #14, the last step of
-- expand V5 → backfill `backend seal` → contract V6) and makes every secret
-- sealed (NOT NULL), in SQLite's table-rebuild procedure (see V3). It runs
-- in the maintenance window only: the release before V5 still reads
-- `value`, and the rebuild replaces the table.
-- The runner refuses it, inside its transaction (and the window's preflight
-- before anything goes down), while any secret is unsealed: dropping the
-- column then would lose that secret's value.
-- xtask: refuse-unless-zero: SELECT count(*) FROM secrets WHERE sealed_value IS NULL OR key_id IS NULL
-- xtask: hint: seal them first with `backend seal` (same DATABASE_URL and SECRETS_KEY_FILE as the service; it runs while the service serves and can be re-run), then run `cargo xtask migrate` again
-- xtask: check-backfill: UPDATE secrets SET sealed_value = zeroblob(41), key_id = 'check' WHERE sealed_value IS NULL OR key_id IS NULL
CREATE TABLE secrets_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    created_at TEXT NOT NULL,
    expires_at TEXT CHECK (expires_at IS NULL OR expires_at > created_at),
    sealed_value BLOB NOT NULL,
    key_id TEXT NOT NULL
);

INSERT INTO secrets_new (id, name, created_at, expires_at, sealed_value, key_id)
SELECT id, name, created_at, expires_at, sealed_value, key_id FROM secrets;

DROP TABLE secrets;

ALTER TABLE secrets_new RENAME TO secrets;

CREATE INDEX secrets_expires_at ON secrets (expires_at);
