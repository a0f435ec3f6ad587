# Shared helpers for setup.sh, demo.sh and test.sh. Every step checks before it acts, so
# running a script twice redoes nothing that is already done.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
PGRX_VERSION=0.18.1
# One dependency build instead of two for `cargo pgrx test` / `install`.
export CARGO_PGRX_DISABLE_GC_SECTIONS_WORKAROUND=1
export PATH="${HOME}/.cargo/bin:${PATH}"

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: PostgreSQL 15 server + headers, clang for bindgen, sudo for --runas.
ensure_packages() {
    local pkgs=(postgresql-${PG_MAJOR} postgresql-server-dev-${PG_MAJOR} clang libclang-dev pkg-config libssl-dev sudo python3)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -q "${PGRX_VERSION}"; then
        log "installing cargo-pgrx ${PGRX_VERSION} (takes several minutes once)"
        cargo install cargo-pgrx --version "${PGRX_VERSION}" --locked
    fi
    if ! grep -q "^pg${PG_MAJOR} *=" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
        log "cargo pgrx init --pg${PG_MAJOR} ${PG_CONFIG}"
        cargo pgrx init --pg${PG_MAJOR} "${PG_CONFIG}"
    fi
}

ensure_toolchain() {
    ensure_packages
    ensure_cargo_pgrx
}

# Build (release) and install the extension into Debian's PostgreSQL.
install_extension() {
    log "building and installing vsag into PostgreSQL ${PG_MAJOR}"
    (cd "$REPO" && as_root env "PATH=$PATH" "HOME=$HOME" CARGO_PGRX_DISABLE_GC_SECTIONS_WORKAROUND=1 \
        cargo pgrx install --release --pg-config "${PG_CONFIG}" >/dev/null)
    install_companion "${PG_CONFIG}"
}

# vsag_shards (parallel top-k over partitions, needs dblink) is a separate, plpgsql-only
# extension so `CREATE EXTENSION vsag` never needs dblink; cargo pgrx installs only vsag's files
# (its files live in shards/: a second .control file in the crate root would confuse cargo pgrx).
# Usage: install_companion PG_CONFIG
install_companion() {
    local ext
    ext="$("$1" --sharedir)/extension"
    as_root install -m 644 "$REPO"/shards/vsag_shards.control "$REPO"/shards/vsag_shards--*.sql "$ext/"
}

# A private cluster (own data directory and port) owned by the `postgres` OS user, because
# initdb refuses to run as root. Usage: start_cluster DIR PORT
start_cluster() {
    local dir="$1" port="$2"
    as_root mkdir -p "$dir"
    as_root chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        log "initdb $dir/data"
        as_root sudo -u postgres "${PG_BIN}/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    fi
    if ! as_root sudo -u postgres "${PG_BIN}/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        log "starting PostgreSQL on port $port (data: $dir/data)"
        as_root sudo -u postgres "${PG_BIN}/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
            -o "-p $port -k $dir -c listen_addresses='' -c shared_buffers=256MB -c maintenance_work_mem=1GB" start >/dev/null
    fi
}

# Python environment for the durability tests and the benchmark (psycopg, numpy; extra
# packages as arguments). Outside the repository so the `postgres` user can read it.
PYENV="${VSAG_PYENV:-/opt/vsag-venv}"
ensure_pyenv() {
    local pkgs=("psycopg[binary]" numpy "$@")
    if [ ! -x "$PYENV/bin/python" ]; then
        log "creating Python environment $PYENV"
        as_root python3 -m venv "$PYENV"
    fi
    local mods="psycopg, numpy"
    for p in "$@"; do mods="$mods, ${p//-/_}"; done
    "$PYENV/bin/python" -c "import $mods" 2>/dev/null || as_root "$PYENV/bin/pip" install -q "${pkgs[@]}"
}

stop_cluster() {
    local dir="$1"
    as_root sudo -u postgres "${PG_BIN}/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}
