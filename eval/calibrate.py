"""Fit the decline model on the calibration split and report its operating point.

    python -m eval.calibrate [--queries eval/queries.jsonl] [--min-answered 0.97] [--also FILE]

Computes the decline features (coach.retrieval.decline) of every calibration query with
the configured embedder, and of the off-topic reference questions
(corpus/off_topic.jsonl, each scored with itself left out of the reference
set), fits the logistic regression on both (the reference questions as
negatives), picks the threshold that keeps at least ``--min-answered`` of
answerable calibration queries answered, saves it to coach/calibration/<embedder>.json (and the reference
questions' vectors to <embedder>.offtopic.npz, which index builds reuse), and prints the
trade-off on the calibration and held-out splits (the held-out split is
never used for fitting).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from coach.retrieval.decline import FEATURES, calibration_path, fit_decline_model
from coach.bank.offtopic import load_offtopic, reference_questions, save_reference_vectors, vectors_key
from coach.pipeline import build_retriever, reference_vectors_path, shipped_passages_path
from coach.settings import Settings
from coach.text import QueryError
from coach.types import ANSWER
from coach.indexing.vector_cache import write_vectors

from .dataset import load_queries


def features_of(retriever, queries):
    """Decline features exactly as Retriever.retrieve computed them (history included)."""
    return [retriever.retrieve(q.query, q.history, k=1, rerank=False).features for q in queries]


def offtopic_features(retriever, questions, reference):
    """Features of the off-topic questions; one that is in the reference set (``reference``, the index's
    off-topic rows in order) is left out of it while it is scored, or its own vector would decide its margin."""
    index = retriever.index
    full = index.offtopic
    row = {q: i for i, q in enumerate(reference)}
    out = []
    try:
        for question in questions:
            index.offtopic = np.delete(full, row[question], axis=0) if question in row else full
            try:
                out.append(retriever.retrieve(question, (), k=1, rerank=False).features)
            except QueryError:  # e.g. a reference "question" of punctuation only: nothing to learn from
                continue
    finally:
        index.offtopic = full
    return out


def outcome_point(model, feats, queries) -> tuple[float, float]:
    """(direct_answerable, direct_unanswerable): shares of answerable / unanswerable queries answered directly."""
    direct = [model.outcome(f) == ANSWER for f in feats]
    an = [d for d, q in zip(direct, queries) if q.answerable]
    un = [d for d, q in zip(direct, queries) if not q.answerable]
    return sum(an) / max(len(an), 1), sum(un) / max(len(un), 1)


def operating_point(model, feats, queries) -> tuple[float, float]:
    """(share of unanswerable declined, share of answerable answered)."""
    dec = [model.declines(f) for f in feats]
    un = [d for d, q in zip(dec, queries) if not q.answerable]
    an = [not d for d, q in zip(dec, queries) if q.answerable]
    return sum(un) / max(len(un), 1), sum(an) / max(len(an), 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", default="eval/queries.jsonl")
    ap.add_argument("--min-answered", type=float, default=0.99,
                    help="decline threshold: keep at least this share of each group's answerable queries answered "
                    "(0.97 kept 0.938 of real calib answered in grouped CV, 0.99 keeps 0.984)")
    ap.add_argument("--real", default="eval/queries_real.jsonl",
                    help="real interview questions: their calib split is fitted on and sets the answer threshold")
    ap.add_argument("--max-direct-unanswerable", type=float, default=0.10,
                    help="answer threshold: at most this share of real calib unanswerable questions answered directly "
                    "(grouped CV: a cap of 0.12 gave 0.13-0.14 on the left-out folds)")
    ap.add_argument("--also", action="append", default=[], metavar="FILE",
                    help="also report the operating point on this query file (every split)")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    retriever, status = build_retriever(settings)
    calib, held = load_queries(args.queries, "calib"), load_queries(args.queries, "heldout")
    real = load_queries(args.real, "calib") if args.real else []
    offtopic = load_offtopic(settings.corpus_dir)
    reference = reference_questions(offtopic, list(retriever.index.sections.values()))
    if len(reference) != len(retriever.index.offtopic):
        print(f"the index has {len(retriever.index.offtopic)} off-topic vectors but {settings.corpus_dir} has "
              f"{len(reference)} reference questions: rebuild it with `python -m coach build-index`", file=sys.stderr)
        return 2
    # A follow-up's reading (own words vs joined to the last turn) is picked by the decline model's confidence,
    # so the features depend on the model: refit until they stop changing (two or three rounds).
    model = None
    for round_ in range(1, 5):
        f_cal, f_off = features_of(retriever, calib), offtopic_features(retriever, offtopic, reference)
        f_real = features_of(retriever, real)
        fitted = fit_decline_model(
            f_cal + f_real + f_off,
            [q.answerable for q in calib] + [q.answerable for q in real] + [False] * len(f_off),
            retriever.embedder.name, args.min_answered,
            threshold_on=["paraphrase"] * len(f_cal) + ["real"] * len(f_real) + [None] * len(f_off),
            answer_on=[False] * len(f_cal) + [True] * len(f_real) + [False] * len(f_off) if real else None,
            max_direct_unanswerable=args.max_direct_unanswerable)
        settled = model is not None and np.allclose(fitted.coef, model.coef) and abs(fitted.threshold - model.threshold) < 1e-9
        model = retriever.decline_model = fitted
        if settled:
            break
    print(f"fitted in {round_} round(s)")
    f_held = features_of(retriever, held)
    path = calibration_path(retriever.embedder.name)
    model.save(path)
    print(f"saved {path}")
    vectors_path = reference_vectors_path(retriever.embedder.name)  # ship the vectors the model was fitted with
    save_reference_vectors(vectors_path, vectors_key(reference, retriever.embedder.name, retriever.embedder.dim),
                           retriever.index.offtopic)
    print(f"saved {vectors_path} ({len(reference)} reference vectors: index builds reuse them)")
    passages_path = shipped_passages_path(retriever.embedder.name)  # and the bank's, so a first build embeds little
    passages = retriever.index.passage_vectors()
    write_vectors(passages_path, retriever.embedder.name, retriever.embedder.dim, passages)
    print(f"saved {passages_path} ({len(passages)} passage vectors: a first build on a new machine reuses them)")
    print(f"threshold {model.threshold:.4f}, answer threshold "
          f"{'none' if model.answer_threshold is None else f'{model.answer_threshold:.4f}'}  ({model.note})")
    print("coefficients: " + ", ".join(f"{n}={c:+.2f}" for n, c in zip(FEATURES, model.coef)))
    print(f"{'split':18}{'declined_unanswerable':>24}{'answered_answerable':>22}{'direct_answerable':>20}"
          f"{'direct_unanswerable':>22}")
    splits = [("calib", f_cal, calib), ("heldout", f_held, held)] + ([("real calib", f_real, real)] if real else [])
    for extra in args.also:
        qs = load_queries(extra)
        splits.append((Path(extra).stem, features_of(retriever, qs), qs))
    for name, feats, qs in splits:
        d, a = operating_point(model, feats, qs)
        da, du = outcome_point(model, feats, qs)
        print(f"{name:18}{d:>24.3f}{a:>22.3f}{da:>20.3f}{du:>22.3f}")
    declined_off = sum(model.declines(f) for f in f_off) / max(len(f_off), 1)
    print(f"off-topic questions declined (fitted on; reference ones left out while scored): {declined_off:.3f} "
          f"of {len(f_off)} ({len(reference)} in the bank's language form the reference set)")
    print("\ntrade-off on calib (threshold sweep):")
    probs = sorted({round(model.probability(f), 3) for f in f_cal})  # the decline threshold's P
    for t in probs[:: max(1, len(probs) // 12)]:
        m = type(model)(**{**model.__dict__, "threshold": t})
        d, a = operating_point(m, f_cal, calib)
        print(f"  threshold {t:.3f}: declined_unanswerable {d:.3f}, answered_answerable {a:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
