-- Optional expiry (expand: a nullable column and an index; old code keeps working).
-- Postgres twin of ../V2__add_secret_expiry.sql.
-- contract: the index is built without CONCURRENTLY, blocking writes to `secrets` while it builds; Postgres
-- support is new in this release, so no Postgres database serves yet when V2 runs (a first deploy).
ALTER TABLE secrets ADD COLUMN expires_at TIMESTAMPTZ;

CREATE INDEX secrets_expires_at ON secrets (expires_at);
