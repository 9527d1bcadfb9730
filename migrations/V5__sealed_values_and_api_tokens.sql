-- expand: encryption at rest and API tokens (issue #14). Additive only, so the
-- previous release keeps serving while this one rolls out:
--   * `sealed_value` holds the AEAD-sealed value (nonce and ciphertext) and
--     `key_id` names the key that sealed it; both stay NULL on rows the
--     previous release wrote until `backend seal` (the backfill) seals them;
--   * `api_tokens` holds SHA-256 hashes of the bearer tokens, never a token;
--     a revoked token keeps its row (and so its name) with `revoked_at` set;
--   * `secret_access_log.token_name` records which token read a secret.
-- The plaintext `value` column goes in a later contract migration, once no
-- row needs it.
ALTER TABLE secrets ADD COLUMN sealed_value BLOB;

ALTER TABLE secrets ADD COLUMN key_id TEXT;

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at TEXT NOT NULL,
    revoked_at TEXT CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);

ALTER TABLE secret_access_log ADD COLUMN token_name TEXT;
