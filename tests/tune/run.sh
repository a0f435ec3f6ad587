#!/usr/bin/env bash
# vsag_tune's recall/QPS claim on generated data (tests/tune/recall.py); needs the extension
# installed into the server in $VSAG_PG_BIN (default Debian's PostgreSQL 15), like tests/durability.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../../scripts/lib.sh"
ensure_pyenv
log "tune: recall"
if "$PYENV/bin/python" "$HERE/recall.py"; then echo "tune: 1 passed, 0 failed"; exit 0; fi
echo "tune: 0 passed, 1 failed"
exit 1
