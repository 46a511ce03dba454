#!/usr/bin/env bash
# The original deployment's storage check, kept under its name: `codeguardians storage
# validate-storage` with the storage variables of the environment (DATABASE_URL, REDIS_*, S3_*,
# CONTEXTGUARD_*, HEALTHGUARD_DATABASE_URL). Arguments pass through (`--json`); exits 1 when a
# check fails. Uses `codeguardians` from PATH, else builds it from this source tree.
set -euo pipefail
if command -v codeguardians >/dev/null; then
  exec codeguardians storage validate-storage "$@"
fi
cd "$(dirname "$0")/.."
exec cargo run -q -p cg-cli --bin codeguardians -- storage validate-storage "$@"
