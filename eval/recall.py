"""Recall@k and outcome evaluation of the retrieval systems on a labelled query file.

    python -m eval.recall --queries eval/queries.jsonl [--split heldout] [--json OUT.json]
    python -m eval.recall --queries eval/queries_real.jsonl --split heldout --lang en --plot real.png

Runs BM25-only, dense-only, hybrid, and hybrid+rerank (when a reranker is
configured, COACH_RERANKER), on the configured embedder (COACH_EMBEDDER).
Prints hit@1/3/5/10, recall@5/10, mrr@10, ndcg@10 over the answerable queries,
the outcome figures, and p50/p95 latency per stage.  Outcomes (coach.types):

- direct_answerable: share of answerable queries with outcome "answer";
- direct_unanswerable: share of unanswerable queries with outcome "answer" (the harm rate:
  an answer built from sections that do not answer the question);
- declined_unanswerable: share of unanswerable queries with outcome "decline";
- answered_answerable: share of answerable queries with any outcome but "decline".

``--json`` writes the same figures keyed by system and metric name exactly as
printed; ``--plot`` draws hit@k curves per system and the distribution of
P(answerable) (the answer model's, when the calibration has one) for answerable and unanswerable queries with
the thresholds drawn on that axis.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import replace

from coach.metrics import hit_at_k, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from coach.pipeline import build_retriever
from coach.settings import Settings
from coach.text import QueryError
from coach.types import ANSWER, DECLINE

from .dataset import load_queries

METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "recall@5", "recall@10", "mrr@10", "ndcg@10",
           "direct_answerable", "direct_unanswerable", "declined_unanswerable", "answered_answerable")
CURVE_K = tuple(range(1, 11))


def evaluate(retriever, queries, system: str) -> tuple[dict, dict, dict]:
    """Metric means, per-stage latency lists, and the curves the plot draws (hit@k for k = 1..10, and the
    confidence of each answerable / unanswerable query) for one system."""
    mode, rerank = ("hybrid", True) if system == "hybrid+rerank" else (system, False)
    sums: dict[str, list[float]] = defaultdict(list)
    stages: dict[str, list[float]] = defaultdict(list)
    curves: dict[str, list[float]] = defaultdict(list)
    for q in queries:
        try:
            r = retriever.retrieve(q.query, q.history, k=10, mode=mode, rerank=rerank)
        except QueryError:
            outcome, ranked, confidence = DECLINE, [], 0.0
        else:
            outcome, ranked = r.outcome, [h.id for h in r.hits]
            confidence = retriever.decline_model.answer_probability(r.features) if r.features else r.confidence
            for stage, ms in r.timings_ms.items():
                stages[stage].append(ms)
        if q.answerable:
            for k in (1, 3, 5, 10):
                sums[f"hit@{k}"].append(hit_at_k(ranked, q.gold, k))
            sums["recall@5"].append(recall_at_k(ranked, q.gold, 5))
            sums["recall@10"].append(recall_at_k(ranked, q.gold, 10))
            sums["mrr@10"].append(mrr_at_k(ranked, q.gold, 10))
            sums["ndcg@10"].append(ndcg_at_k(ranked, q.gold, 10))
            sums["direct_answerable"].append(float(outcome == ANSWER))
            sums["answered_answerable"].append(float(outcome != DECLINE))
            for k in CURVE_K:
                curves[f"hit@{k}"].append(hit_at_k(ranked, q.gold, k))
            curves["p_answerable"].append(confidence)
        else:
            sums["direct_unanswerable"].append(float(outcome == ANSWER))
            sums["declined_unanswerable"].append(float(outcome == DECLINE))
            curves["p_unanswerable"].append(confidence)
    means = {m: (sum(v) / len(v) if v else float("nan")) for m, v in ((m, sums[m]) for m in METRICS)}
    return means, stages, curves


def plot(curves: dict, model, title: str, path: str) -> None:
    """hit@k per system (left); P(answerable) of answerable vs unanswerable queries, hybrid, with the thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, c in curves.items():
        left.plot(CURVE_K, [sum(c[f"hit@{k}"]) / max(len(c[f"hit@{k}"]), 1) for k in CURVE_K], marker="o",
                  label=system)
    left.set(xlabel="k", ylabel="hit@k (answerable queries)", title="hit@k", ylim=(0, 1.02), xticks=CURVE_K)
    left.grid(alpha=0.3)
    left.legend()
    hybrid = curves.get("hybrid") or next(iter(curves.values()))
    bins = [i / 20 for i in range(21)]
    right.hist(hybrid["p_answerable"], bins=bins, alpha=0.6, label=f"answerable ({len(hybrid['p_answerable'])})")
    right.hist(hybrid["p_unanswerable"], bins=bins, alpha=0.6, label=f"unanswerable ({len(hybrid['p_unanswerable'])})")
    if model.answer_coef is None:  # one P for both cuts; else the decline cut is on the decline model's P
        right.axvline(model.threshold, color="k", linestyle="--", label=f"decline below {model.threshold:.2f}")
    if model.answer_threshold is not None:
        right.axvline(model.answer_threshold, color="r", linestyle="--",
                      label=f"answer from {model.answer_threshold:.2f}")
    right.set(xlabel="P(answered) of the answer model, hybrid" if model.answer_coef is not None
              else "P(answerable), hybrid", ylabel="queries", title="confidence")
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", default="eval/queries.jsonl")
    ap.add_argument("--split", default="all", help="'all', or a value of the split field (calib, heldout)")
    ap.add_argument("--kind", default="", help="only queries of this kind (e.g. followup)")
    ap.add_argument("--lang", default="", choices=["", "zh", "en"], help="only queries in this language")
    ap.add_argument("--plot", metavar="OUT.png", help="draw hit@k curves and the confidence distribution here")
    ap.add_argument("--json", dest="json_out", help="write the figures here")
    ap.add_argument("--no-history", action="store_true", help="ignore the history of follow-ups")
    args = ap.parse_args(argv)
    try:
        queries = load_queries(args.queries, args.split)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.kind:
        queries = [q for q in queries if q.kind == args.kind]
    if args.lang:
        queries = [q for q in queries if q.lang == args.lang]
    if not queries:
        print(f"error: no queries in {args.queries} match split={args.split} kind={args.kind!r} lang={args.lang!r}",
              file=sys.stderr)
        return 2
    if args.no_history:
        queries = [replace(q, history=()) for q in queries]
    settings = Settings.from_env()
    retriever, status = build_retriever(settings)
    for line in status:
        print(f"# {line}")
    retriever.retrieve("warm up", k=1)
    systems = ["bm25", "dense", "hybrid"] + (["hybrid+rerank"] if retriever.reranker else [])
    answerable = sum(q.answerable for q in queries)
    print(f"# {len(queries)} queries ({answerable} answerable, {len(queries) - answerable} unanswerable), "
          f"split={args.split}{', kind=' + args.kind if args.kind else ''}{', lang=' + args.lang if args.lang else ''}, "
          f"embedder={settings.embedder}, fusion={settings.fusion}")
    results, latency, curves = {}, {}, {}
    for system in systems:
        results[system], stages, curves[system] = evaluate(retriever, queries, system)
        latency[system] = {f"{s} p50": percentile(v, 50) for s, v in stages.items()} | {
            f"{s} p95": percentile(v, 95) for s, v in stages.items()}
    width = max(len(m) for m in METRICS) + 2
    print("system".ljust(16) + "".join(m.rjust(width) for m in METRICS))
    for system in systems:
        print(system.ljust(16) + "".join(f"{results[system][m]:.3f}".rjust(width) for m in METRICS))
    print("\nlatency (ms)".ljust(16))
    stage_names = list(dict.fromkeys(k.rsplit(" ", 1)[0] for s in systems for k in latency[s]))
    print("system".ljust(16) + "".join(f"{s} p50/p95".rjust(26) for s in stage_names))
    for system in systems:
        row = "".join(f"{latency[system].get(s + ' p50', 0):.1f}/{latency[system].get(s + ' p95', 0):.1f}".rjust(26)
                      for s in stage_names)
        print(system.ljust(16) + row)
    if args.json_out:
        payload = {s: results[s] | {"latency_ms": latency[s]} for s in systems}
        payload["_meta"] = {"queries": len(queries), "split": args.split, "kind": args.kind, "lang": args.lang,
                            "embedder": settings.embedder, "fusion": settings.fusion, "status": status}
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False)
    if args.plot:
        plot(curves, retriever.decline_model, f"{args.queries} split={args.split} {args.lang}".strip(), args.plot)
        print(f"# plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
