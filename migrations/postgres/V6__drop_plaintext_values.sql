-- contract: drops the plaintext `value` column and makes every secret sealed.
-- Postgres twin of ../V6__drop_plaintext_values.sql (see it for why); here in
-- place, in one ALTER TABLE (one ACCESS EXCLUSIVE lock, one scan for NOT NULL).
-- xtask: refuse-unless-zero: SELECT count(*) FROM secrets WHERE sealed_value IS NULL OR key_id IS NULL
-- xtask: hint: seal them first with `backend seal` (same DATABASE_URL and SECRETS_KEY_FILE as the service; it runs while the service serves, on several hosts at once if you like, and can be re-run), then run `cargo xtask migrate` again
ALTER TABLE secrets
    DROP COLUMN value,
    ALTER COLUMN sealed_value SET NOT NULL,
    ALTER COLUMN key_id SET NOT NULL;

-- DROP COLUMN only hides the column: every row's old versions (the
-- plaintext ones `backend seal` replaced, and the dropped `value` itself)
-- would stay in the table's files until their space is reused. CLUSTER
-- writes the table and its indexes anew and removes the old files.
CLUSTER secrets USING secrets_pkey;
