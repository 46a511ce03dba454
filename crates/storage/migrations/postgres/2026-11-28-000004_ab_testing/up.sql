-- A/B experiments of an organisation. Variants (name, traffic split, guard overrides), metrics and
-- audience are JSON documents the gateway validates; they cannot change once the experiment has
-- started, so a user's hashed assignment never moves.
CREATE TABLE ab_experiments (
    id                 uuid PRIMARY KEY,
    organization_id    uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name               text NOT NULL,
    description        text NOT NULL DEFAULT '',
    status             text NOT NULL DEFAULT 'draft'
                       CHECK (status IN ('draft', 'running', 'paused', 'completed', 'cancelled')),
    variants           jsonb NOT NULL,
    primary_metric     jsonb NOT NULL,
    secondary_metrics  jsonb NOT NULL DEFAULT '[]'::jsonb,
    audience           jsonb NOT NULL DEFAULT '{}'::jsonb,
    confidence_level   double precision NOT NULL DEFAULT 0.95,
    created_by         uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    started_at         timestamptz,
    ended_at           timestamptz,
    UNIQUE (organization_id, name)
);
CREATE INDEX ab_experiments_org_status_idx ON ab_experiments (organization_id, status);

-- Who was put in which variant (first assignment wins; it equals the hash anyway).
CREATE TABLE ab_assignments (
    experiment_id    uuid NOT NULL REFERENCES ab_experiments (id) ON DELETE CASCADE,
    user_id          text NOT NULL,
    organization_id  uuid NOT NULL,
    variant_name     text NOT NULL,
    assigned_at      timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, user_id)
);
CREATE INDEX ab_assignments_org_user_idx ON ab_assignments (organization_id, user_id);

-- Each reported result, as sent. A client may name its own id so a retry is not counted twice;
-- ids are unique per experiment (one experiment's ids say nothing about another's).
CREATE TABLE ab_results (
    id               uuid NOT NULL,
    experiment_id    uuid NOT NULL REFERENCES ab_experiments (id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL,
    variant_name     text NOT NULL,
    user_id          text,
    session_id       text,
    metrics          jsonb NOT NULL,
    recorded_at      timestamptz NOT NULL,
    PRIMARY KEY (experiment_id, id)
);
CREATE INDEX ab_results_experiment_idx ON ab_results (experiment_id, recorded_at);

-- Running totals per variant and metric, updated with each result in the same transaction, so the
-- analysis reads a handful of rows however many results there are.
CREATE TABLE ab_metric_totals (
    experiment_id  uuid NOT NULL REFERENCES ab_experiments (id) ON DELETE CASCADE,
    variant_name   text NOT NULL,
    metric         text NOT NULL,
    n              bigint NOT NULL,
    total          double precision NOT NULL,
    total_sq       double precision NOT NULL,
    PRIMARY KEY (experiment_id, variant_name, metric)
);
