"""Notification sinks for the walk-through: a webhook receiver that checks every
Standard Webhooks signature (Python's own hmac) and a real SMTP server (PyPI's
aiosmtpd). Each delivery is appended, as one JSON line, to OUT_DIR/webhook.jsonl
or OUT_DIR/mail.jsonl; a bad signature goes to OUT_DIR/bad-signatures.

Usage: sinks.py WEBHOOK_PORT SMTP_PORT SECRET OUT_DIR   (runs until killed)
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller

webhook_port, smtp_port, secret, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
key = base64.b64decode(secret.removeprefix("whsec_"))
lock = threading.Lock()


def append(name, record):
    with lock, open(os.path.join(out, name), "a") as f:
        f.write(json.dumps(record) + "\n")


class Webhook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        msg_id, ts = self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", "")
        expected = "v1," + base64.b64encode(
            hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        signatures = self.headers.get("webhook-signature", "").split(" ")
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        if not (fresh and any(hmac.compare_digest(expected, s) for s in signatures)) \
                or self.headers.get("content-type") != "application/cloudevents+json":
            append("bad-signatures", {"id": msg_id})
            self.send_response(401)
        else:
            append("webhook.jsonl", {"webhook_id": msg_id, "event": json.loads(body)})
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class Mail:
    async def handle_DATA(self, server, session, envelope):
        append("mail.jsonl", {"to": envelope.rcpt_tos, "content": envelope.content.decode("utf-8", "replace")})
        return "250 OK"


controller = Controller(Mail(), hostname="127.0.0.1", port=smtp_port)
controller.start()
http.server.ThreadingHTTPServer(("127.0.0.1", webhook_port), Webhook).serve_forever()
