-- File storage (issue 15): statuses name where the bytes are (`stored` in the configured store,
-- `syncing` on a replica's local disk while S3 was away), and compression is recorded so
-- downloads can undo it.
ALTER TABLE files DROP CONSTRAINT files_status_check;
UPDATE files SET status = 'stored' WHERE status = 'uploaded';
ALTER TABLE files ADD CONSTRAINT files_status_check
    CHECK (status IN ('pending', 'stored', 'syncing', 'deleted'));
ALTER TABLE files ADD COLUMN compression text NOT NULL DEFAULT 'none'
    CHECK (compression IN ('none', 'zstd'));
-- Bytes actually stored (after compression); size_bytes stays the original length.
ALTER TABLE files ADD COLUMN stored_size_bytes bigint;
DROP INDEX files_unsynced_idx;
CREATE INDEX files_syncing_idx ON files (created_at) WHERE status = 'syncing';
CREATE INDEX files_org_status_idx ON files (organization_id, status, created_at DESC);
