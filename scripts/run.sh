#!/usr/bin/env bash
# Runs the whole system on embedded SQLite storage (files under ./data/), with
# nothing else installed: builds the release binaries and starts them in the
# foreground. Ctrl-C stops everything gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p auth-service
mkdir -p data

pids=()
stop() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT

export AUTH_LOG_FORMAT="${AUTH_LOG_FORMAT:-pretty}"
target/release/auth-service &
pids+=($!)

cat <<MSG

  Auth Service  gRPC  ${AUTH_GRPC_ADDR:-127.0.0.1:50051}
                HTTP  http://${AUTH_HTTP_ADDR:-127.0.0.1:8081}  (/healthz /readyz /metrics /.well-known/jwks.json)
  Storage       ${AUTH_DATABASE_URL:-sqlite:./data/auth.db}
  Stop with Ctrl-C.

MSG
wait -n "${pids[@]}"
