"""Question (+ history) -> ranked sections, or a decline.

One call runs: clean -> contextualize (history) -> BM25 and FAISS over chunks
-> best chunk per section -> fusion -> decline decision -> optional rerank of
the top candidates -> top k sections, each with its score from every stage.

``mode`` picks the systems the eval compares: "bm25", "dense", "hybrid".
Fusion is weighted min-max (dense 0.8) by default: on our calibration and
held-out splits it beat RRF (see eval/README.md for the figures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .decline import NEVER_DECLINE, DeclineModel, decline_features, known_share, question_signals
from ..embedders import Embedder
from .followup import contextualize
from .fusion import rrf, weighted
from ..indexing.index import HybridIndex
from .rerank import Reranker
from ..text import MAX_QUERY_CHARS, clean_query, name_tokens, tokenize
from ..types import DECLINE, Hit, Retrieval

MODES = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class RetrievalSettings:
    """Knobs of one retriever; ``k`` can be overridden per call."""

    k: int = 5
    candidates: int = 20  # sections passed to fusion and the reranker
    fusion: str = "weighted"  # or "rrf"
    rrf_k: float = 60.0
    dense_weight: float = 0.8  # RRF list weight of dense (BM25 gets 1 - w), or the weighted-fusion weight
    max_query_chars: int = MAX_QUERY_CHARS

    def __post_init__(self) -> None:
        if self.k < 1 or self.candidates < 1:
            raise ValueError(f"k ({self.k}) and candidates ({self.candidates}) must be at least 1")
        if self.fusion not in ("rrf", "weighted"):
            raise ValueError(f"fusion {self.fusion!r} is unknown: use 'rrf' or 'weighted'")


class Retriever:
    """Hybrid retrieval over one HybridIndex."""

    def __init__(
        self, index: HybridIndex, embedder: Embedder, settings: RetrievalSettings = RetrievalSettings(),
        decline_model: DeclineModel = NEVER_DECLINE, reranker: Reranker | None = None,
        rerank_state: str = "off (no reranker configured)",
    ):
        if embedder.name != index.embedder_name:
            raise ValueError(f"index was built with {index.embedder_name}, not {embedder.name}: rebuild it")
        self.index, self.embedder, self.settings = index, embedder, settings
        self.decline_model, self.reranker, self.rerank_state = decline_model, reranker, rerank_state

    def retrieve(self, question: str, history: Sequence[str] = (), k: int | None = None, mode: str = "hybrid",
                 rerank: bool = True) -> Retrieval:
        """Ranked sections for the question; raises text.QueryError for unusable input."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is unknown: use one of {MODES}")
        k = self.settings.k if k is None else k
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        t0 = time.perf_counter()
        query = clean_query(question, self.settings.max_query_chars)
        rewritten = contextualize(query, history)
        timings = {"clean": _ms(t0)}
        tokens, bm25, dense, dense_chunks, offtopic_top = self._signals(rewritten, timings)
        names = name_tokens(query) if history else None  # the follow-up's own names, for readings joined to history
        own = names if rewritten != query else None
        features, confidence = self._confidence(tokens, bm25, dense, dense_chunks, offtopic_top, own)
        if history and rewritten == query and known_share(tokens, self.index.bm25.idf) >= 0.5:
            # Not visibly elliptical, but it may still lean on the last turn ("类似的方法还有哪些？"):
            # keep whichever reading the calibrated decline model is more confident about.  Only for
            # questions whose own words occur in the bank: an off-topic question ("怎么做红烧肉？")
            # always borrows confidence from an on-topic last turn and must not be joined to it.
            t_alt = time.perf_counter()
            joined = contextualize(query, history, force=True)
            alt = self._signals(joined, {})
            a_tokens, a_bm25, a_dense, a_chunks, a_offtopic = alt
            alt_features, alt_conf = self._confidence(a_tokens, a_bm25, a_dense, a_chunks, a_offtopic, names)
            if alt_conf > confidence:
                rewritten, (tokens, bm25, dense, dense_chunks, offtopic_top) = joined, alt
                features, confidence = alt_features, alt_conf
            timings["followup_check"] = _ms(t_alt)

        t = time.perf_counter()
        n = self.settings.candidates
        fused = self._fuse(bm25, dense, mode)
        order = sorted(fused, key=lambda key: (-fused[key], key))[:n]
        outcome = self.decline_model.outcome(features)
        declined = outcome == DECLINE
        timings["fuse_decline"] = _ms(t)

        rerank_scores: dict[str, float] = {}
        rerank_state = self.rerank_state
        if self.reranker is not None and rerank and order:
            t = time.perf_counter()
            texts = [self._best_chunk(sid, dense_chunks) for sid in order]
            try:
                rerank_scores = dict(zip(order, self.reranker.score(rewritten, texts)))
                order = sorted(order, key=lambda key: (-rerank_scores[key], key))
            except Exception as err:  # a failing reranker must not take retrieval down
                rerank_state = f"off (reranker failed: {type(err).__name__}: {err})"
            timings["rerank"] = _ms(t)
        elif not rerank:
            rerank_state = "off (disabled for this call)"

        hits = tuple(
            Hit(
                id=sid, title=self.index.sections[sid].title,
                score=float(rerank_scores.get(sid, fused.get(sid, 0.0))),
                bm25=float(bm25.get(sid, 0.0)), dense=float(dense.get(sid, 0.0)),
                fused=float(fused.get(sid, 0.0)), rerank=rerank_scores.get(sid),
                chunk_text=self._best_chunk(sid, dense_chunks),
            )
            for sid in order[:k]
        )
        timings["total"] = _ms(t0)
        reason = ""
        if declined:
            reason = f"no section of the bank matches well enough (confidence {confidence:.2f} < {self.decline_model.threshold:.2f})"
        return Retrieval(query, rewritten, hits, declined, reason, confidence, rerank_state, timings, features, outcome)

    # -- per-stage scores, aggregated to sections by their best chunk ------------------------------
    def _signals(self, text: str, timings: dict) -> tuple:
        """(tokens, bm25 by section, dense by section, dense by chunk, best off-topic cosine) for one query text."""
        t = time.perf_counter()
        tokens = tokenize(text)
        bm25 = self._bm25(tokens)
        timings["bm25"] = _ms(t)
        t = time.perf_counter()
        dense, dense_chunks, vec = self._dense(text)
        offtopic = self.index.offtopic
        offtopic_top = float((offtopic @ vec).max()) if len(offtopic) else None
        timings["dense"] = _ms(t)
        return tokens, bm25, dense, dense_chunks, offtopic_top

    def _fuse(self, bm25: dict, dense: dict, mode: str = "hybrid") -> dict[str, float]:
        """Section scores of one system: BM25 alone, dense alone, or their fusion (the configured one)."""
        n = self.settings.candidates
        if mode == "bm25":
            return {key: v for key, v in bm25.items() if v > 0}
        if mode == "dense":
            return dict(dense)
        if self.settings.fusion == "rrf":
            w = self.settings.dense_weight
            return rrf([_top(dense, n), _top({a: b for a, b in bm25.items() if b > 0}, n)], self.settings.rrf_k, [w, 1 - w])
        return weighted(_top(dense, n), _top(bm25, n), self.settings.dense_weight)

    def _confidence(self, tokens: list[str], bm25: dict, dense: dict, dense_chunks: np.ndarray,
                    offtopic_top: float | None, own_tokens: list[str] | None = None) -> tuple[tuple[float, ...], float]:
        """The decline features of one reading (``own_tokens``: the question's own, when the reading joined
        the history) and the calibrated P(answerable) they give.  The question signals look at the top section
        of the hybrid ranking, whatever system is asked for: they judge the question, not a system."""
        fused = self._fuse(bm25, dense)
        top = min(fused, key=lambda key: (-fused[key], key)) if fused else None
        index = self.index
        questions = question_signals(dense_chunks, index.is_question, index.chunk_section, top, tokens,
                                     index.section_tokens.get(top, frozenset()), index.bm25.idf)
        features = decline_features(dense, bm25, tokens, index.bm25.idf, len(index.chunks), offtopic_top,
                                    followup_tokens=own_tokens, bank_names=index.latin_words, questions=questions)
        return features, self.decline_model.probability(features)

    def _bm25(self, tokens: list[str]) -> dict[str, float]:
        if not tokens:
            return {}
        return _max_by_section(self.index, self.index.bm25_scores(tokens))

    def _dense(self, text: str) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        """Section scores, the per-chunk cosines (kept per call: the retriever is shared by threads), the query vector."""
        vec = self.embedder.embed([text], query=True)
        n = self.index.faiss_index.ntotal
        scores, ids = self.index.faiss_index.search(np.ascontiguousarray(vec, dtype=np.float32), n)
        chunk_scores = np.full(n, -1.0, dtype=np.float32)
        chunk_scores[ids[0]] = scores[0]
        return _max_by_section(self.index, chunk_scores), chunk_scores, vec[0]

    def _best_chunk(self, section_id: str, dense_chunks: np.ndarray) -> str:
        """The section's chunk closest to the query: the passage shown to the reranker and cited."""
        idx = np.flatnonzero((self.index.chunk_section == section_id) & ~self.index.is_question)
        return self.index.chunks[idx[int(np.argmax(dense_chunks[idx]))]].text


def _max_by_section(index: HybridIndex, scores: np.ndarray) -> dict[str, float]:
    """Each section's best chunk score, in the index's section order."""
    best = np.full(len(index.section_order), -np.inf)
    np.maximum.at(best, index.chunk_pos, np.asarray(scores, dtype=np.float64))
    return dict(zip(index.section_order, best.tolist()))


def _top(scores: dict[str, float], n: int) -> dict[str, float]:
    return dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)
