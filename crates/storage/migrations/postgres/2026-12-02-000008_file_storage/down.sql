DROP INDEX files_org_status_idx;
DROP INDEX files_syncing_idx;
ALTER TABLE files DROP COLUMN stored_size_bytes;
ALTER TABLE files DROP COLUMN compression;
ALTER TABLE files DROP CONSTRAINT files_status_check;
UPDATE files SET status = 'uploaded' WHERE status IN ('stored', 'syncing');
ALTER TABLE files ADD CONSTRAINT files_status_check
    CHECK (status IN ('pending', 'uploaded', 'deleted'));
CREATE INDEX files_unsynced_idx ON files (created_at)
    WHERE synced_at IS NULL AND status = 'uploaded';
