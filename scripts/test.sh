#!/usr/bin/env bash
# All tests: core unit tests, in-database pgrx tests, SQL regression tests (pg_regress),
# durability tests (crash recovery, streaming replica, concurrency, VACUUM churn) and the
# benchmark's smoke mode. VSAG_QUICK=1 skips the durability tests and the benchmark smoke.
# Every suite runs even if an earlier one failed; the last line sums the non-cargo suites.
source "$(dirname "$0")/lib.sh"
ensure_toolchain
cd "$REPO"
set +e
failures=0
total_passed=0
total_failed=0

suite() { # name, command...: runs it, records failure
    local name="$1"; shift
    log "$name"
    "$@"
    local rc=$?
    [ $rc -ne 0 ] && { failures=$((failures + 1)); echo "SUITE FAILED: $name (exit $rc)"; }
    return $rc
}

count_from() { # add "N passed, M failed" from the last such line of a log
    local line
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    [ -z "$line" ] && { total_failed=$((total_failed + 1)); return; }
    total_passed=$((total_passed + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")))
    total_failed=$((total_failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
}

suite "core unit tests (cargo test -p vsag-core)" cargo test --release -p vsag-core

PGRX_TEST_DATA="${VSAG_PGRX_TEST_PGDATA:-/tmp/pgrx-test-pgdata}"
if [ "$(id -u)" -eq 0 ]; then
    suite "in-database tests (cargo pgrx test pg${PG_MAJOR})" \
        cargo pgrx test "pg${PG_MAJOR}" --runas postgres --pgdata "$PGRX_TEST_DATA"
else
    suite "in-database tests (cargo pgrx test pg${PG_MAJOR})" cargo pgrx test "pg${PG_MAJOR}"
fi

set -e
install_extension
set +e
LOGS="$(mktemp -d)"
suite "SQL regression tests" bash "$REPO/scripts/regress.sh" 2>&1 | tee "$LOGS/regress.log"
[ "${PIPESTATUS[0]}" -ne 0 ] && failures=$((failures + 1))
count_from "$LOGS/regress.log"

if [ "${VSAG_QUICK:-0}" != 1 ]; then
    bash "$REPO/tests/durability/run.sh" 2>&1 | tee "$LOGS/durability.log"
    [ "${PIPESTATUS[0]}" -ne 0 ] && failures=$((failures + 1))
    count_from "$LOGS/durability.log"

    bash "$REPO/tests/tune/run.sh" 2>&1 | tee "$LOGS/tune.log"
    [ "${PIPESTATUS[0]}" -ne 0 ] && failures=$((failures + 1))
    count_from "$LOGS/tune.log"

    log "benchmark smoke (bench/run --smoke)"
    if "$REPO/bench/run" --smoke --out "$LOGS/bench-smoke" > "$LOGS/bench.log" 2>&1; then
        tail -20 "$LOGS/bench.log"
        total_passed=$((total_passed + 1))
        echo "bench smoke: 1 passed, 0 failed"
    else
        tail -40 "$LOGS/bench.log"
        total_failed=$((total_failed + 1)); failures=$((failures + 1))
        echo "bench smoke: 0 passed, 1 failed"
    fi

    # CREATE INDEX: cancellation in each phase, allocation failure as an ERROR (tests/build)
    bash "$REPO/tests/build/run.sh" 2>&1 | tee "$LOGS/build.log"
    [ "${PIPESTATUS[0]}" -ne 0 ] && failures=$((failures + 1))
    count_from "$LOGS/build.log"

    # PostgreSQL 16 and 18 from PyPI wheels: build, pg_regress, pgvector coexistence (scripts/test-versions.sh)
    bash "$REPO/scripts/test-versions.sh" 2>&1 | tee "$LOGS/versions.log"; [ "${PIPESTATUS[0]}" -ne 0 ] && failures=$((failures + 1)); count_from "$LOGS/versions.log"
fi

echo "sql+durability+bench: ${total_passed} passed, ${total_failed} failed"
[ "$failures" -eq 0 ]
