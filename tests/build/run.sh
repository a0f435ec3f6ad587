#!/usr/bin/env bash
# CREATE INDEX under PostgreSQL's rules: cancellation in every build phase, and an
# allocation failure that becomes an ERROR (server under `ulimit -v`). Each test starts its
# own cluster (VSAG_PG_BIN, default Debian's PostgreSQL 15) with the extension installed.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../../scripts/lib.sh"
ensure_pyenv
cd "$HERE"
passed=0; failed=0
for t in ${VSAG_BUILD_TESTS:-cancel oom}; do
    log "build: $t"
    if "$PYENV/bin/python" "$t.py"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t"; fi
done
echo "build: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
