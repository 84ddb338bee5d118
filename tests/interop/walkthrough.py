"""A stock Python client against the running system (the README's walk-through).

Stubs are generated from proto/ with grpcio-tools; tokens are verified with PyJWT
using nothing but the published JWKS. Usage: walkthrough.py AUTH_GRPC_ADDR AUTH_HTTP_URL USER_GRPC_ADDR STUBS_DIR SECRETS_OUT
(the secrets it used are written to SECRETS_OUT, one a line, so the caller can
check that none of them reached the service's log)
"""

import json
import sys
import urllib.request
import uuid

import grpc
import jwt

grpc_addr, http_url, user_addr, stubs, secrets_file = sys.argv[1:6]
sys.path.insert(0, stubs)

from identity.auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402
from identity.user.v1 import user_pb2, user_pb2_grpc  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
import time  # noqa: E402

channel = grpc.insecure_channel(grpc_addr)
auth = auth_pb2_grpc.AuthServiceStub(channel)

health = health_pb2_grpc.HealthStub(channel).Check(
    health_pb2.HealthCheckRequest(service="identity.auth.v1.AuthService")
)
assert health.status == health_pb2.HealthCheckResponse.SERVING, health

email = f"py-{uuid.uuid4().hex}@Example.com"
password = "a long python passphrase"
registered = auth.Register(auth_pb2.RegisterRequest(email=email, password=password, display_name="Py"))
login = auth.Login(auth_pb2.LoginRequest(email=email.lower(), password=password))
assert login.user_id == registered.user_id
assert login.token_type == "Bearer" and login.expires_in > 0

jwks = json.load(urllib.request.urlopen(f"{http_url}/.well-known/jwks.json"))
kid = jwt.get_unverified_header(login.access_token)["kid"]
key = next(k for k in jwks["keys"] if k["kid"] == kid)
claims = jwt.decode(
    login.access_token,
    key=jwt.PyJWK(key).key,
    algorithms=["ES256"],
    audience="identity-platform",
    issuer="identity-auth",
    options={"require": ["exp", "iat", "sub", "aud", "iss"]},
)
assert claims["sub"] == registered.user_id, claims
assert claims["sid"] == login.session_id, claims

# PyJWKClient, the way most Python services would do it.
client = jwt.PyJWKClient(f"{http_url}/.well-known/jwks.json")
signing_key = client.get_signing_key_from_jwt(login.access_token)
jwt.decode(login.access_token, signing_key.key, algorithms=["ES256"], audience="identity-platform")

valid = auth.ValidateToken(auth_pb2.ValidateTokenRequest(access_token=login.access_token))
assert valid.user_id == registered.user_id

for bad, code in [
    (lambda: auth.Register(auth_pb2.RegisterRequest(email="nope", password=password)), grpc.StatusCode.INVALID_ARGUMENT),
    (lambda: auth.Register(auth_pb2.RegisterRequest(email=email, password=password)), grpc.StatusCode.ALREADY_EXISTS),
    (lambda: auth.Login(auth_pb2.LoginRequest(email=email, password="wrong password")), grpc.StatusCode.UNAUTHENTICATED),
    (lambda: auth.ValidateToken(auth_pb2.ValidateTokenRequest(access_token="garbage")), grpc.StatusCode.UNAUTHENTICATED),
]:
    try:
        bad()
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details())
    else:
        raise AssertionError(f"expected {code}")

# The User Service: the profile appears (registration reached it through the
# outbox), and the user reads and updates it with their access token.
users = user_pb2_grpc.UserServiceStub(grpc.insecure_channel(user_addr))
auth_md = [("authorization", f"Bearer {login.access_token}")]
name = f"users/{login.user_id}"
for _ in range(100):
    try:
        profile = users.GetUser(user_pb2.GetUserRequest(name=name), metadata=auth_md).user
        break
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
        time.sleep(0.1)
else:
    raise AssertionError("the profile never appeared")
assert profile.email == email.lower() and profile.display_name == "Py", profile

updated = users.UpdateUser(
    user_pb2.UpdateUserRequest(
        user=user_pb2.User(name=name, display_name="Pythonista", time_zone="Europe/Paris", etag=profile.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "time_zone"]),
    ),
    metadata=auth_md,
).user
assert updated.display_name == "Pythonista" and updated.time_zone == "Europe/Paris", updated
try:
    users.UpdateUser(
        user_pb2.UpdateUserRequest(user=user_pb2.User(name=name, bio="x", etag=profile.etag),
                                   update_mask=field_mask_pb2.FieldMask(paths=["bio"])),
        metadata=auth_md,
    )
    raise AssertionError("stale etag accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.ABORTED, e
try:
    users.GetUser(user_pb2.GetUserRequest(name=name))
    raise AssertionError("no token accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
page = users.ListUsers(user_pb2.ListUsersRequest(page_size=10), metadata=auth_md)
assert any(u.id == login.user_id for u in page.users)

# A wrong password is refused without saying which part was wrong; a password
# change ends the other sessions.
try:
    auth.Login(auth_pb2.LoginRequest(email=email, password="not the password"))
    raise AssertionError("wrong password accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
new_password = "a new python passphrase"
other = auth.Login(auth_pb2.LoginRequest(email=email, password=password))
changed = auth.ChangePassword(
    auth_pb2.ChangePasswordRequest(old_password=password, new_password=new_password), metadata=auth_md)
assert changed.revoked_count >= 1, changed
check = auth.CheckPermission(auth_pb2.CheckPermissionRequest(
    access_token=login.access_token, permission="users:write", resource=name))
assert check.allowed, check

with open(secrets_file, "w") as f:
    f.write("\n".join([password, new_password, login.access_token, login.refresh_token,
                       other.access_token, other.refresh_token]) + "\n")

auth.Logout(auth_pb2.LogoutRequest(refresh_token=login.refresh_token))
try:
    auth.ValidateToken(auth_pb2.ValidateTokenRequest(access_token=login.access_token))
    raise AssertionError("token still valid after logout")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED

print("python walk-through: register, log in, PyJWT with the JWKS, read and update the profile, log out: ok")
