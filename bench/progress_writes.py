"""Concurrent progress writes: W records from T threads on SQLite (WAL) and on PostgreSQL, every one counted back.

    python bench/progress_writes.py [--writes 10000] [--threads 8] [--people 50]

Each write is ``ProgressStore.record(person, section, score, contradicted)`` (an FSRS review in one
transaction: read the card, review it, write the card and the review row), people and questions
round-robin so threads contend on the same rows.  Counted back: the sum of ``attempts`` over every
person's cards and the number of review rows must both equal the writes.  PostgreSQL is started by
tests/servers.py (127.0.0.1, free port, temporary folder, stopped by pid).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from coach.bank.corpus import load_corpus  # noqa: E402
from coach.state import SQLiteProgress  # noqa: E402
from tests.servers import start_postgres  # noqa: E402


def run(store, sections, writes: int, threads: int, people: int) -> dict:
    lat = np.zeros(writes)

    def one(i):
        t = time.perf_counter()
        store.record(f"bench-{i % people}", sections[i % len(sections)], float((i * 37) % 101), i % 7 == 0)
        lat[i] = time.perf_counter() - t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(writes)))
    wall = time.perf_counter() - t0
    attempts = sum(e.attempts for p in range(people) for e in store.schedule(f"bench-{p}"))
    reviews = sum(len(store.reviews(f"bench-{p}")) for p in range(people))
    return {"wall_s": wall, "per_s": writes / wall, "p50_ms": np.percentile(lat, 50) * 1e3,
            "p95_ms": np.percentile(lat, 95) * 1e3, "attempts": attempts, "reviews": reviews}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--people", type=int, default=50)
    args = ap.parse_args(argv)
    sections = [s for s in load_corpus(ROOT / "corpus")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-progress-"))
    pg = start_postgres(tmp / "pg")
    try:
        from coach.state.postgres import PostgresProgress

        stores = {"sqlite-wal": SQLiteProgress(tmp / "progress.sqlite3"), "postgresql": PostgresProgress(pg.url)}
        print(f"# {args.writes} writes from {args.threads} threads, {args.people} people x {len(sections)} questions, "
              f"python {sys.version.split()[0]}")
        print(f"{'store':<12} {'writes':>7} {'wall_s':>7} {'writes/s':>9} {'p50_ms':>7} {'p95_ms':>7} "
              f"{'attempts':>9} {'reviews':>8} {'all_counted':>11}")
        ok = True
        for name, store in stores.items():
            r = run(store, sections, args.writes, args.threads, args.people)
            counted = r["attempts"] == args.writes == r["reviews"]
            ok &= counted
            print(f"{name:<12} {args.writes:>7} {r['wall_s']:>7.1f} {r['per_s']:>9.0f} {r['p50_ms']:>7.1f} "
                  f"{r['p95_ms']:>7.1f} {r['attempts']:>9} {r['reviews']:>8} {'yes' if counted else 'NO':>11}")
        stores["postgresql"].close()
        return 0 if ok else 1
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
