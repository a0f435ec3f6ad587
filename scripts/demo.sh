#!/usr/bin/env bash
# Demo against a private cluster: a table of vectors, a vsag index, nearest-neighbour queries.
source "$(dirname "$0")/lib.sh"
DEMO_DIR="${VSAG_DEMO_DIR:-/tmp/vsag-demo}"
DEMO_PORT="${VSAG_DEMO_PORT:-5499}"
start_cluster "$DEMO_DIR" "$DEMO_PORT"
PSQL=(psql -X -v ON_ERROR_STOP=1 -h "$DEMO_DIR" -p "$DEMO_PORT" -U postgres)
"${PSQL[@]}" -q -tAc "SELECT 1 FROM pg_database WHERE datname='vsag_demo'" | grep -q 1 \
    || "${PSQL[@]}" -q -c "CREATE DATABASE vsag_demo"
log "running demo (psql -h $DEMO_DIR -p $DEMO_PORT -U postgres vsag_demo)"
"${PSQL[@]}" -d vsag_demo -f "$REPO/scripts/demo.sql"
