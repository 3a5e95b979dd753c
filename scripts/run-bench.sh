#!/usr/bin/env bash
# Runs the benchmarks with real PostgreSQL and Redis servers. Usage: scripts/run-bench.sh STATEDIR
set -euo pipefail
cd "$(dirname "$0")/.."
state="${1:-.test-state}"
scripts/test-services.sh up "$state"
trap 'scripts/test-services.sh down "$state"' EXIT
# shellcheck disable=SC1090,SC1091
source "$state/env"
for bench in bench/*.py; do
  echo "== $bench"
  .venv/bin/python "$bench" --postgres-url "$CHATKEEP_TEST_POSTGRES_URL"
done
