"""coach.retrieval.fusion and coach.metrics: worked examples by hand, and FAISS checked against numpy brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coach.retrieval.fusion import minmax, ranks, rrf, weighted
from coach.metrics import hit_at_k, mrr_at_k, ndcg_at_k, percentile, recall_at_k


# -- fusion -----------------------------------------------------------------------------------------
def test_rrf_docstring_example():
    assert rrf([{"a": 9, "b": 1}, {"b": 5}], k=60) == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61})


def test_rrf_three_lists_by_hand():
    # ranks: list1 a1 b2 c3; list2 c1 a2; list3 b1
    fused = rrf([{"a": 0.9, "b": 0.5, "c": 0.1}, {"c": 7.0, "a": 3.0}, {"b": 1.0}], k=1)
    assert fused == pytest.approx({"a": 1 / 2 + 1 / 3, "b": 1 / 3 + 1 / 2, "c": 1 / 4 + 1 / 2})
    assert fused["a"] == pytest.approx(fused["b"])
    assert fused["c"] < fused["a"]  # c's one first place does not beat a's and b's broad agreement


def test_rrf_weights_per_list():
    fused = rrf([{"a": 2, "b": 1}, {"b": 2, "a": 1}], k=10, weights=[0.8, 0.2])
    assert fused == pytest.approx({"a": 0.8 / 11 + 0.2 / 12, "b": 0.8 / 12 + 0.2 / 11})
    assert fused["a"] > fused["b"]


def test_ranks_break_ties_by_id():
    assert ranks({"b": 1.0, "a": 1.0, "c": 2.0}) == {"c": 1, "a": 2, "b": 3}


@pytest.mark.parametrize("k", [0, -1])
def test_rrf_rejects_non_positive_k(k):
    with pytest.raises(ValueError, match=f"rrf k must be positive, got {k}"):
        rrf([{"a": 1}], k=k)


def test_minmax():
    assert minmax({"a": 1.0, "b": 3.0, "c": 2.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert minmax({"a": 4.0, "b": 4.0}) == {"a": 1.0, "b": 1.0}
    assert minmax({}) == {}


def test_weighted_by_hand():
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}  # minmax: a 1, b 0.5, c 0
    bm25 = {"b": 10.0, "d": 0.0}  # minmax: b 1, d 0
    assert weighted(dense, bm25, 0.5) == pytest.approx({"a": 0.5, "b": 0.75, "c": 0.0, "d": 0.0})
    assert weighted(dense, bm25, 0.8) == pytest.approx({"a": 0.8, "b": 0.6, "c": 0.0, "d": 0.0})
    assert weighted(dense, bm25, 1.0) == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.0})


@pytest.mark.parametrize("w", [-0.1, 1.5])
def test_weighted_rejects_bad_weight(w):
    with pytest.raises(ValueError, match=rf"dense_weight must be in \[0, 1\], got {w}"):
        weighted({"a": 1}, {"a": 1}, w)


# -- metrics ----------------------------------------------------------------------------------------
RANKED, GOLD = ["b", "a", "c"], {"a", "c"}  # the coach/metrics.py docstring example


def test_metrics_docstring_example():
    assert hit_at_k(RANKED, GOLD, 1) == 0.0
    assert hit_at_k(RANKED, GOLD, 2) == 1.0
    assert recall_at_k(RANKED, GOLD, 2) == 0.5
    assert recall_at_k(RANKED, GOLD, 3) == 1.0
    assert mrr_at_k(RANKED, GOLD, 10) == 0.5
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 / math.log2(2) + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, GOLD, 3) == pytest.approx(expected)
    assert ndcg_at_k(RANKED, GOLD, 3) == pytest.approx(0.6934, abs=5e-5)


def test_metrics_more_examples():
    assert mrr_at_k(["x", "y", "z", "a"], {"a"}, 3) == 0.0  # outside the cut-off
    assert mrr_at_k(["x", "y", "z", "a"], {"a"}, 4) == 0.25
    assert ndcg_at_k(["a", "c", "b"], {"a", "c"}, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([], {"a"}, 10) == 0.0
    assert recall_at_k(["a", "a", "x"], {"a", "b"}, 3) == 0.5  # duplicates do not count twice
    assert hit_at_k([], {"a"}, 5) == 0.0


@pytest.mark.parametrize("fn, name", [(recall_at_k, "recall"), (ndcg_at_k, "nDCG")])
def test_metrics_reject_empty_gold(fn, name):
    with pytest.raises(ValueError, match=f"{name} is undefined for a query with no gold ids"):
        fn(["a"], set(), 5)


def test_percentile_nearest_rank():
    values = [10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 95) == 10.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 0) == 1.0
    assert percentile([], 50) == 0.0


# -- oracle: FAISS exact inner-product search == numpy brute force ----------------------------------
@pytest.mark.parametrize("n, dim, k", [(50, 8, 5), (500, 64, 10), (1000, 384, 20)])
def test_faiss_flat_ip_matches_numpy_brute_force(n, dim, k):
    import faiss

    rng = np.random.default_rng(n + dim)
    docs = rng.standard_normal((n, dim)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = rng.standard_normal((7, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    index = faiss.IndexFlatIP(dim)
    index.add(docs)
    scores, ids = index.search(queries, k)

    brute = queries @ docs.T
    want_ids = np.argsort(-brute, axis=1, kind="stable")[:, :k]
    want_scores = np.take_along_axis(brute, want_ids, axis=1)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
