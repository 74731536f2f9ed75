"""Ranking metrics with binary relevance: pure functions of (ranked ids, gold ids, k).

Definitions follow Manning, Raghavan & Schütze, *Introduction to Information
Retrieval* (2008), ch. 8; nDCG uses Järvelin & Kekäläinen's (2002) log2 discount.
Worked example, ranked = [b, a, c], gold = {a, c}:
hit@1 = 0, hit@2 = 1, recall@2 = 1/2, mrr@10 = 1/2,
ndcg@3 = (1/log2(3) + 1/log2(4)) / (1/log2(2) + 1/log2(3)) = 0.6934.
"""

from __future__ import annotations

import math
from typing import Collection, Sequence


def hit_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """1.0 when any gold id is in the top k."""
    return 1.0 if any(r in gold for r in ranked[:k]) else 0.0


def recall_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Share of the gold ids found in the top k."""
    if not gold:
        raise ValueError("recall is undefined for a query with no gold ids")
    return len(set(ranked[:k]) & set(gold)) / len(set(gold))


def mrr_at_k(ranked: Sequence[str], gold: Collection[str], k: int = 10) -> float:
    """Reciprocal rank of the first gold id within the top k, else 0."""
    for i, r in enumerate(ranked[:k], start=1):
        if r in gold:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Collection[str], k: int = 10) -> float:
    """Normalised discounted cumulative gain with binary gains."""
    if not gold:
        raise ValueError("nDCG is undefined for a query with no gold ids")
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(ranked[:k], start=1) if r in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(set(gold)), k) + 1))
    return dcg / ideal


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]
