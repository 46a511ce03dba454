ALTER TABLE sessions DROP COLUMN family_started_at;
