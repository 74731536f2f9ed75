"""Benchmark of practice grading (issue 11): the offline judge and the LLM judge's own overhead.

    python -m bench.grading [--n 200]

Prints one table (milliseconds, after a 10-grade warm-up, over ``--n`` grades):

- offline: ``Grader.grade`` with the offline judge (the default, as the app builds it: the configured
  embedder, so with the second look of coach/grading/second_look.py) on answers cut to 300 characters,
  taken round-robin from the labelled answers of eval/grader_set.jsonl (every kind), bar p50 <= 150 ms;
- offline, cues only: the same without the second look (no embedder), to show what the second look costs;
- offline, 3,000 characters: the longest answer it grades (a 20,000-character paste is cut there);
- llm overhead: ``Grader.grade`` with the LLM judge against a FakeLLM that returns a valid reply at
  once, so the time is everything but waiting for the server (prompt, schema, parsing, evidence and
  concept checks), bar p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from coach.bank.corpus import load_corpus
from coach.bank.glossary import load_glossary
from coach.grader import Grader, key_points
from coach.embedders import make_embedder
from coach.llm import FakeLLM
from coach.metrics import percentile
from coach.settings import ROOT, Settings

SET = ROOT / "eval" / "grader_set.jsonl"


def timed(fn, cases, n: int, warm: int = 10) -> list[float]:
    for i in range(warm):
        fn(*cases[i % len(cases)])
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(*cases[i % len(cases)])
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    sections = {s.id: s for s in load_corpus(settings.corpus_dir)}
    rows = [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    glossary = load_glossary(settings.corpus_dir).groups
    grader = Grader.for_corpus(settings.corpus_dir, make_embedder(settings.embedder))
    cues_only = Grader(None, glossary=glossary)
    print(grader.second_look_state)

    def pad(text: str, size: int) -> str:
        return (text * (size // max(1, len(text)) + 1))[:size]

    short = [(sections[r["id"]], pad(r["answer"], 300)) for r in rows]
    long = [(sections[r["id"]], pad(r["answer"], 3000)) for r in rows[:40]]

    def llm_case(section, answer):
        n = len(key_points(section.body))
        reply = json.dumps({"points": [{"n": i, "verdict": "covered", "evidence": answer[:20]} for i in range(1, n + 1)],
                            "feedback": "答得不错。"}, ensure_ascii=False)
        return section, answer, FakeLLM(default=reply)

    llm_cases = [llm_case(s, a) for s, a in short]
    results = [
        ("offline, 300 chars", timed(grader.grade, short, args.n), 150.0),
        ("offline cues only, 300", timed(cues_only.grade, short, args.n), None),
        ("offline, 3,000 chars", timed(grader.grade, long, max(20, args.n // 5)), None),
        ("llm overhead, 300 chars", timed(lambda s, a, llm: grader.grade(s, a, llm=llm), llm_cases, args.n), 20.0),
    ]
    print(f"{'case':<26}{'n':>6}{'p50_ms':>9}{'p95_ms':>9}{'max_ms':>9}{'bar_p50':>9}{'ok':>5}")
    for name, ms, bar in results:
        p50 = percentile(ms, 50)
        ok = "-" if bar is None else ("yes" if p50 <= bar else "NO")
        print(f"{name:<26}{len(ms):>6}{p50:>9.1f}{percentile(ms, 95):>9.1f}{max(ms):>9.1f}"
              f"{('-' if bar is None else f'{bar:.0f}'):>9}{ok:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
