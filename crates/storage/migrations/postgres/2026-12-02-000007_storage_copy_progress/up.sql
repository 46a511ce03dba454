-- Checkpoints of `codeguardians storage copy`: the last key copied per source file and table,
-- written in the same transaction as the batch, so an interrupted copy resumes exactly there.
CREATE TABLE storage_copy_progress (
    source       text NOT NULL,
    table_name   text NOT NULL,
    last_key     text NOT NULL,
    rows_copied  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, table_name)
);
