#!/usr/bin/env bash
# Runs every test: unit tests, the services' integration tests over embedded SQLite
# and a throwaway PostgreSQL cluster (started by the tests themselves on a free
# port), and the interoperability check with a stock Python gRPC client and PyJWT.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests start their own PostgreSQL from Debian's server binaries.
if [ -z "${PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test.sh: installing PostgreSQL server binaries (Debian package 'postgresql')"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "test.sh: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin." >&2
        echo "         Install Debian's 'postgresql' package (sudo apt-get install postgresql)" >&2
        echo "         or point PG_BIN at a directory holding initdb and postgres." >&2
        exit 1
    fi
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "test.sh: running as root needs the 'postgres' OS user (initdb refuses root)" >&2
    exit 1
fi

# End-to-end tests start the services as real processes from target/.
cargo build --workspace --bins --locked
cargo test --workspace --locked
scripts/interop.sh
# The micro-benchmarks, each run once as a test (no timing), so they never rot.
cargo test -p auth-service --bench hot_paths --locked
# Every benchmark scenario for a second at tiny load, so the bench never rots:
# this asserts no request fails, never a speed.
"${CARGO_TARGET_DIR:-target}/debug/identity-bench" --smoke --bin-dir "${CARGO_TARGET_DIR:-target}/debug" \
    --envoy "${CARGO_TARGET_DIR:-target}/interop-venv/bin/envoy" > /dev/null
# The Signals scenario at tiny size on both backends (3 verifiers, 20
# revocations): it fails if a verifier keeps accepting a revoked token.
"${CARGO_TARGET_DIR:-target}/debug/identity-bench" signals --backend both --verifiers 3 \
    --sessions 20 --revocations 1000 > /dev/null
