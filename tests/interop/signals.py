"""The security-event feed against an independent implementation: a stock Python
gRPC client subscribes (SubscribeSecurityEvents) and a plain HTTP client polls
(RFC 8936, found through /.well-known/ssf-configuration); a logout's SET from
each is verified with PyJWT against /.well-known/jwks.json alone.

Usage: signals.py AUTH_GRPC_ADDR AUTH_HTTP_URL STUBS_DIR ACCOUNT_JSON SECRETS_OUT
(ACCOUNT_JSON: a service account holding the identity-service role, as
`auth-service create-service-account` prints it; the secrets used are appended
to SECRETS_OUT so the caller can check none reached the service's log)
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import grpc
import jwt

grpc_addr, http_url, stubs, account_file, secrets_file = sys.argv[1:6]
sys.path.insert(0, stubs)

from identity.auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

account = json.load(open(account_file))
client_id, client_secret = account["client_id"], account["client_secret"]
auth = auth_pb2_grpc.AuthServiceStub(grpc.insecure_channel(grpc_addr))
token = auth.IssueServiceToken(
    auth_pb2.IssueServiceTokenRequest(client_id=client_id, client_secret=client_secret)
).access_token
with open(secrets_file, "a") as f:
    f.write(f"{client_secret}\n{token}\n")

config = json.load(urllib.request.urlopen(f"{http_url}/.well-known/ssf-configuration"))
assert config["spec_version"] == "1_0", config
assert "urn:ietf:rfc:8936" in config["delivery_methods_supported"], config
assert config["default_subjects"] == "ALL", config
issuer, poll_url = config["issuer"], config["delivery"]["endpoint_url"]
jwks = jwt.PyJWKClient(config["jwks_uri"])
basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def poll(body):
    request = urllib.request.Request(
        poll_url,
        data=json.dumps(body).encode(),
        headers={"Authorization": basic, "Content-Type": "application/json"},
        method="POST",
    )
    return json.load(urllib.request.urlopen(request, timeout=60))


def verify(set_jwt):
    """The SET's claims, checked the way any PyJWT user would."""
    header = jwt.get_unverified_header(set_jwt)
    assert header["typ"] == "secevent+jwt", header
    assert header["alg"] == "ES256", header
    key = jwks.get_signing_key_from_jwt(set_jwt).key
    return jwt.decode(
        set_jwt,
        key,
        algorithms=["ES256"],
        audience=client_id,
        issuer=issuer,
        options={"require": ["iss", "aud", "iat", "jti"]},
    )


# Unauthenticated and malformed polls are refused in RFC 8936's form.
for headers, body, status in [
    ({}, b"{}", 401),
    ({"Authorization": basic}, b'{"maxEvents": 5000}', 400),
]:
    try:
        urllib.request.urlopen(urllib.request.Request(poll_url, data=body, headers=headers, method="POST"))
    except urllib.error.HTTPError as e:
        assert e.code == status, (e.code, e.read())
        assert "err" in json.load(e), status
    else:
        raise AssertionError(f"expected {status}")

# Start caught up: acknowledge whatever the walk-through left.
ack = []
while True:
    got = poll({"returnImmediately": True, "maxEvents": 1000, "ack": ack})
    if not got["sets"]:
        break
    ack = list(got["sets"])

# A user logs in and out: one session-revoked event.
email = f"py-signals-{uuid.uuid4().hex}@example.com"
password = "a long python passphrase"
user = auth.Register(auth_pb2.RegisterRequest(email=email, password=password, display_name="Py"))
login = auth.Login(auth_pb2.LoginRequest(email=email, password=password))
auth.Logout(auth_pb2.LogoutRequest(refresh_token=login.refresh_token))
with open(secrets_file, "a") as f:
    f.write(f"{password}\n{login.access_token}\n{login.refresh_token}\n")


def check(claims, how):
    event = claims["events"][SESSION_REVOKED]
    assert claims["aud"] == client_id and claims["iss"] == issuer, (how, claims)
    sub_id = claims["sub_id"]
    assert sub_id["format"] == "complex", (how, claims)
    assert sub_id["user"] == {"format": "opaque", "id": user.user_id}, (how, claims)
    assert sub_id["session"] == {"format": "opaque", "id": login.session_id}, (how, claims)
    assert isinstance(event["event_timestamp"], int), (how, claims)


# gRPC: the stock client subscribes from the oldest event kept and finds it.
stream = auth.SubscribeSecurityEvents(
    auth_pb2.SubscribeSecurityEventsRequest(cursor="", event_types=[SESSION_REVOKED]),
    metadata=[("authorization", f"Bearer {token}")],
    timeout=30,
)
grpc_set = None
for message in stream:
    if not message.heartbeat and message.session_id == login.session_id:
        assert message.event_type == SESSION_REVOKED, message
        grpc_set = message.set
        break
stream.cancel()
assert grpc_set, "the gRPC feed carried the logout"
grpc_claims = verify(grpc_set)
check(grpc_claims, "grpc")

# HTTP poll (a long poll: it answers as soon as there is something).
started = time.monotonic()
got = poll({"returnImmediately": False, "maxEvents": 10})
assert time.monotonic() - started < 20, "the long poll answered at once: an event was waiting"
polled = [verify(s) for s in got["sets"].values()]
ours = [c for c in polled if c["sub_id"].get("session", {}).get("id") == login.session_id]
assert len(ours) == 1, polled
check(ours[0], "poll")
assert ours[0]["jti"] == grpc_claims["jti"], "the same event under the same jti on both"
assert set(got["sets"]) == {c["jti"] for c in polled}, "sets are keyed by their jti"

# Not acknowledged: the same again; acknowledged: never again.
again = poll({"returnImmediately": True})
assert set(again["sets"]) == set(got["sets"]), again
after = poll({"returnImmediately": True, "ack": list(got["sets"])})
assert not set(after["sets"]) & set(got["sets"]), after
print(f"interop: the logout's SET verified with PyJWT from the gRPC feed and the RFC 8936 poll (jti {grpc_claims['jti']})")
