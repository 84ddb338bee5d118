"""Real gateways in front of the running services: Envoy with ext_authz (gRPC to
the Auth Service) and nginx with auth_request (HTTP forward auth), each in front
of a small HTTP upstream that echoes the headers it receives, and Envoy also in
front of the User Service over gRPC.

Usage: gateways.py AUTH_GRPC AUTH_HTTP_URL USER_GRPC STUBS_DIR ADMIN_CREDENTIALS_JSON ENVOY NGINX WORKDIR
"""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import grpc
import jwt
import sqlite3
from cryptography.hazmat.primitives.serialization import load_der_private_key

auth_addr, http_url, user_addr, stubs, admin_file, envoy_bin, nginx_bin, work = sys.argv[1:9]
sys.path.insert(0, stubs)
from identity.auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402
from identity.user.v1 import user_pb2, user_pb2_grpc  # noqa: E402

auth_port = int(auth_addr.rsplit(":", 1)[1])
auth_http_port = int(http_url.rsplit(":", 1)[1])
user_port = int(user_addr.rsplit(":", 1)[1])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with the headers it received, and its request
    target as `:path`, as JSON."""

    def _echo(self):
        seen = {k.lower(): v for k, v in self.headers.items()}
        seen[":path"] = self.path
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _echo

    def log_message(self, *args):
        pass


echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=echo.serve_forever, daemon=True).start()
echo_port = echo.server_address[1]
envoy_port, envoy_admin, nginx_port = free_port(), free_port(), free_port()


def cluster(name, port, http2):
    c = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}],
        },
    }
    if http2:
        c["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return c


def needs(permission=None, resource=None):
    ext = {}
    if permission:
        ext["permission"] = permission
    if resource:
        ext["resource"] = resource
    return {"envoy.filters.http.ext_authz": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
        "check_settings": {"context_extensions": ext},
    }}


envoy_config = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": envoy_admin}}},
    "static_resources": {
        "listeners": [{
            "name": "gateway",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": envoy_port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "gateway",
                    "codec_type": "AUTO",
                    # As deploy/envoy/envoy.yaml: decide on, and forward, the normalised path.
                    "normalize_path": True,
                    "merge_slashes": True,
                    "path_with_escaped_slashes_action": "REJECT_REQUEST",
                    "route_config": {"virtual_hosts": [{
                        "name": "all",
                        "domains": ["*"],
                        "routes": [
                            {"match": {"prefix": "/identity.user.v1.UserService/"},
                             "route": {"cluster": "users", "timeout": "5s"},
                             "typed_per_filter_config": needs("users:read")},
                            {"match": {"prefix": "/users/"}, "route": {"cluster": "echo"},
                             "typed_per_filter_config": needs("users:write", "users/{path.2}")},
                            {"match": {"prefix": "/reports"}, "route": {"cluster": "echo"},
                             "typed_per_filter_config": needs("reports:read")},
                            {"match": {"prefix": "/public"}, "route": {"cluster": "echo"},
                             "typed_per_filter_config": {"envoy.filters.http.ext_authz": {
                                 "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
                                 "disabled": True}}},
                            {"match": {"prefix": "/"}, "route": {"cluster": "echo"}},
                        ],
                    }]},
                    "http_filters": [
                        {"name": "envoy.filters.http.ext_authz",
                         "typed_config": {
                             "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                             "transport_api_version": "V3",
                             "failure_mode_allow": False,
                             "grpc_service": {"envoy_grpc": {"cluster_name": "auth"}, "timeout": "1s"},
                         }},
                        {"name": "envoy.filters.http.router",
                         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                    ],
                },
            }]}],
        }],
        "clusters": [cluster("auth", auth_port, True), cluster("users", user_port, True),
                     cluster("echo", echo_port, False)],
    },
}
with open(f"{work}/envoy.json", "w") as f:
    json.dump(envoy_config, f)

nginx_conf = f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    server {{
        listen 127.0.0.1:{nginx_port};
        location = /_auth {{
            internal;
            proxy_pass http://127.0.0.1:{auth_http_port}/forward-auth$auth_query;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            # As deploy/nginx/nginx.conf: the target as sent, in the one header read.
            proxy_set_header X-Forwarded-Uri $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
        location /users/ {{
            set $auth_query "?permission=users:write&resource=users/%7Bpath.2%7D";
            auth_request /_auth;
            auth_request_set $user_id $upstream_http_x_user_id;
            auth_request_set $session_id $upstream_http_x_session_id;
            auth_request_set $user_roles $upstream_http_x_user_roles;
            proxy_set_header X-User-Id $user_id;
            proxy_set_header X-Session-Id $session_id;
            proxy_set_header X-User-Roles $user_roles;
            proxy_pass http://127.0.0.1:{echo_port};
        }}
        location / {{
            set $auth_query "";
            auth_request /_auth;
            auth_request_set $user_id $upstream_http_x_user_id;
            auth_request_set $session_id $upstream_http_x_session_id;
            auth_request_set $user_roles $upstream_http_x_user_roles;
            proxy_set_header X-User-Id $user_id;
            proxy_set_header X-Session-Id $session_id;
            proxy_set_header X-User-Roles $user_roles;
            proxy_pass http://127.0.0.1:{echo_port};
        }}
    }}
}}
"""
with open(f"{work}/nginx.conf", "w") as f:
    f.write(nginx_conf)

procs = [
    subprocess.Popen([envoy_bin, "-c", f"{work}/envoy.json", "--log-level", "warn",
                      "--base-id", str(os.getpid() % 60000)],
                     stdout=open(f"{work}/envoy.log", "w"), stderr=subprocess.STDOUT),
    subprocess.Popen([nginx_bin, "-p", work, "-c", f"{work}/nginx.conf"],
                     stdout=open(f"{work}/nginx.log", "w"), stderr=subprocess.STDOUT),
]


def stop():
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()


def request(port, method, path, token=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), None
    except (urllib.error.URLError, ConnectionError):
        return 0, {}, None


def raw_request(port, method, target, token, headers=()):
    """One HTTP/1.1 request written byte for byte (no client normalises or
    refuses the target): the status and, on 200, the upstream's echo."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: gateway",
             f"Authorization: Bearer {token}".encode(), b"Content-Length: 0", b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in headers]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    if b"transfer-encoding: chunked" in head.lower():
        chunks = b""
        while True:
            size, _, body = body.partition(b"\r\n")
            if int(size, 16) == 0:
                break
            chunks, body = chunks + body[:int(size, 16)], body[int(size, 16) + 2:]
        body = chunks
    return status, (json.loads(body) if status == 200 else None)


def _get(users, name, metadata):
    try:
        users.GetUser(user_pb2.GetUserRequest(name=name), metadata=metadata)
        return True
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, (e.code(), e.details())
        return False


def eventually(what, check, seconds=1.0):
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.02)


try:
    for port in (envoy_port, nginx_port):
        eventually(f"gateway on {port}", lambda: request(port, "GET", "/public")[0] in (200, 401), 20)

    auth = auth_pb2_grpc.AuthServiceStub(grpc.insecure_channel(auth_addr))
    password = "a gateway test passphrase"

    def new_user():
        email = f"gw-{uuid.uuid4().hex}@example.com"
        auth.Register(auth_pb2.RegisterRequest(email=email, password=password))
        return auth.Login(auth_pb2.LoginRequest(email=email, password=password))

    ada, bob = new_user(), new_user()
    admin_creds = json.load(open(admin_file))
    admin = auth.IssueServiceToken(auth_pb2.IssueServiceTokenRequest(
        client_id=admin_creds["client_id"], client_secret=admin_creds["client_secret"])).access_token
    admin_md = [("authorization", f"Bearer {admin}")]

    for name, port in (("envoy", envoy_port), ("nginx", nginx_port)):
        status, headers, _ = request(port, "GET", "/anything")
        assert status == 401, (name, status)
        assert headers.get("www-authenticate", headers.get("WWW-Authenticate")) == "Bearer", (name, headers)
        status, headers, _ = request(port, "GET", "/anything", token="garbage")
        assert status == 401, (name, status)
        assert 'error="invalid_token"' in (headers.get("www-authenticate") or headers.get("WWW-Authenticate")), (name, headers)

        status, _, seen = request(port, "GET", "/anything", token=ada.access_token,
                                  headers={"X-User-Id": "forged", "X-User-Roles": "admin"})
        assert status == 200, (name, status)
        assert seen["x-user-id"] == ada.user_id, (name, seen)
        assert seen["x-session-id"] == ada.session_id, (name, seen)
        assert seen["x-user-roles"] == "user", (name, seen)

        # A user may PATCH their own users/{id}, not another's.
        status, _, _ = request(port, "PATCH", f"/users/{ada.user_id}", token=ada.access_token)
        assert status == 200, (name, status)
        status, _, _ = request(port, "PATCH", f"/users/{ada.user_id}", token=bob.access_token)
        assert status == 403, (name, status)
    print("gateways: envoy and nginx allow, deny and forward identities as specified")

    # Forward auth reads only the header nginx sets: a client's own X-Original-URI
    # or X-Forwarded-Uri naming its own profile changes nothing, nor do raw bytes
    # (which nginx passes in $request_uri) make the Auth Service look elsewhere.
    mine = f"/users/{ada.user_id}"
    spoof = [("X-Original-URI", mine), ("X-Forwarded-Uri", mine)]
    for name, port in (("envoy", envoy_port), ("nginx", nginx_port)):
        for target in (f"/users/{bob.user_id}".encode(), f"/users/{bob.user_id}?note=".encode() + b"\xff\xfe"):
            status, seen = raw_request(port, "PATCH", target, ada.access_token, spoof)
            assert status in (400, 403), (name, target, status, seen)
    print("gateways: a client's own URI headers and raw bytes never decide (Envoy, nginx)")

    # Paths a server may read as another user's: refused, or normalised by the
    # gateway before the decision, so that what is allowed is what the upstream
    # receives, and it is never Bob's profile.
    a, b = ada.user_id, bob.user_id
    traversals = [
        f"/users/{a}/../{b}", f"/users/{a}/%2e%2e/{b}", f"/users/{a}/%2E%2E/{b}",
        f"/users/{a}/.%2e/{b}", f"/users/{a}/./../{b}", f"/users/{a}/..;/{b}",
        f"/users/{a};/../{b}", f"/users/{a}/..%2f{b}", f"/users/{a}/..%2F{b}",
        f"/users/{a}%2f..%2f{b}", f"/users/{a}/..%5c{b}", f"/users/{a}/..\\{b}",
        f"/users/{a}\\..\\{b}", f"/users/{a}//../{b}", f"/users/{a}/%2e%2e%2f{b}",
        f"/users/{a}/%2e%2e;/{b}", f"/users/%2e/{b}", f"/public/../users/{b}",
        # Ada's own, once normalised: Envoy normalises it, nginx's is refused.
        f"/users/{b}/../{a}",
    ]
    outcomes = {}
    for name, port in (("envoy", envoy_port), ("nginx", nginx_port)):
        for target in traversals:
            status, seen = raw_request(port, "PATCH", target.encode(), ada.access_token)
            if status == 200:
                # Allowed only on Ada's own, as the upstream receives it (Envoy
                # makes `/users/a//../b` `/users/a/b`, a path under Ada's).
                path = seen[":path"]
                assert path.split("/")[:3] == ["", "users", a], (name, target, path)
                assert not {".", "..", ""} & set(path.split("/")[1:]), (name, target, path)
                assert seen["x-user-id"] == a, (name, target, seen)
            else:
                assert status in (400, 403), (name, target, status)
            outcomes[(name, status)] = outcomes.get((name, status), 0) + 1
    assert outcomes.get(("nginx", 200)) is None, outcomes
    print(f"gateways: no traversal reaches another user's resource (status counts: {outcomes})")

    # Roles: granted and taken away take effect at the gateway within a second.
    try:
        auth.CreateRole(auth_pb2.CreateRoleRequest(role=auth_pb2.Role(
            name="reporter", description="reads reports", permissions=["reports:read"])), metadata=admin_md)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e
    assert request(envoy_port, "GET", "/reports", token=ada.access_token)[0] == 403
    auth.AssignRole(auth_pb2.AssignRoleRequest(subject_id=ada.user_id, role="reporter"), metadata=admin_md)
    eventually("a granted role is honoured", lambda: request(envoy_port, "GET", "/reports", token=ada.access_token)[0] == 200)
    auth.UnassignRole(auth_pb2.UnassignRoleRequest(subject_id=ada.user_id, role="reporter"), metadata=admin_md)
    eventually("a removed role is refused", lambda: request(envoy_port, "GET", "/reports", token=ada.access_token)[0] == 403)

    # gRPC through Envoy to the User Service: Envoy's denials reach gRPC clients as codes.
    users = user_pb2_grpc.UserServiceStub(grpc.insecure_channel(f"127.0.0.1:{envoy_port}"))
    name = f"users/{ada.user_id}"
    for metadata, code in (([], grpc.StatusCode.UNAUTHENTICATED),
                           ([("authorization", "Bearer garbage")], grpc.StatusCode.UNAUTHENTICATED)):
        try:
            users.GetUser(user_pb2.GetUserRequest(name=name), metadata=metadata)
            raise AssertionError("Envoy let an unauthenticated call through")
        except grpc.RpcError as e:
            assert e.code() == code, (e.code(), e.details())
    ada_md = [("authorization", f"Bearer {ada.access_token}")]
    eventually("the profile through Envoy", lambda: _get(users, name, ada_md), 10)

    # An expired token, properly signed with the service's own current key (that signed
    # Ada's token, read from its SQLite database: no KEK here), is refused like any invalid token.
    db = sqlite3.connect(os.path.join(os.path.dirname(admin_file), "auth.db"))
    kid = jwt.get_unverified_header(ada.access_token)["kid"]
    (der,) = db.execute("SELECT private_key FROM signing_keys WHERE kid = ? AND encrypted = 0", (kid,)).fetchone()
    db.close()
    claims = jwt.decode(ada.access_token, options={"verify_signature": False})
    claims["iat"], claims["exp"] = int(time.time()) - 3600, int(time.time()) - 1800
    claims.pop("nbf", None)
    expired = jwt.encode(claims, load_der_private_key(der, password=None), algorithm="ES256",
                         headers={"kid": kid})
    for name, port in (("envoy", envoy_port), ("nginx", nginx_port)):
        status, headers, _ = request(port, "GET", "/anything", token=expired)
        assert status == 401, (name, status)
        assert 'error="invalid_token"' in (headers.get("www-authenticate") or headers.get("WWW-Authenticate")), (name, headers)
    try:
        users.GetUser(user_pb2.GetUserRequest(name=name), metadata=[("authorization", f"Bearer {expired}")])
        raise AssertionError("expired token accepted through Envoy")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
    print("gateways: an expired, correctly signed token is refused by Envoy, nginx and gRPC through Envoy")

    # Logout: denied at both gateways within a second.
    auth.Logout(auth_pb2.LogoutRequest(refresh_token=ada.refresh_token))
    eventually("envoy refuses a revoked session", lambda: request(envoy_port, "GET", "/x", token=ada.access_token)[0] == 401)
    eventually("nginx refuses a revoked session", lambda: request(nginx_port, "GET", "/x", token=ada.access_token)[0] == 401)
    try:
        users.GetUser(user_pb2.GetUserRequest(name=name), metadata=ada_md)
        raise AssertionError("revoked token accepted through Envoy")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
    print("gateways: role changes and logout reach Envoy and nginx within a second; gRPC clients get codes")
finally:
    stop()
    echo.shutdown()
