#!/usr/bin/env bash
# The original deployment's HealthGuard migration, kept under its name:
#   scripts/migrate_healthguard_to_postgres.sh --from sqlite://./healthguard.db [--to postgres://…] [--dry-run]
# is `codeguardians storage migrate-healthguard-to-postgres` (docs/operations.md): a legacy
# HealthGuard SQLite database or this project's embedded file into PostgreSQL, idempotent,
# resumable, verified. Uses `codeguardians` from PATH, else builds it from this source tree.
set -euo pipefail
if command -v codeguardians >/dev/null; then
  exec codeguardians storage migrate-healthguard-to-postgres "$@"
fi
cd "$(dirname "$0")/.."
exec cargo run -q -p cg-cli --bin codeguardians -- storage migrate-healthguard-to-postgres "$@"
