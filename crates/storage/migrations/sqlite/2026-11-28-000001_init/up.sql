-- The same tables as the PostgreSQL migration, in SQLite's types: uuids and timestamps are TEXT
-- (fixed-width RFC 3339 UTC, so they sort as text), JSON is SQLite's binary JSONB in a BLOB,
-- booleans INTEGER. No partitions: embedded mode is one machine.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    email               TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    full_name           TEXT NOT NULL DEFAULT '',
    is_active           INTEGER NOT NULL DEFAULT 1,
    is_superuser        INTEGER NOT NULL DEFAULT 0,
    email_verified      INTEGER NOT NULL DEFAULT 0,
    failed_login_count  INTEGER NOT NULL DEFAULT 0,
    locked_until        TEXT,
    last_login_at       TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK (email = lower(email))
);

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    owner_id    TEXT REFERENCES users (id) ON DELETE SET NULL,
    settings    BLOB NOT NULL DEFAULT (jsonb('{}')),
    is_active   INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX organizations_owner_id_idx ON organizations (owner_id);

CREATE TABLE organization_members (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role             TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (organization_id, user_id)
);
CREATE INDEX organization_members_user_id_idx ON organization_members (user_id);

CREATE TABLE subscription_tiers (
    id                         TEXT PRIMARY KEY NOT NULL,
    name                       TEXT NOT NULL UNIQUE,
    display_name               TEXT NOT NULL,
    requests_per_minute        INTEGER NOT NULL CHECK (requests_per_minute > 0),
    requests_per_month         INTEGER NOT NULL CHECK (requests_per_month > 0),
    monthly_budget_usd_micros  INTEGER NOT NULL CHECK (monthly_budget_usd_micros >= 0),
    guards_allowed             BLOB NOT NULL,
    price_usd_cents_monthly    INTEGER NOT NULL DEFAULT 0,
    features                   BLOB NOT NULL DEFAULT (jsonb('{}')),
    is_active                  INTEGER NOT NULL DEFAULT 1,
    created_at                 TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at                 TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO subscription_tiers
    (id, name, display_name, requests_per_minute, requests_per_month, monthly_budget_usd_micros,
     guards_allowed, price_usd_cents_monthly, features)
VALUES
    ('019ac000-0000-7000-8000-000000000001', 'free', 'Free', 60, 10000, 5000000,
     jsonb('["tokenguard","trustguard","biasguard"]'), 0,
     jsonb('{"ab_testing":false,"audit_retention_days":30}')),
    ('019ac000-0000-7000-8000-000000000002', 'pro', 'Pro', 600, 1000000, 500000000,
     jsonb('["tokenguard","trustguard","contextguard","biasguard","healthguard"]'), 9900,
     jsonb('{"ab_testing":true,"audit_retention_days":180}')),
    ('019ac000-0000-7000-8000-000000000003', 'enterprise', 'Enterprise', 6000, 100000000, 50000000000,
     jsonb('["tokenguard","trustguard","contextguard","biasguard","healthguard"]'), 0,
     jsonb('{"ab_testing":true,"audit_retention_days":730}'));

CREATE TABLE subscriptions (
    id                    TEXT PRIMARY KEY NOT NULL,
    organization_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tier_id               TEXT NOT NULL REFERENCES subscription_tiers (id),
    status                TEXT NOT NULL
                          CHECK (status IN ('active', 'inactive', 'canceled', 'past_due', 'unpaid', 'trialing')),
    current_period_start  TEXT NOT NULL,
    current_period_end    TEXT NOT NULL,
    cancel_at_period_end  INTEGER NOT NULL DEFAULT 0,
    canceled_at           TEXT,
    created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK (current_period_end > current_period_start)
);
CREATE INDEX subscriptions_org_created_idx ON subscriptions (organization_id, created_at DESC);
CREATE UNIQUE INDEX subscriptions_one_current_idx ON subscriptions (organization_id)
    WHERE status IN ('active', 'trialing', 'past_due');

CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    name             TEXT NOT NULL,
    prefix           TEXT NOT NULL,
    key_hash         TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    scopes           BLOB NOT NULL DEFAULT (jsonb('[]')),
    last_used_at     TEXT,
    expires_at       TEXT,
    revoked_at       TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX api_keys_org_created_idx ON api_keys (organization_id, created_at DESC);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY NOT NULL,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id           TEXT NOT NULL,
    refresh_token_hash  TEXT NOT NULL UNIQUE,
    user_agent          TEXT,
    ip_address          TEXT,
    expires_at          TEXT NOT NULL,
    revoked_at          TEXT,
    replaced_by         TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at        TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_family_id_idx ON sessions (family_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE usage_records (
    id                TEXT PRIMARY KEY NOT NULL,
    organization_id   TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    granularity       TEXT NOT NULL CHECK (granularity IN ('hour', 'day')),
    period_start      TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    guard             TEXT NOT NULL DEFAULT '',
    requests          INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    tokens_input      INTEGER NOT NULL DEFAULT 0,
    tokens_output     INTEGER NOT NULL DEFAULT 0,
    cost_usd_micros   INTEGER NOT NULL DEFAULT 0,
    latency_ms_total  INTEGER NOT NULL DEFAULT 0,
    latency_ms_max    INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (organization_id, granularity, period_start, endpoint, guard)
);
CREATE INDEX usage_records_org_period_idx ON usage_records (organization_id, granularity, period_start);

CREATE TABLE files (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    uploaded_by      TEXT REFERENCES users (id) ON DELETE SET NULL,
    filename         TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    size_bytes       INTEGER,
    storage_key      TEXT NOT NULL UNIQUE,
    storage_backend  TEXT NOT NULL CHECK (storage_backend IN ('s3', 'local')),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'uploaded', 'deleted')),
    etag             TEXT,
    checksum_sha256  TEXT,
    synced_at        TEXT,
    expires_at       TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at       TEXT
);
CREATE INDEX files_org_created_idx ON files (organization_id, created_at DESC);
CREATE INDEX files_unsynced_idx ON files (created_at) WHERE synced_at IS NULL AND status = 'uploaded';

CREATE TABLE biasguard_policies (
    id                TEXT PRIMARY KEY NOT NULL,
    organization_id   TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    enforcement_type  TEXT NOT NULL
                      CHECK (enforcement_type IN ('fairness_check', 'attribute_based', 'compliance', 'audit')),
    rules             BLOB NOT NULL DEFAULT (jsonb('{}')),
    priority          INTEGER NOT NULL DEFAULT 100,
    is_active         INTEGER NOT NULL DEFAULT 1,
    created_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (organization_id, name)
);
CREATE INDEX biasguard_policies_active_idx ON biasguard_policies (organization_id, priority) WHERE is_active;

CREATE TABLE biasguard_audit_logs (
    id                  TEXT PRIMARY KEY NOT NULL,
    created_at          TEXT NOT NULL,
    organization_id     TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    request_id          TEXT,
    operation           TEXT NOT NULL,
    decision            TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'review_required')),
    bias_score          REAL NOT NULL,
    bias_level          TEXT NOT NULL,
    bias_types          BLOB NOT NULL DEFAULT (jsonb('[]')),
    policy_ids          BLOB NOT NULL DEFAULT (jsonb('[]')),
    violations          BLOB NOT NULL DEFAULT (jsonb('[]')),
    warnings            BLOB NOT NULL DEFAULT (jsonb('[]')),
    fairness_metrics    BLOB NOT NULL DEFAULT (jsonb('{}')),
    request_context     BLOB NOT NULL DEFAULT (jsonb('{}')),
    analyzed_text       TEXT,
    processing_time_ms  REAL NOT NULL DEFAULT 0
);
CREATE INDEX biasguard_audit_logs_org_created_idx ON biasguard_audit_logs (organization_id, created_at DESC);

CREATE TABLE biasguard_policy_violations (
    id                    TEXT PRIMARY KEY NOT NULL,
    created_at            TEXT NOT NULL,
    organization_id       TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    policy_id             TEXT REFERENCES biasguard_policies (id) ON DELETE SET NULL,
    audit_log_id          TEXT,
    request_id            TEXT,
    violation_type        TEXT NOT NULL,
    severity              TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    impact_score          REAL NOT NULL,
    details               BLOB NOT NULL DEFAULT (jsonb('{}')),
    requires_remediation  INTEGER NOT NULL DEFAULT 0,
    resolved              INTEGER NOT NULL DEFAULT 0,
    resolved_at           TEXT,
    resolved_by           TEXT,
    resolution_notes      TEXT
);
CREATE INDEX biasguard_policy_violations_org_created_idx
    ON biasguard_policy_violations (organization_id, created_at DESC);
CREATE INDEX biasguard_policy_violations_open_idx
    ON biasguard_policy_violations (organization_id, severity) WHERE NOT resolved;

CREATE TABLE poisonguard_analysis_results (
    id                TEXT PRIMARY KEY NOT NULL,
    created_at        TEXT NOT NULL,
    organization_id   TEXT,
    request_id        TEXT,
    batch_id          TEXT NOT NULL,
    sample_id         TEXT NOT NULL,
    is_poisoned       INTEGER NOT NULL,
    confidence        REAL NOT NULL,
    label             TEXT,
    reasons           BLOB NOT NULL DEFAULT (jsonb('[]')),
    spans             BLOB NOT NULL DEFAULT (jsonb('[]')),
    detector_scores   BLOB NOT NULL DEFAULT (jsonb('{}')),
    content_sha256    TEXT NOT NULL,
    mitigation        TEXT
);
CREATE INDEX poisonguard_analysis_results_org_created_idx
    ON poisonguard_analysis_results (organization_id, created_at DESC);
CREATE INDEX poisonguard_analysis_results_batch_idx ON poisonguard_analysis_results (batch_id);

CREATE TABLE poisonguard_health_metrics (
    id              TEXT PRIMARY KEY NOT NULL,
    created_at      TEXT NOT NULL,
    instance        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('healthy', 'degraded', 'unhealthy')),
    memory_bytes    INTEGER NOT NULL,
    cpu_percent     REAL NOT NULL,
    in_flight       INTEGER NOT NULL,
    requests_total  INTEGER NOT NULL,
    details         BLOB NOT NULL DEFAULT (jsonb('{}'))
);
CREATE INDEX poisonguard_health_metrics_created_idx ON poisonguard_health_metrics (created_at DESC);
