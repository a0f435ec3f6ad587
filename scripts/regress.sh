#!/usr/bin/env bash
# SQL regression tests (tests/pg_regress/{sql,expected}) with pg_regress against a private
# cluster started as `postgres`. Assumes the extension is installed (scripts/test.sh does it).
source "$(dirname "$0")/lib.sh"
# Another PostgreSQL (scripts/test-versions.sh: the PyPI wheels' 16 and 18) via its bin directory.
if [ -n "${VSAG_REGRESS_PG_BIN:-}" ]; then
    PG_BIN="$VSAG_REGRESS_PG_BIN"
    PG_CONFIG="$PG_BIN/pg_config"
fi
REG_DIR="${VSAG_REGRESS_DIR:-/tmp/vsag-regress}"
REG_PORT="${VSAG_REGRESS_PORT:-5498}"
PG_REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
start_cluster "$REG_DIR" "$REG_PORT"

OUT="$REG_DIR/out"
as_root rm -rf "$OUT"
as_root mkdir -p "$OUT"
as_root chown postgres:postgres "$OUT"
# pg_regress writes results beside its input dir copy; give it a postgres-owned copy.
as_root cp -r "$REPO/tests/pg_regress/sql" "$REPO/tests/pg_regress/expected" "$OUT/"
as_root chown -R postgres:postgres "$OUT"

PSQL=("$PG_BIN/psql" -X -q -h "$REG_DIR" -p "$REG_PORT" -U postgres -d postgres)
"${PSQL[@]}" -c "DROP DATABASE IF EXISTS vsag_regress" -c "CREATE DATABASE vsag_regress"
# No autovacuum: its ANALYZE of an earlier test's table holds a snapshot, and a test's own
# VACUUM then cannot remove the row it just deleted (vsag_quantizers once saw "301 live,
# 0 deleted" on PostgreSQL 18 for that reason).
"${PSQL[@]}" -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null

mapfile -t TESTS < <(cd "$REPO/tests/pg_regress/sql" && ls *.sql | sed 's/\.sql$//' | sort)
log "pg_regress: ${#TESTS[@]} tests"
set +e
as_root sudo -u postgres "$PG_REGRESS" --use-existing --bindir="$PG_BIN" --host="$REG_DIR" --port="$REG_PORT" \
    --inputdir="$OUT" --outputdir="$OUT" --dbname=vsag_regress "${TESTS[@]}" | tee "$OUT/summary.txt"
status=${PIPESTATUS[0]}
set -e
total=${#TESTS[@]}
passed=$(grep -cE '\.\.\. ok|^ok ' "$OUT/summary.txt" || true)
[ -f "$OUT/regression.diffs" ] && [ "$status" -ne 0 ] && cat "$OUT/regression.diffs"
# Tests that never reported (pg_regress died, server gone) count as failed too.
failed=$((total - passed))
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "pg_regress: ${passed} passed, ${failed} failed"
exit "$status"
