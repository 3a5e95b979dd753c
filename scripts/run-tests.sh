#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis servers (started here when missing,
# stopped again on exit only if started here). Usage: scripts/run-tests.sh STATEDIR [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
state="${1:-.test-state}"
shift || true

scripts/test-services.sh up "$state"
trap 'scripts/test-services.sh down "$state"' EXIT
# shellcheck disable=SC1090,SC1091
source "$state/env"

workers="${CHATKEEP_TEST_WORKERS:-2}"
.venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
