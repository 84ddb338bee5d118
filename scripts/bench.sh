#!/usr/bin/env bash
# Benchmarks the system against the machine's ceilings, in one run: builds the
# release binaries, starts both services on SQLite and on a throwaway PostgreSQL
# (like the tests'), drives every scenario and writes the table to
# target/bench.md. Extra arguments go to identity-bench (see --help), e.g.
#   scripts/bench.sh --backend postgres --scenarios validate,login --duration 30s
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p auth-service -p user-service -p identity-bench
target/release/identity-bench --bin-dir target/release --markdown target/bench.md "$@"
