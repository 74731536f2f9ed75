"""Recall@k evaluation of the retrieval systems on a labelled query file.

    python -m eval.recall --queries eval/queries.jsonl [--split heldout] [--json OUT.json]

Runs BM25-only, dense-only, hybrid, and hybrid+rerank (when a reranker is
configured, COACH_RERANKER), on the configured embedder (COACH_EMBEDDER).
Prints hit@1/3/5/10, recall@5/10, mrr@10, ndcg@10 over the answerable queries,
the decline figures (declined_unanswerable, answered_answerable), and p50/p95
latency per stage.  ``--json`` writes the same figures keyed by system and
metric name exactly as printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from coach.metrics import hit_at_k, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from coach.pipeline import build_retriever
from coach.settings import Settings
from coach.text import QueryError

from .dataset import load_queries

METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "recall@5", "recall@10", "mrr@10", "ndcg@10",
           "declined_unanswerable", "answered_answerable")


def evaluate(retriever, queries, system: str) -> tuple[dict, dict]:
    """Metric means and per-stage latency lists for one system."""
    mode, rerank = ("hybrid", True) if system == "hybrid+rerank" else (system, False)
    sums: dict[str, list[float]] = defaultdict(list)
    stages: dict[str, list[float]] = defaultdict(list)
    for q in queries:
        try:
            r = retriever.retrieve(q.query, q.history, k=10, mode=mode, rerank=rerank)
        except QueryError:
            declined, ranked = True, []
        else:
            declined, ranked = r.declined, [h.id for h in r.hits]
            for stage, ms in r.timings_ms.items():
                stages[stage].append(ms)
        if q.answerable:
            for k in (1, 3, 5, 10):
                sums[f"hit@{k}"].append(hit_at_k(ranked, q.gold, k))
            sums["recall@5"].append(recall_at_k(ranked, q.gold, 5))
            sums["recall@10"].append(recall_at_k(ranked, q.gold, 10))
            sums["mrr@10"].append(mrr_at_k(ranked, q.gold, 10))
            sums["ndcg@10"].append(ndcg_at_k(ranked, q.gold, 10))
            sums["answered_answerable"].append(0.0 if declined else 1.0)
        else:
            sums["declined_unanswerable"].append(1.0 if declined else 0.0)
    return {m: (sum(v) / len(v) if v else float("nan")) for m, v in ((m, sums[m]) for m in METRICS)}, stages


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", default="eval/queries.jsonl")
    ap.add_argument("--split", default="all", help="'all', or a value of the split field (calib, heldout)")
    ap.add_argument("--kind", default="", help="only queries of this kind (e.g. followup)")
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
    if args.no_history:
        queries = [type(q)(q.query, q.gold, (), q.split, q.lang, q.kind) for q in queries]
    settings = Settings.from_env()
    retriever, status = build_retriever(settings)
    for line in status:
        print(f"# {line}")
    retriever.retrieve("warm up", k=1)
    systems = ["bm25", "dense", "hybrid"] + (["hybrid+rerank"] if retriever.reranker else [])
    answerable = sum(q.answerable for q in queries)
    print(f"# {len(queries)} queries ({answerable} answerable, {len(queries) - answerable} unanswerable), "
          f"split={args.split}{', kind=' + args.kind if args.kind else ''}, embedder={settings.embedder}, fusion={settings.fusion}")
    results, latency = {}, {}
    for system in systems:
        results[system], stages = evaluate(retriever, queries, system)
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
        payload["_meta"] = {"queries": len(queries), "split": args.split, "kind": args.kind,
                            "embedder": settings.embedder, "fusion": settings.fusion, "status": status}
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
