#!/usr/bin/env bash
# All tests: core unit tests, in-database pgrx tests, SQL regression tests (pg_regress).
# Prints a closing "N passed, N failed" line for the SQL suite.
source "$(dirname "$0")/lib.sh"
ensure_toolchain
cd "$REPO"

log "core unit tests (cargo test -p vsag-core)"
cargo test --release -p vsag-core

log "in-database tests (cargo pgrx test pg${PG_MAJOR})"
# initdb refuses root, so the test cluster runs as `postgres`; its data dir must be theirs.
PGRX_TEST_DATA="${VSAG_PGRX_TEST_PGDATA:-/tmp/pgrx-test-pgdata}"
if [ "$(id -u)" -eq 0 ]; then
    cargo pgrx test "pg${PG_MAJOR}" --runas postgres --pgdata "$PGRX_TEST_DATA"
else
    cargo pgrx test "pg${PG_MAJOR}"
fi

install_extension
bash "$REPO/scripts/regress.sh"
