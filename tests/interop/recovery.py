"""The README's second walk-through, from a stock Python client: verify an email
address, recover a forgotten password from the mail a real SMTP server received,
and turn on two-factor login with codes from PyPI's pyotp.

Usage: recovery.py AUTH_GRPC_ADDR STUBS_DIR SINKS_DIR SECRETS_OUT
(every token, secret and code it saw is appended to SECRETS_OUT, so the caller
can check that none of them reached a service's log)
"""

import base64
import email as mime
import json
import os
import re
import sys
import time
import uuid

import grpc
import pyotp

grpc_addr, stubs, sinks, secrets_file = sys.argv[1:5]
sys.path.insert(0, stubs)
from identity.auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402

auth = auth_pb2_grpc.AuthServiceStub(grpc.insecure_channel(grpc_addr))
seen = []


def lines(name):
    path = os.path.join(sinks, name)
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []


def wait(what, find, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what}")


def mail_link(to, page):
    """The token of the latest mail to `to` linking to `page`."""
    def find():
        for m in reversed(lines("mail.jsonl")):
            if to in m["to"]:
                body = mime.message_from_string(m["content"]).get_payload(decode=True).decode()
                hit = re.search(rf"https://app\.example/{page}\?token=([A-Za-z0-9_-]{{43}})", body)
                if hit:
                    return hit.group(1)
    return wait(f"mail to {to} with a {page} link", find)


def webhook(kind, to):
    return wait(f"{kind} webhook to {to}", lambda: [
        e for e in (r["event"] for r in lines("webhook.jsonl"))
        if e["type"] == kind and e["data"]["email"] == to])


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def refused(call, code):
    try:
        call()
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details())
        return
    raise AssertionError(f"expected {code}")


email = f"recover-{uuid.uuid4().hex}@example.com"
password, new_password = "a long python passphrase", "an even longer new passphrase"
auth.Register(auth_pb2.RegisterRequest(email=email, password=password))

# 1. Verify the address, from the mail (the webhook got the same event, signed).
token = mail_link(email, "verify-email")
webhook("identity.email_verification.requested", email)
seen.append(token)
before = auth.Login(auth_pb2.LoginRequest(email=email, password=password))
assert claims(before.access_token)["email_verified"] is False
auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token))
refused(lambda: auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token)), grpc.StatusCode.UNAUTHENTICATED)
after = auth.Login(auth_pb2.LoginRequest(email=email, password=password))
assert claims(after.access_token)["email_verified"] is True
print("recovery: email verified from the link in a real mail")

# 2. The forgotten password.
auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=f"nobody-{uuid.uuid4().hex}@example.com"))
token = mail_link(email, "reset-password")
seen.append(token)
auth.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=new_password))
refused(lambda: auth.Login(auth_pb2.LoginRequest(email=email, password=password)), grpc.StatusCode.UNAUTHENTICATED)
refused(lambda: auth.ValidateToken(auth_pb2.ValidateTokenRequest(access_token=after.access_token)),
        grpc.StatusCode.UNAUTHENTICATED)
session = auth.Login(auth_pb2.LoginRequest(email=email, password=new_password))
webhook("identity.password.changed", email)
print("recovery: password reset from the mailed link; old sessions ended, owner notified")

# 3. Two-factor login, with codes from pyotp.
md = [("authorization", f"Bearer {session.access_token}")]
refused(lambda: auth.EnrollTotp(auth_pb2.EnrollTotpRequest(), metadata=md), grpc.StatusCode.INVALID_ARGUMENT)
enrolment = auth.EnrollTotp(auth_pb2.EnrollTotpRequest(password=new_password), metadata=md)
seen.append(enrolment.secret)
parsed = pyotp.parse_uri(enrolment.otpauth_uri)
assert parsed.secret == enrolment.secret and parsed.name == email, enrolment.otpauth_uri
totp = pyotp.TOTP(enrolment.secret)
codes = auth.ConfirmTotp(auth_pb2.ConfirmTotpRequest(code=totp.now()), metadata=md).recovery_codes
assert len(codes) == 10
seen.extend(codes)
webhook("identity.mfa.enabled", email)
challenge = auth.Login(auth_pb2.LoginRequest(email=email, password=new_password))
assert not challenge.access_token and challenge.mfa_challenge
seen.append(challenge.mfa_challenge)
code = totp.at(time.time() + 30)  # the next step: the confirming one is spent
tokens = auth.VerifyMfa(auth_pb2.VerifyMfaRequest(mfa_challenge=challenge.mfa_challenge, code=code))
assert claims(tokens.access_token)["amr"] == ["pwd", "otp"]
again = auth.Login(auth_pb2.LoginRequest(email=email, password=new_password)).mfa_challenge
seen.append(again)
refused(lambda: auth.VerifyMfa(auth_pb2.VerifyMfaRequest(mfa_challenge=again, code=code)),
        grpc.StatusCode.UNAUTHENTICATED)
auth.VerifyMfa(auth_pb2.VerifyMfaRequest(mfa_challenge=again, recovery_code=codes[0]))
print("recovery: two-factor login with pyotp codes and a recovery code; a replayed code is refused")

assert not os.path.exists(os.path.join(sinks, "bad-signatures")), "a webhook signature did not verify"
with open(secrets_file, "a") as f:
    f.write("\n".join(seen) + "\n")
