#!/usr/bin/env bash
# Runs the whole system on embedded SQLite storage (files under ./data/), with
# nothing else installed: builds the release binaries and starts the Auth Service
# and the User Service wired to each other, in the foreground. Ctrl-C stops both
# gracefully. Every AUTH_* and USER_* variable of the README still applies.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p auth-service -p user-service
mkdir -p data

# The User Service calls the Auth Service as a service account, created once
# (its secret kept readable only by you, beside the databases).
if [ ! -s data/user-service.json ]; then
    (umask 077 && AUTH_LOG_FORMAT=json target/release/auth-service create-service-account \
        --name user-service --role identity-service > data/user-service.json 2>/dev/null)
fi

export AUTH_GRPC_ADDR="${AUTH_GRPC_ADDR:-127.0.0.1:50051}" AUTH_HTTP_ADDR="${AUTH_HTTP_ADDR:-127.0.0.1:8081}"
export USER_GRPC_ADDR="${USER_GRPC_ADDR:-127.0.0.1:50052}" USER_HTTP_ADDR="${USER_HTTP_ADDR:-127.0.0.1:8082}"
export AUTH_USER_URL="${AUTH_USER_URL:-http://$USER_GRPC_ADDR}" USER_AUTH_URL="${USER_AUTH_URL:-http://$AUTH_GRPC_ADDR}"
export USER_CLIENT_CREDENTIALS_FILE="${USER_CLIENT_CREDENTIALS_FILE:-data/user-service.json}"
export AUTH_LOG_FORMAT="${AUTH_LOG_FORMAT:-pretty}" USER_LOG_FORMAT="${USER_LOG_FORMAT:-pretty}"

pids=()
stop() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT

target/release/auth-service &
pids+=($!)
target/release/user-service &
pids+=($!)

cat <<MSG

  Auth Service  gRPC  $AUTH_GRPC_ADDR   (identity.auth.v1.AuthService)
                HTTP  http://$AUTH_HTTP_ADDR   /healthz /readyz /metrics /.well-known/jwks.json
                data  ${AUTH_DATABASE_URL:-sqlite:./data/auth.db}
  User Service  gRPC  $USER_GRPC_ADDR   (identity.user.v1.UserService)
                HTTP  http://$USER_HTTP_ADDR   /healthz /readyz /metrics
                data  ${USER_DATABASE_URL:-sqlite:./data/user.db}
  First administrator: target/release/auth-service create-admin --email you@example.com
  Stop both with Ctrl-C.

MSG
# If either service exits, stop the other.
wait -n "${pids[@]}"
