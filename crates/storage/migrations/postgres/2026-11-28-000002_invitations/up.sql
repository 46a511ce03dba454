-- Invitations to join an organisation: the token is sent to the invitee, only its hash is kept.
CREATE TABLE organization_invitations (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            text NOT NULL CHECK (email = lower(email)),
    role             text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    token_hash       text NOT NULL UNIQUE,
    invited_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    expires_at       timestamptz NOT NULL,
    accepted_at      timestamptz,
    revoked_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organization_invitations_org_created_idx
    ON organization_invitations (organization_id, created_at DESC);
-- One open invitation per address and organisation.
CREATE UNIQUE INDEX organization_invitations_open_idx ON organization_invitations (organization_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
