"""Fit the decline model on the calibration split and report its operating point.

    python -m eval.calibrate [--queries eval/queries.jsonl] [--min-answered 0.97]

Computes the decline features (coach.decline) of every calibration query with
the configured embedder, fits the logistic regression, picks the threshold
that keeps at least ``--min-answered`` of answerable calibration queries
answered, saves it to coach/calibration/<embedder>.json, and prints the
trade-off on the calibration and held-out splits (the held-out split is
never used for fitting).
"""

from __future__ import annotations

import argparse
import sys

from coach.decline import FEATURES, calibration_path, fit_decline_model
from coach.pipeline import build_retriever
from coach.settings import Settings

from .dataset import load_queries


def features_of(retriever, queries):
    """Decline features exactly as Retriever.retrieve computed them (history included)."""
    return [retriever.retrieve(q.query, q.history, k=1, rerank=False).features for q in queries]


def operating_point(model, feats, queries) -> tuple[float, float]:
    """(share of unanswerable declined, share of answerable answered)."""
    dec = [model.declines(f) for f in feats]
    un = [d for d, q in zip(dec, queries) if not q.answerable]
    an = [not d for d, q in zip(dec, queries) if q.answerable]
    return sum(un) / max(len(un), 1), sum(an) / max(len(an), 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", default="eval/queries.jsonl")
    ap.add_argument("--min-answered", type=float, default=0.97)
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    retriever, status = build_retriever(settings)
    calib, held = load_queries(args.queries, "calib"), load_queries(args.queries, "heldout")
    f_cal, f_held = features_of(retriever, calib), features_of(retriever, held)
    model = fit_decline_model(f_cal, [q.answerable for q in calib], retriever.embedder.name, args.min_answered)
    path = calibration_path(retriever.embedder.name)
    model.save(path)
    print(f"saved {path}")
    print(f"threshold {model.threshold:.4f}  ({model.note})")
    print("coefficients: " + ", ".join(f"{n}={c:+.2f}" for n, c in zip(FEATURES, model.coef)))
    print(f"{'split':10}{'declined_unanswerable':>24}{'answered_answerable':>22}")
    for name, feats, qs in (("calib", f_cal, calib), ("heldout", f_held, held)):
        d, a = operating_point(model, feats, qs)
        print(f"{name:10}{d:>24.3f}{a:>22.3f}")
    print("\ntrade-off on calib (threshold sweep):")
    probs = sorted({round(model.probability(f), 3) for f in f_cal})
    for t in probs[:: max(1, len(probs) // 12)]:
        m = type(model)(**{**model.__dict__, "threshold": t})
        d, a = operating_point(m, f_cal, calib)
        print(f"  threshold {t:.3f}: declined_unanswerable {d:.3f}, answered_answerable {a:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
