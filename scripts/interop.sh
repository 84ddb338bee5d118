#!/usr/bin/env bash
# Interoperability: a Python client generated from proto/ with grpcio-tools talks to
# a real auth-service, and PyJWT verifies its tokens with the published JWKS alone.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CARGO_TARGET_DIR:-target}/interop-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/requirements.txt

work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

stubs="$work/stubs"
mkdir -p "$stubs"
"$venv/bin/python" -m grpc_tools.protoc -I proto --python_out="$stubs" --grpc_python_out="$stubs" \
    $(cd proto && find . -name '*.proto' | sed 's|^\./||')

target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --locked -q -p auth-service
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port)
http_port=$(free_port)
AUTH_GRPC_ADDR="127.0.0.1:$grpc_port" AUTH_HTTP_ADDR="127.0.0.1:$http_port" \
    AUTH_DATABASE_URL="sqlite:$work/auth.db" AUTH_LOG_FORMAT=json \
    "$target_dir/debug/auth-service" > "$work/auth.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/auth.log"; exit 1; }
    sleep 0.1
done
if ! "$venv/bin/python" tests/interop/auth_interop.py "127.0.0.1:$grpc_port" "http://127.0.0.1:$http_port" "$stubs" "$work/secrets"; then
    cat "$work/auth.log"
    exit 1
fi
# No password or token may reach the log.
if grep -F -f "$work/secrets" "$work/auth.log"; then
    echo "interop: a secret was written to the service's log" >&2
    exit 1
fi
echo "interop: no password or token in the service's log"
