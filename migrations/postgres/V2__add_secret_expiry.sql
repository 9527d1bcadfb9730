-- Optional expiry (expand: a nullable column and an index; old code keeps working).
-- Postgres twin of ../V2__add_secret_expiry.sql.
ALTER TABLE secrets ADD COLUMN expires_at TIMESTAMPTZ;

CREATE INDEX secrets_expires_at ON secrets (expires_at);
