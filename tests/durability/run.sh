#!/usr/bin/env bash
# Durability tests (crash recovery, streaming replica, concurrency, VACUUM churn) and the
# loopback sharding test (two postgres_fdw shards + a coordinator); each
# prints what it checked. Needs the extension installed into Debian's PostgreSQL 15.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../../scripts/lib.sh"
ensure_pyenv
cd "$HERE"
passed=0; failed=0
for t in ${VSAG_DURABILITY_TESTS:-crash replica concurrency dump churn shards}; do
    log "durability: $t"
    if "$PYENV/bin/python" "$t.py"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t"; fi
done
echo "durability: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
