CREATE TABLE organization_invitations (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            TEXT NOT NULL CHECK (email = lower(email)),
    role             TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    token_hash       TEXT NOT NULL UNIQUE,
    invited_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    expires_at       TEXT NOT NULL,
    accepted_at      TEXT,
    revoked_at       TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX organization_invitations_org_created_idx
    ON organization_invitations (organization_id, created_at DESC);
CREATE UNIQUE INDEX organization_invitations_open_idx ON organization_invitations (organization_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
