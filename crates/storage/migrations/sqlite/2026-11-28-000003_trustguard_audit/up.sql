CREATE TABLE trustguard_audit_logs (
    id                  TEXT PRIMARY KEY NOT NULL,
    created_at          TEXT NOT NULL,
    organization_id     TEXT,
    request_id          TEXT,
    validation_type     TEXT NOT NULL,
    task                TEXT,
    overall_score       REAL NOT NULL,
    trust_score         REAL NOT NULL,
    risk_level          TEXT NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    pattern_detections  BLOB NOT NULL DEFAULT (jsonb('{}')),
    evidence_counts     BLOB NOT NULL DEFAULT (jsonb('{}')),
    content_sha256      TEXT NOT NULL,
    content_chars       INTEGER NOT NULL,
    analyzed_text       TEXT,
    cached              INTEGER NOT NULL DEFAULT 0,
    processing_time_ms  REAL NOT NULL DEFAULT 0
);
CREATE INDEX trustguard_audit_logs_org_created_idx ON trustguard_audit_logs (organization_id, created_at DESC);
