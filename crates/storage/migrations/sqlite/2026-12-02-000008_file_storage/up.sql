-- File storage (issue 15): see the PostgreSQL migration. SQLite cannot change a CHECK constraint,
-- so the table is rebuilt (nothing references it).
CREATE TABLE files_new (
    id                 TEXT PRIMARY KEY NOT NULL,
    organization_id    TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    uploaded_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    filename           TEXT NOT NULL,
    content_type       TEXT NOT NULL,
    size_bytes         INTEGER,
    storage_key        TEXT NOT NULL UNIQUE,
    storage_backend    TEXT NOT NULL CHECK (storage_backend IN ('s3', 'local')),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'stored', 'syncing', 'deleted')),
    etag               TEXT,
    checksum_sha256    TEXT,
    synced_at          TEXT,
    expires_at         TEXT,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at         TEXT,
    compression        TEXT NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'zstd')),
    stored_size_bytes  INTEGER
);
INSERT INTO files_new (id, organization_id, uploaded_by, filename, content_type, size_bytes,
                       storage_key, storage_backend, status, etag, checksum_sha256, synced_at,
                       expires_at, created_at, updated_at, deleted_at)
SELECT id, organization_id, uploaded_by, filename, content_type, size_bytes, storage_key,
       storage_backend, CASE status WHEN 'uploaded' THEN 'stored' ELSE status END, etag,
       checksum_sha256, synced_at, expires_at, created_at, updated_at, deleted_at
FROM files;
DROP TABLE files;
ALTER TABLE files_new RENAME TO files;
CREATE INDEX files_org_created_idx ON files (organization_id, created_at DESC);
CREATE INDEX files_syncing_idx ON files (created_at) WHERE status = 'syncing';
CREATE INDEX files_org_status_idx ON files (organization_id, status, created_at DESC);
