-- contract: adds CHECK constraints to `secrets`, which an older release's writes may break.
-- Postgres twin of ../V3__secrets_check_constraints.sql: SQLite needs a table
-- rebuild for this, Postgres adds the constraints in place.
ALTER TABLE secrets
    ADD CONSTRAINT secrets_name_length CHECK (char_length(name) BETWEEN 1 AND 128),
    ADD CONSTRAINT secrets_value_size CHECK (octet_length(value) BETWEEN 1 AND 65536),
    ADD CONSTRAINT secrets_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at);
