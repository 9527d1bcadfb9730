-- Optional expiry (expand: a nullable column and an index; old code keeps working).
ALTER TABLE secrets ADD COLUMN expires_at TEXT;

CREATE INDEX secrets_expires_at ON secrets (expires_at);
