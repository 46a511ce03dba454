-- When the login a session was rotated from happened: a family lives at most
-- SESSION_MAX_LIFETIME from then, however often it rotates. Rows from before this column take
-- their own creation time (SQLite cannot add a NOT NULL column without a constant default).
ALTER TABLE sessions ADD COLUMN family_started_at TEXT NOT NULL DEFAULT '1970-01-01T00:00:00.000Z';
UPDATE sessions SET family_started_at = created_at;
