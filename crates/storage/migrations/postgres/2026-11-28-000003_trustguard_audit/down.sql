DROP TABLE IF EXISTS trustguard_audit_logs;
