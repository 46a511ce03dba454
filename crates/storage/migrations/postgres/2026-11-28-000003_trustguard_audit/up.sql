-- One row per TrustGuard validation: scores and a hash of the content; the content itself only
-- when TRUSTGUARD_STORE_TEXT is on. No foreign key: a guard may be called without an organisation.
CREATE TABLE trustguard_audit_logs (
    id                  uuid NOT NULL,
    created_at          timestamptz NOT NULL,
    organization_id     uuid,
    request_id          text,
    validation_type     text NOT NULL,
    task                text,
    overall_score       double precision NOT NULL,
    trust_score         double precision NOT NULL,
    risk_level          text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    pattern_detections  jsonb NOT NULL DEFAULT '{}'::jsonb,
    evidence_counts     jsonb NOT NULL DEFAULT '{}'::jsonb,
    content_sha256      text NOT NULL,
    content_chars       bigint NOT NULL,
    analyzed_text       text,
    cached              boolean NOT NULL DEFAULT false,
    processing_time_ms  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX trustguard_audit_logs_org_created_idx ON trustguard_audit_logs (organization_id, created_at DESC);
SELECT cg_ensure_monthly_partitions('trustguard_audit_logs', 1, 3);
