-- When the login a session was rotated from happened: a family lives at most
-- SESSION_MAX_LIFETIME from then, however often it rotates. Rows from before this column take
-- their own creation time.
ALTER TABLE sessions ADD COLUMN family_started_at timestamptz;
UPDATE sessions SET family_started_at = created_at;
ALTER TABLE sessions ALTER COLUMN family_started_at SET NOT NULL;
