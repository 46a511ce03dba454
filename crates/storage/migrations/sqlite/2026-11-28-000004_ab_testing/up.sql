-- A/B experiments (see the PostgreSQL migration for what each table holds).
CREATE TABLE ab_experiments (
    id                 TEXT PRIMARY KEY NOT NULL,
    organization_id    TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL DEFAULT 'draft'
                       CHECK (status IN ('draft', 'running', 'paused', 'completed', 'cancelled')),
    variants           BLOB NOT NULL,
    primary_metric     BLOB NOT NULL,
    secondary_metrics  BLOB NOT NULL DEFAULT (jsonb('[]')),
    audience           BLOB NOT NULL DEFAULT (jsonb('{}')),
    confidence_level   REAL NOT NULL DEFAULT 0.95,
    created_by         TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    started_at         TEXT,
    ended_at           TEXT,
    UNIQUE (organization_id, name)
);
CREATE INDEX ab_experiments_org_status_idx ON ab_experiments (organization_id, status);

CREATE TABLE ab_assignments (
    experiment_id    TEXT NOT NULL REFERENCES ab_experiments (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    variant_name     TEXT NOT NULL,
    assigned_at      TEXT NOT NULL,
    PRIMARY KEY (experiment_id, user_id)
);
CREATE INDEX ab_assignments_org_user_idx ON ab_assignments (organization_id, user_id);

CREATE TABLE ab_results (
    id               TEXT NOT NULL,
    experiment_id    TEXT NOT NULL REFERENCES ab_experiments (id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL,
    variant_name     TEXT NOT NULL,
    user_id          TEXT,
    session_id       TEXT,
    metrics          BLOB NOT NULL,
    recorded_at      TEXT NOT NULL,
    PRIMARY KEY (experiment_id, id)
);
CREATE INDEX ab_results_experiment_idx ON ab_results (experiment_id, recorded_at);

CREATE TABLE ab_metric_totals (
    experiment_id  TEXT NOT NULL REFERENCES ab_experiments (id) ON DELETE CASCADE,
    variant_name   TEXT NOT NULL,
    metric         TEXT NOT NULL,
    n              INTEGER NOT NULL,
    total          REAL NOT NULL,
    total_sq       REAL NOT NULL,
    PRIMARY KEY (experiment_id, variant_name, metric)
);
