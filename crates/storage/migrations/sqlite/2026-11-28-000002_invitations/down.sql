DROP TABLE IF EXISTS organization_invitations;
