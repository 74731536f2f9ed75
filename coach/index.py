"""The hybrid index: BM25 (rank-bm25 over jieba tokens) + FAISS (inner product).

Saved in ``index/`` as four files::

    manifest.json  format, corpus fingerprint, embedder, dim, chunk settings, file sha256s
    chunks.jsonl   one Chunk per line (section id, title, text, offsets)
    tokens.json    the BM25 token lists (BM25Okapi is rebuilt from them in ms)
    dense.faiss    faiss.IndexFlatIP over the normalised chunk embeddings

``open_index`` loads when the manifest matches the corpus, embedder and chunk
settings, and otherwise rebuilds: a stale index is rebuilt quietly (logged),
a corrupt one with a warning that says what was wrong.  An index built with
another embedder or dimension is never mixed with the current one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .chunking import SEPARATORS, ChunkSettings, chunk_sections
from .embedders import Embedder
from .text import tokenize
from .types import Chunk, Section

log = logging.getLogger(__name__)
FORMAT = 2
FILES = ("chunks.jsonl", "tokens.json", "dense.faiss")


class IndexProblem(RuntimeError):
    """The saved index cannot be used as it is (missing, stale or corrupt)."""


class StaleIndex(IndexProblem):
    """Built from another corpus, embedder or chunking: rebuild."""


class CorruptIndex(IndexProblem):
    """A file is missing, truncated or altered: rebuild with `python -m coach build-index`."""


@dataclass
class HybridIndex:
    """Chunks with their BM25 model and FAISS vectors, plus the sections they came from."""

    sections: dict[str, Section]
    chunks: list[Chunk]
    tokens: list[list[str]]
    faiss_index: object
    embedder_name: str
    dim: int
    fingerprint: str
    chunk_settings: ChunkSettings

    def __post_init__(self) -> None:
        from rank_bm25 import BM25Okapi

        # rank-bm25 cannot take an empty token list for every doc; a placeholder keeps ids aligned.
        self.bm25 = BM25Okapi([t or ["\u2205"] for t in self.tokens])
        self.chunk_section = np.array([c.section_id for c in self.chunks], dtype=object)
        self.section_order = list(dict.fromkeys(c.section_id for c in self.chunks))

    def save(self, folder: str | Path) -> None:
        """Write atomically: files go to a temp folder, then replace the old ones."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in self.chunks:
                fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        (tmp / "tokens.json").write_text(json.dumps(self.tokens, ensure_ascii=False), encoding="utf-8")
        faiss.write_index(self.faiss_index, str(tmp / "dense.faiss"))
        manifest = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "embedder": self.embedder_name,
            "dim": self.dim,
            "chunk_settings": asdict(self.chunk_settings),
            "separators": SEPARATORS,
            "n_chunks": len(self.chunks),
            "sha256": {name: _sha256(tmp / name) for name in FILES},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for name in (*FILES, "manifest.json"):  # manifest last: a crash mid-way leaves a mismatch, not a mix
            os.replace(tmp / name, folder / name)
        tmp.rmdir()


def build_index(
    sections: list[Section], embedder: Embedder, fingerprint: str, settings: ChunkSettings = ChunkSettings()
) -> HybridIndex:
    """Chunk, tokenize and embed every section."""
    import faiss

    chunks = chunk_sections(sections, settings)
    vectors = embedder.embed([c.search_text for c in chunks])
    if vectors.shape != (len(chunks), embedder.dim):
        raise ValueError(f"embedder {embedder.name} returned shape {vectors.shape}, expected ({len(chunks)}, {embedder.dim})")
    dense = faiss.IndexFlatIP(embedder.dim)
    dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return HybridIndex(
        {s.id: s for s in sections}, chunks, [tokenize(c.search_text) for c in chunks], dense,
        embedder.name, embedder.dim, fingerprint, settings,
    )


def load_index(
    folder: str | Path, sections: list[Section], embedder: Embedder, fingerprint: str,
    settings: ChunkSettings = ChunkSettings(),
) -> HybridIndex:
    """Load a saved index, or raise StaleIndex / CorruptIndex saying why."""
    import faiss

    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise StaleIndex(f"no index in {folder}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = {k: manifest[k] for k in ("format", "fingerprint", "embedder", "dim", "chunk_settings", "sha256")}
        expected["separators"] = manifest.get("separators")  # the splitter's separators re-chunk too
    except (ValueError, KeyError, TypeError) as err:
        raise CorruptIndex(f"{manifest_path} is unreadable ({err})") from None
    wanted = {"format": FORMAT, "fingerprint": fingerprint, "embedder": embedder.name, "dim": embedder.dim,
              "chunk_settings": asdict(settings), "separators": SEPARATORS}
    for key, value in wanted.items():
        if expected[key] != value:
            raise StaleIndex(f"index {key} is {expected[key]!r}, now {value!r}")
    for name in FILES:
        path = folder / name
        if not path.exists():
            raise CorruptIndex(f"{path} is missing")
        if _sha256(path) != expected["sha256"].get(name):
            raise CorruptIndex(f"{path} does not match its checksum in manifest.json (truncated or edited)")
    try:
        chunks = [Chunk(**json.loads(line)) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
        tokens = json.loads((folder / "tokens.json").read_text(encoding="utf-8"))
        dense = faiss.read_index(str(folder / "dense.faiss"))
    except Exception as err:  # checksums matched, so this is a bug or a format change
        raise CorruptIndex(f"{folder} cannot be read ({err})") from None
    if dense.d != embedder.dim or dense.ntotal != len(chunks) or len(tokens) != len(chunks):
        raise CorruptIndex(f"{folder}: {dense.ntotal} vectors of dim {dense.d}, {len(chunks)} chunks, {len(tokens)} token lists")
    by_id = {s.id: s for s in sections}
    if any(c.section_id not in by_id for c in chunks):
        raise StaleIndex("index cites sections the corpus no longer has")
    return HybridIndex(by_id, chunks, tokens, dense, embedder.name, embedder.dim, fingerprint, settings)


def open_index(
    folder: str | Path, sections: list[Section], embedder: Embedder, fingerprint: str,
    settings: ChunkSettings = ChunkSettings(), rebuild: bool = False,
) -> tuple[HybridIndex, str]:
    """Load, or (re)build and save. Returns the index and one line saying which happened."""
    if not rebuild:
        try:
            return load_index(folder, sections, embedder, fingerprint, settings), f"index loaded from {folder}"
        except StaleIndex as err:
            why = f"index rebuilt: {err}"
            log.info(why)
        except CorruptIndex as err:
            why = f"index was corrupt and has been rebuilt: {err}"
            log.warning(why)
    else:
        why = "index rebuilt on request"
    start = time.perf_counter()
    index = build_index(sections, embedder, fingerprint, settings)
    try:
        index.save(folder)
    except OSError as err:
        why += f" (in memory only: cannot write {folder}: {err})"
        log.warning(why)
    return index, f"{why} ({len(index.chunks)} chunks, {time.perf_counter() - start:.1f} s)"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
