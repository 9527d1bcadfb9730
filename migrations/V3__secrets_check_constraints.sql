-- contract: rebuilds `secrets` to add CHECK constraints, which ALTER TABLE cannot
-- add in SQLite. Follows SQLite's table-rebuild procedure
-- (https://www.sqlite.org/lang_altertable.html#otheralter): create the new
-- table, copy, drop the old one, rename, then recreate its indexes. refinery
-- runs this inside a transaction, and `cargo xtask migrate` switches foreign
-- key enforcement off around it, as the procedure requires.
CREATE TABLE secrets_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    value TEXT NOT NULL CHECK (length(CAST(value AS BLOB)) BETWEEN 1 AND 65536),
    created_at TEXT NOT NULL,
    expires_at TEXT CHECK (expires_at IS NULL OR expires_at > created_at)
);

INSERT INTO secrets_new (id, name, value, created_at, expires_at)
SELECT id, name, value, created_at, expires_at FROM secrets;

DROP TABLE secrets;

ALTER TABLE secrets_new RENAME TO secrets;

CREATE INDEX secrets_expires_at ON secrets (expires_at);
