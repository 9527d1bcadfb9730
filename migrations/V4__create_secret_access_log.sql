-- Audit trail: every reveal of a secret is recorded; deleting a secret deletes its log.
CREATE TABLE secret_access_log (
    id INTEGER PRIMARY KEY,
    secret_id INTEGER NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('read')),
    accessed_at TEXT NOT NULL
);

CREATE INDEX secret_access_log_secret_id ON secret_access_log (secret_id);
