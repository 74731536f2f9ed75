"""The hybrid index: BM25 (rank-bm25 over jieba tokens) + FAISS (inner product).

Saved in ``index/`` as five files::

    manifest.json  format, corpus fingerprint, embedder, dim, chunk settings, tokenizer, file sha256s
    chunks.jsonl   one Chunk per line (section id, title, text, offsets, glossary aliases, kind: text or question)
    tokens.json    the BM25 token lists (BM25Okapi is rebuilt from them in ms)
    dense.faiss    faiss.IndexFlatIP over the normalised chunk embeddings
    offtopic.npy   query embeddings of the off-topic reference questions (coach.bank.offtopic)

and beside them ``vectors.npz``, the vector cache (coach.indexing.vector_cache) that lets a rebuild
after a bank change embed only the texts it has not embedded before; it is not part of
the index (losing it costs time only).

``open_index`` loads when the manifest matches the corpus, embedder, chunk
settings and tokenizer, and otherwise rebuilds: a stale index is rebuilt quietly (logged),
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
from typing import Callable, Mapping, Sequence

import numpy as np

from ..bank.chunking import SEPARATORS, ChunkSettings, chunk_sections, question_chunks
from ..embedders import Embedder
from ..bank.glossary import Glossary
from ..text import TOKENIZER_ID, latin_words, tokenize
from ..types import Chunk, Section
from .vector_cache import VectorCache, text_key

log = logging.getLogger(__name__)
FORMAT = 5  # 3: chunks carry glossary aliases; 4: off-topic reference vectors; 5: question chunks
FILES = ("chunks.jsonl", "tokens.json", "dense.faiss", "offtopic.npy")


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
    offtopic: np.ndarray | None = None  # query vectors of the off-topic reference questions (coach.bank.offtopic)

    def __post_init__(self) -> None:
        if self.offtopic is None:
            self.offtopic = np.zeros((0, self.dim), dtype=np.float32)
        from rank_bm25 import BM25Okapi

        # rank-bm25 cannot take an empty token list for every doc; a placeholder keeps ids aligned.
        self.bm25 = BM25Okapi([t or ["\u2205"] for t in self.tokens])
        self.chunk_section = np.array([c.section_id for c in self.chunks], dtype=object)
        self.is_question = np.array([c.kind == "question" for c in self.chunks], dtype=bool)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] | None = None  # bm25_scores builds them once
        self.section_tokens: dict[str, frozenset[str]] = {}
        for c, toks in zip(self.chunks, self.tokens):
            self.section_tokens[c.section_id] = self.section_tokens.get(c.section_id, frozenset()).union(toks)
        self.section_order = list(dict.fromkeys(c.section_id for c in self.chunks))
        position = {sid: i for i, sid in enumerate(self.section_order)}
        self.chunk_pos = np.array([position[c.section_id] for c in self.chunks], dtype=np.int64)
        # The Latin words of the chunks' search text (names the bank uses), from its distinct pieces: the aliases
        # repeat in many chunks, and scanning every search text made a 9,000-chunk index load 0.8 s slower.
        pieces = {p for c in self.chunks for p in (c.category.split(".", 1)[-1], c.text, *c.aliases)}
        self.latin_words = frozenset().union(*map(latin_words, pieces))

    def bm25_scores(self, tokens: Sequence[str]) -> np.ndarray:
        """``self.bm25.get_scores(tokens)``, the same floats (an oracle test checks), from postings.

        Hand-written on purpose: rank-bm25 walks every document for every query token in Python, 5 ms a query
        on the seed's 888 chunks and question chunks; the postings (built on the first query) touch only the
        documents that hold the token."""
        if self._postings is None:
            bm = self.bm25
            postings: dict[str, tuple[list[int], list[float]]] = {}
            for i, (freqs, length) in enumerate(zip(bm.doc_freqs, bm.doc_len)):
                norm = bm.k1 * (1 - bm.b + bm.b * length / bm.avgdl)
                for term, tf in freqs.items():
                    docs, weights = postings.setdefault(term, ([], []))
                    docs.append(i)
                    weights.append((bm.idf.get(term) or 0) * (tf * (bm.k1 + 1) / (tf + norm)))
            self._postings = {t: (np.array(d, dtype=np.int64), np.array(w)) for t, (d, w) in postings.items()}
        score = np.zeros(len(self.chunks))
        for token in tokens:
            hit = self._postings.get(token)
            if hit is not None:
                score[hit[0]] += hit[1]
        return score

    def passage_vectors(self) -> dict[str, np.ndarray]:
        """The embedded search texts' vectors by cache key (coach.indexing.vector_cache): what a shipped cache holds."""
        vectors = self.faiss_index.reconstruct_n(0, self.faiss_index.ntotal)
        return {text_key(c.search_text): v for c, v in zip(self.chunks, vectors)}

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
        np.save(tmp / "offtopic.npy", np.ascontiguousarray(self.offtopic, dtype=np.float32), allow_pickle=False)
        manifest = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "embedder": self.embedder_name,
            "dim": self.dim,
            "chunk_settings": asdict(self.chunk_settings),
            "separators": SEPARATORS,
            "tokenizer": TOKENIZER_ID,
            "n_chunks": len(self.chunks),
            "n_offtopic": int(len(self.offtopic)),
            "sha256": {name: _sha256(tmp / name) for name in FILES},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for name in (*FILES, "manifest.json"):  # manifest last: a crash mid-way leaves a mismatch, not a mix
            os.replace(tmp / name, folder / name)
        tmp.rmdir()


def build_index(
    sections: list[Section], embedder: Embedder, fingerprint: str, settings: ChunkSettings = ChunkSettings(),
    glossary: Glossary = Glossary(), offtopic: Sequence[str] = (), offtopic_vectors: np.ndarray | None = None,
    vector_cache: VectorCache | None = None, similar: Mapping[str, Sequence[str]] | None = None,
) -> HybridIndex:
    """Chunk (with the glossary's aliases), add the sections' similar questions as question chunks, tokenize and
    embed them all, and embed the off-topic questions (or take ``offtopic_vectors``, their vectors from this
    embedder, when given: coach.bank.offtopic).  With a ``vector_cache``, only texts it does not hold are embedded."""
    import faiss

    chunks = chunk_sections(sections, settings, glossary) + question_chunks(sections, similar or {})
    texts = [c.search_text for c in chunks]
    vectors = vector_cache.embed(embedder, texts) if vector_cache is not None else embedder.embed(texts)
    if vectors.shape != (len(chunks), embedder.dim):
        raise ValueError(f"embedder {embedder.name} returned shape {vectors.shape}, expected ({len(chunks)}, {embedder.dim})")
    dense = faiss.IndexFlatIP(embedder.dim)
    dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
    if offtopic_vectors is not None and offtopic_vectors.shape == (len(offtopic), embedder.dim):
        off = offtopic_vectors
    elif offtopic:
        off = embedder.embed(list(offtopic), query=True)
    else:
        off = np.zeros((0, embedder.dim), dtype=np.float32)
    return HybridIndex(
        {s.id: s for s in sections}, chunks, [tokenize(c.search_text) for c in chunks], dense,
        embedder.name, embedder.dim, fingerprint, settings, np.asarray(off, dtype=np.float32),
    )


def _chunk(fields: dict) -> Chunk:
    return Chunk(**{**fields, "aliases": tuple(fields.get("aliases", ()))})


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
        expected["tokenizer"] = manifest.get("tokenizer")  # a new term lexicon re-tokenizes
    except (ValueError, KeyError, TypeError) as err:
        raise CorruptIndex(f"{manifest_path} is unreadable ({err})") from None
    wanted = {"format": FORMAT, "fingerprint": fingerprint, "embedder": embedder.name, "dim": embedder.dim,
              "chunk_settings": asdict(settings), "separators": SEPARATORS,
              "tokenizer": TOKENIZER_ID}
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
        chunks = [_chunk(json.loads(line)) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
        tokens = json.loads((folder / "tokens.json").read_text(encoding="utf-8"))
        dense = faiss.read_index(str(folder / "dense.faiss"))
        offtopic = np.load(folder / "offtopic.npy", allow_pickle=False)
    except Exception as err:  # checksums matched, so this is a bug or a format change
        raise CorruptIndex(f"{folder} cannot be read ({err})") from None
    if dense.d != embedder.dim or dense.ntotal != len(chunks) or len(tokens) != len(chunks):
        raise CorruptIndex(f"{folder}: {dense.ntotal} vectors of dim {dense.d}, {len(chunks)} chunks, {len(tokens)} token lists")
    if offtopic.ndim != 2 or offtopic.shape[1] != embedder.dim:
        raise CorruptIndex(f"{folder}/offtopic.npy has shape {offtopic.shape}, expected (n, {embedder.dim})")
    by_id = {s.id: s for s in sections}
    if any(c.section_id not in by_id for c in chunks):
        raise StaleIndex("index cites sections the corpus no longer has")
    return HybridIndex(by_id, chunks, tokens, dense, embedder.name, embedder.dim, fingerprint, settings, offtopic)


def open_index(
    folder: str | Path, sections: list[Section], embedder: Embedder, fingerprint: str,
    settings: ChunkSettings = ChunkSettings(), rebuild: bool = False, glossary: Glossary = Glossary(),
    offtopic: Sequence[str] = (), offtopic_vectors: Callable[[], np.ndarray | None] = lambda: None,
    vector_cache: Callable[[], VectorCache | None] = lambda: None, similar: Mapping[str, Sequence[str]] | None = None,
) -> tuple[HybridIndex, str]:
    """Load, or (re)build and save. Returns the index and one line saying which happened.
    A build embeds only what ``vector_cache`` lacks, and saves the cache beside the index."""
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
    cache = vector_cache()  # opened only when a build needs it
    index = build_index(sections, embedder, fingerprint, settings, glossary, offtopic, offtopic_vectors(), cache,
                        similar)
    try:
        index.save(folder)
    except OSError as err:
        why += f" (in memory only: cannot write {folder}: {err})"
        log.warning(why)
    embedded = ""
    if cache is not None:
        embedded = f", {cache.misses} of {cache.misses + cache.hits} texts embedded, the rest cached"
        try:
            cache.save()
        except OSError as err:  # the index is fine; only the next rebuild is slower
            log.warning("vector cache not saved (%s): the next rebuild embeds everything again", err)
    return index, f"{why} ({len(index.chunks)} chunks{embedded}, {time.perf_counter() - start:.1f} s)"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
