"""Rank fusion: pure functions over ``{id: score}`` maps.

- ``rrf``: Reciprocal Rank Fusion (Cormack, Clarke & Büttcher, SIGIR 2009),
  ``score(d) = sum_r 1 / (k + rank_r(d))`` with ranks from 1.  The constant
  ``k = 60`` (the paper's) damps the head so that one list's first place
  cannot outweigh broad agreement further down.
  ``rrf([{"a": 9, "b": 1}, {"b": 5}], k=60)`` -> ``{"a": 1/61, "b": 1/62 + 1/61}``.
- ``weighted``: convex combination of min-max normalised scores,
  ``w * norm(dense) + (1 - w) * norm(bm25)``; a missing id scores 0 in that list.
"""

from __future__ import annotations

from typing import Mapping, Sequence


def ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """1-based ranks, highest score first; ties broken by id for determinism."""
    order = sorted(scores, key=lambda key: (-scores[key], key))
    return {key: i for i, key in enumerate(order, start=1)}


def rrf(score_lists: Sequence[Mapping[str, float]], k: float = 60.0, weights: Sequence[float] | None = None) -> dict[str, float]:
    """Reciprocal Rank Fusion of several score maps (optionally weighted per list)."""
    if k <= 0:
        raise ValueError(f"rrf k must be positive, got {k}")
    weights = weights or [1.0] * len(score_lists)
    fused: dict[str, float] = {}
    for w, scores in zip(weights, score_lists):
        for key, rank in ranks(scores).items():
            fused[key] = fused.get(key, 0.0) + w / (k + rank)
    return fused


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Scale to [0, 1]; a constant list maps to all 1.0."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {key: 1.0 for key in scores}
    return {key: (v - lo) / (hi - lo) for key, v in scores.items()}


def weighted(dense: Mapping[str, float], bm25: Mapping[str, float], dense_weight: float = 0.5) -> dict[str, float]:
    """``w * minmax(dense) + (1 - w) * minmax(bm25)`` over the union of ids."""
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError(f"dense_weight must be in [0, 1], got {dense_weight}")
    d, b = minmax(dense), minmax(bm25)
    return {key: dense_weight * d.get(key, 0.0) + (1 - dense_weight) * b.get(key, 0.0) for key in set(d) | set(b)}
