"""Rerankers: one required method, ``score(query, texts) -> list[float]`` (higher = more relevant).

- OverlapReranker: deterministic fake; the share of the query's BM25 tokens
  found in each text (``score("kv cache", ["KV Cache 原理", "LoRA"]) -> [1.0, 0.0]``).
- CrossEncoderReranker: any sentence-transformers CrossEncoder, by name or local
  path (e.g. a bge-reranker on a machine that can download it).

``make_reranker`` never raises: with nothing configured or nothing loadable it
returns ``None`` and a state line, "rerank: off (why)", that the pipeline
reports in its results and log.
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

from ..text import tokenize

log = logging.getLogger(__name__)


class Reranker(Protocol):
    name: str

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...


class OverlapReranker:
    """Fake: fraction of query tokens present in the text."""

    name = "overlap"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        q = set(tokenize(query))
        return [len(q & set(tokenize(t))) / len(q) if q else 0.0 for t in texts]


class CrossEncoderReranker:
    """sentence-transformers CrossEncoder; loads once, scores (query, text) pairs in one batch."""

    def __init__(self, model: str, max_length: int = 512, local_only: bool = True):
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(model, device="cpu", max_length=max_length, local_files_only=local_only)
        self.name = model

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return [float(s) for s in self._model.predict([(query, t) for t in texts], show_progress_bar=False)]


def make_reranker(spec: str) -> tuple[Reranker | None, str]:
    """``""`` -> off; ``"overlap"`` -> fake; anything else -> a CrossEncoder name or path."""
    if not spec:
        return None, "off (no reranker configured; set COACH_RERANKER to a CrossEncoder name or local path)"
    if spec == "overlap":
        return OverlapReranker(), "on (overlap)"
    try:
        return CrossEncoderReranker(spec), f"on ({spec})"
    except Exception as err:  # any load failure must leave retrieval working
        state = f"off (cannot load cross-encoder {spec!r}: {type(err).__name__}: {str(err).splitlines()[0][:200]})"
        log.warning("rerank: %s", state)
        return None, state
