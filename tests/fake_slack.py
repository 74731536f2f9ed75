"""A fake Slack Web API on 127.0.0.1 and Slack's signed requests, for the Slack tests and bench/team_slack.py.

``FakeSlack`` answers auth.test, chat.postMessage (recorded, epoch-second ts like Slack's, 429 on demand),
chat.update and chat.postEphemeral; ``signed_post`` sends a request signed the way Slack signs its events
(hmac over ``v0:<ts>:<body>``, here by hand rather than with Bolt's own verifier, so the verifier is tested).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "xoxb-test-7d1c0ffee"
SECRET = "test-signing-secret-5a5a5a"


# -- fake Slack Web API --------------------------------------------------------------------------
class FakeSlack:
    """auth.test and chat.postMessage on 127.0.0.1; ``rate_limit_next`` 429s the next posts."""

    def __init__(self, token: str = TOKEN):
        self.token, self.posts, self.rate_limit_next, self.limited_at = token, [], 0, []
        self.updates, self.ephemerals = [], []  # chat.update and chat.postEphemeral calls
        self.cond = threading.Condition()
        self._ts = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                method = self.path.rsplit("/", 1)[-1]
                status, headers, body = fake.handle(method, args, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, method: str, args: dict, auth: str):
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return 200, {}, {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "coach",
                             "team": "Test", "url": "https://test.slack.com/"}
        if method == "chat.postMessage":
            with self.cond:
                if self.rate_limit_next > 0:
                    self.rate_limit_next -= 1
                    self.limited_at.append(time.monotonic())
                    return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
                blocks = args.get("blocks") or []
                post = {**args, "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks,  # ts: epoch
                        "ts": f"{int(time.time())}.{next(self._ts):06d}", "at": time.monotonic()}  # seconds, as Slack's
                self.posts.append(post)
                self.cond.notify_all()
            return 200, {}, {"ok": True, "channel": args.get("channel"), "ts": post["ts"], "message": {}}
        if method in ("chat.update", "chat.postEphemeral"):
            with self.cond:
                blocks = args.get("blocks") or []
                call = {**args, "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks}
                (self.updates if method == "chat.update" else self.ephemerals).append(call)
                self.cond.notify_all()
            return 200, {}, {"ok": True, "channel": args.get("channel"), "ts": args.get("ts", ""), "message_ts": "1"}
        return 200, {}, {"ok": False, "error": "unknown_method"}

    def wait_for(self, what: str, n: int, timeout: float = 30.0) -> list[dict]:
        """Wait for ``n`` chat.update (what="updates") or chat.postEphemeral ("ephemerals") calls."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(getattr(self, what)) >= n, timeout)
        assert ok, f"expected {n} {what} within {timeout}s, got {getattr(self, what)}"
        return list(getattr(self, what))

    def in_channel(self, channel: str) -> list[dict]:
        with self.cond:
            return [p for p in self.posts if p.get("channel") == channel]

    def wait(self, channel: str, n: int = 1, timeout: float = 30.0) -> list[dict]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len([p for p in self.posts if p.get("channel") == channel]) >= n, timeout)
        assert ok, f"expected {n} post(s) in {channel} within {timeout}s, got {self.in_channel(channel)}"
        return self.in_channel(channel)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sign(body: bytes, secret: str, ts: str) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()


def signed_post(url: str, body: bytes, *, secret: str = SECRET, ts: str | None = None, headers: dict | None = None,
                content_type: str = "application/json") -> tuple[int, float]:
    """POST ``body`` signed as Slack signs it; (HTTP status, seconds until the response)."""
    ts = ts or str(int(time.time()))
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(body, secret, ts),
        **(headers or {})})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    return status, time.perf_counter() - t0
