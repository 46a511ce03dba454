-- Checkpoints of `codeguardians storage copy` (kept in the PostgreSQL target; the table exists here
-- too so both backends carry the same migrations).
CREATE TABLE storage_copy_progress (
    source       TEXT NOT NULL,
    table_name   TEXT NOT NULL,
    last_key     TEXT NOT NULL,
    rows_copied  INTEGER NOT NULL,
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (source, table_name)
);
