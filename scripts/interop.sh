#!/usr/bin/env bash
# Interoperability and the README's walk-through: a Python client generated from
# proto/ with grpcio-tools talks to both services running as real processes on
# embedded SQLite; PyJWT verifies tokens with the published JWKS alone; no
# password or token may appear in either service's log.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
venv="$target_dir/interop-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/requirements.txt

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

stubs="$work/stubs"
mkdir -p "$stubs"
"$venv/bin/python" -m grpc_tools.protoc -I proto --python_out="$stubs" --grpc_python_out="$stubs" \
    $(cd proto && find . -name '*.proto' | sed 's|^\./||')

cargo build --locked -q -p auth-service -p user-service
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
auth_grpc=$(free_port); auth_http=$(free_port); user_grpc=$(free_port); user_http=$(free_port)
AUTH_DATABASE_URL="sqlite:$work/auth.db" "$target_dir/debug/auth-service" create-service-account \
    --name user-service --role identity-service > "$work/account.json" 2>/dev/null
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$work/account.json"; }
client_secret=$(json_field client_secret)
AUTH_DATABASE_URL="sqlite:$work/auth.db" "$target_dir/debug/auth-service" create-service-account \
    --name gateway-test-admin --role admin > "$work/admin.json" 2>/dev/null

# Notification sinks: a webhook receiver checking signatures and a real SMTP server.
hook_port=$(free_port); smtp_port=$(free_port)
notify_secret="whsec_$("$venv/bin/python" -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
mkdir -p "$work/sinks"
"$venv/bin/python" tests/interop/sinks.py "$hook_port" "$smtp_port" "$notify_secret" "$work/sinks" \
    > "$work/sinks.log" 2>&1 &
pids+=($!)

AUTH_GRPC_ADDR="127.0.0.1:$auth_grpc" AUTH_HTTP_ADDR="127.0.0.1:$auth_http" \
    AUTH_DATABASE_URL="sqlite:$work/auth.db" AUTH_USER_URL="http://127.0.0.1:$user_grpc" \
    AUTH_NOTIFY_URL="http://127.0.0.1:$hook_port/hooks" AUTH_NOTIFY_SECRET="$notify_secret" \
    AUTH_SMTP_URL="smtp://127.0.0.1:$smtp_port" AUTH_PUBLIC_URL="https://app.example" \
    "$target_dir/debug/auth-service" > "$work/auth.log" 2>&1 &
pids+=($!)
USER_GRPC_ADDR="127.0.0.1:$user_grpc" USER_HTTP_ADDR="127.0.0.1:$user_http" \
    USER_DATABASE_URL="sqlite:$work/user.db" USER_AUTH_URL="http://127.0.0.1:$auth_grpc" \
    USER_CLIENT_CREDENTIALS_FILE="$work/account.json" "$target_dir/debug/user-service" > "$work/user.log" 2>&1 &
pids+=($!)

for port in "$auth_http" "$user_http"; do
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
if ! "$venv/bin/python" tests/interop/walkthrough.py "127.0.0.1:$auth_grpc" "http://127.0.0.1:$auth_http" \
    "127.0.0.1:$user_grpc" "$stubs" "$work/secrets"; then
    cat "$work/auth.log" "$work/user.log"
    exit 1
fi
if ! "$venv/bin/python" tests/interop/signals.py "127.0.0.1:$auth_grpc" "http://127.0.0.1:$auth_http" \
    "$stubs" "$work/account.json" "$work/secrets"; then
    cat "$work/auth.log"
    exit 1
fi
if ! "$venv/bin/python" tests/interop/recovery.py "127.0.0.1:$auth_grpc" "$stubs" "$work/sinks" "$work/secrets"; then
    cat "$work/auth.log" "$work/sinks.log"; ls -la "$work/sinks"; cat "$work/sinks/"* 2>/dev/null | head -20
    exit 1
fi
echo "$notify_secret" >> "$work/secrets"
# A stock grpcurl (1.8.6 speaks only reflection v1alpha) lists and calls both services.
grpcurl="$venv/bin/grpcurl"
for addr in "127.0.0.1:$auth_grpc" "127.0.0.1:$user_grpc"; do
    services=$("$grpcurl" -plaintext "$addr" list)
    echo "$services" | grep -q '^identity\.\(auth\|user\)\.v1\.' \
        || { echo "interop: grpcurl cannot list $addr: $services" >&2; exit 1; }
done
"$grpcurl" -plaintext -d '{}' "127.0.0.1:$auth_grpc" identity.auth.v1.AuthService/GetJwks \
    | grep -q '"kty": "EC"' || { echo "interop: grpcurl GetJwks failed" >&2; exit 1; }
denied=$("$grpcurl" -plaintext -d '{"name":"users/00000000-0000-0000-0000-000000000000"}' \
    "127.0.0.1:$user_grpc" identity.user.v1.UserService/GetUser 2>&1 || true)
echo "$denied" | grep -q 'Unauthenticated' \
    || { echo "interop: grpcurl GetUser without a token: $denied" >&2; exit 1; }
echo "interop: stock grpcurl lists and calls both services"

# Real gateways in front of both services: Envoy (ext_authz) and nginx (auth_request).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "interop: installing nginx (Debian package 'nginx')"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    else
        echo "interop: nginx not found; install Debian's 'nginx' package" >&2
        exit 1
    fi
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
mkdir -p "$work/gateways"
if ! "$venv/bin/python" tests/gateways/gateways.py "127.0.0.1:$auth_grpc" "http://127.0.0.1:$auth_http" \
    "127.0.0.1:$user_grpc" "$stubs" "$work/admin.json" "$venv/bin/envoy" "$nginx_bin" "$work/gateways"; then
    cat "$work/gateways/envoy.log" "$work/gateways/nginx-error.log" 2>/dev/null | tail -50
    exit 1
fi
# The deployable examples are valid configurations for the same binaries.
"$venv/bin/envoy" --mode validate -c deploy/envoy/envoy.yaml --log-level error >/dev/null
sed 's/auth-service:8081/127.0.0.1:8081/; s/app:8080/127.0.0.1:8080/' deploy/nginx/nginx.conf > "$work/nginx-example.conf"
"$nginx_bin" -q -t -p "$work" -c "$work/nginx-example.conf" -g "pid $work/nginx-example.pid; error_log $work/nginx-example.log;"
echo "interop: deploy/envoy/envoy.yaml and deploy/nginx/nginx.conf are valid"
echo "$client_secret" >> "$work/secrets"
sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p' "$work/admin.json" >> "$work/secrets"
if grep -F -f "$work/secrets" "$work/auth.log" "$work/user.log"; then
    echo "interop: a secret was written to a service's log" >&2
    exit 1
fi
echo "interop: no password, token, one-time token, TOTP secret, recovery code or client secret in the services' logs"
