"""coach.indexing.index: save/load round trip, and open_index rebuilding stale or corrupt indexes with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coach.bank.chunking import ChunkSettings
from coach.bank.corpus import corpus_fingerprint, load_corpus
from coach.embedders import HashEmbedder
from coach.indexing.index import FILES, CorruptIndex, IndexProblem, StaleIndex, build_index, load_index, open_index
from coach.text import tokenize

BANK = """\
## A. 推理
**1. KV Cache 原理？**
推理时把历史 token 的 Key 和 Value 缓存起来，新 token 只与缓存做注意力，省去重复计算。

**2. 为什么要 warmup？**
训练初期学习率从很小逐步升高到峰值，避免梯度过大导致训练发散。

## B. 微调
**3. LoRA 原理？**
冻结预训练权重，在线性层旁边加两个低秩矩阵 A 和 B，只训练 A、B。
"""


class SameNameEmbedder(HashEmbedder):
    """A HashEmbedder of another dimension that claims the name of the 64-dim one."""

    def __init__(self, dim: int):
        super().__init__(dim)
        self.name = "hash-64"


@pytest.fixture
def bank(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "bank.md").write_text(BANK, encoding="utf-8")
    return folder


def sections_of(folder: Path):
    return load_corpus(folder, primary="bank.md")


@pytest.fixture
def saved(bank, tmp_path):
    """An index built and saved into tmp_path/index; returns (folder, sections, embedder, fingerprint)."""
    sections, emb, fp = sections_of(bank), HashEmbedder(64), corpus_fingerprint(bank)
    folder = tmp_path / "index"
    build_index(sections, emb, fp).save(folder)
    return folder, sections, emb, fp


def test_round_trip(saved):
    folder, sections, emb, fp = saved
    built = build_index(sections, emb, fp)
    loaded = load_index(folder, sections, emb, fp)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "manifest.json"])  # no temp folder left
    assert loaded.chunks == built.chunks
    assert loaded.tokens == built.tokens
    assert loaded.sections == {s.id: s for s in sections}
    assert (loaded.embedder_name, loaded.dim, loaded.fingerprint) == ("hash-64", 64, fp)
    assert loaded.faiss_index.ntotal == len(built.chunks) == 3
    np.testing.assert_array_equal(loaded.faiss_index.reconstruct_n(0, 3), built.faiss_index.reconstruct_n(0, 3))
    np.testing.assert_array_equal(
        loaded.faiss_index.reconstruct_n(0, 3), emb.embed([c.search_text for c in built.chunks])
    )
    query = tokenize("KV Cache 缓存")
    np.testing.assert_allclose(loaded.bm25.get_scores(query), built.bm25.get_scores(query))
    assert list(loaded.chunk_section) == ["Q1", "Q2", "Q3"]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["n_chunks"] == 3 and manifest["chunk_settings"] == {"size": 320, "overlap": 64}


def test_open_index_builds_then_loads(bank, tmp_path):
    sections, emb, fp = sections_of(bank), HashEmbedder(64), corpus_fingerprint(bank)
    folder = tmp_path / "idx"
    first, why = open_index(folder, sections, emb, fp)
    assert why.startswith("index rebuilt: no index in") and "(3 chunks," in why
    second, why = open_index(folder, sections, emb, fp)
    assert why == f"index loaded from {folder}"
    assert second.chunks == first.chunks
    _, why = open_index(folder, sections, emb, fp, rebuild=True)
    assert why.startswith("index rebuilt on request")


# -- stale: rebuilt quietly, with the reason --------------------------------------------------------
def test_stale_corpus_changed(saved, bank):
    folder, _, emb, old_fp = saved
    (bank / "bank.md").write_text(BANK.replace("发散", "爆炸"), encoding="utf-8")
    sections, fp = sections_of(bank), corpus_fingerprint(bank)
    assert fp != old_fp
    with pytest.raises(StaleIndex, match="index fingerprint is"):
        load_index(folder, sections, emb, fp)
    index, why = open_index(folder, sections, emb, fp)
    assert why.startswith("index rebuilt: index fingerprint is")
    assert "爆炸" in index.chunks[1].text
    assert load_index(folder, sections, emb, fp).fingerprint == fp  # the rebuilt index was saved


@pytest.mark.parametrize(
    "embedder, settings, reason",
    [
        (HashEmbedder(128), ChunkSettings(), "index embedder is 'hash-64', now 'hash-128'"),
        (SameNameEmbedder(32), ChunkSettings(), "index dim is 64, now 32"),
        (HashEmbedder(64), ChunkSettings(200, 20), "index chunk_settings is {'size': 320, 'overlap': 64}"),
    ],
    ids=["embedder", "dim", "chunk_settings"],
)
def test_stale_embedder_dim_or_chunking(saved, embedder, settings, reason):
    folder, sections, _, fp = saved
    with pytest.raises(StaleIndex) as err:
        load_index(folder, sections, embedder, fp, settings)
    assert not isinstance(err.value, CorruptIndex)
    assert reason in str(err.value)
    index, why = open_index(folder, sections, embedder, fp, settings)
    assert why.startswith(f"index rebuilt: {reason}")
    assert (index.dim, index.chunk_settings) == (embedder.dim, settings)
    assert load_index(folder, sections, embedder, fp, settings).dim == embedder.dim


def test_stale_when_sections_disappear(saved):
    folder, sections, emb, fp = saved
    with pytest.raises(StaleIndex, match="index cites sections the corpus no longer has"):
        load_index(folder, sections[:2], emb, fp)


def test_no_index_is_stale_not_corrupt(tmp_path, bank):
    with pytest.raises(StaleIndex, match="no index in"):
        load_index(tmp_path / "empty", sections_of(bank), HashEmbedder(64), corpus_fingerprint(bank))


# -- corrupt: rebuilt with a warning that says so ---------------------------------------------------
def _truncate_faiss(folder: Path) -> None:
    data = (folder / "dense.faiss").read_bytes()
    (folder / "dense.faiss").write_bytes(data[: len(data) // 2])


def _edit_chunks(folder: Path) -> None:
    path = folder / "chunks.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace("缓存", "缓冲", 1), encoding="utf-8")


def _garbage_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text("{not json at all", encoding="utf-8")


def _manifest_without_keys(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"format": 2}', encoding="utf-8")


def _delete_tokens(folder: Path) -> None:
    (folder / "tokens.json").unlink()


CORRUPTIONS = {
    "truncated_faiss": (_truncate_faiss, "dense.faiss does not match its checksum"),
    "edited_chunks": (_edit_chunks, "chunks.jsonl does not match its checksum"),
    "garbage_manifest": (_garbage_manifest, "manifest.json is unreadable"),
    "manifest_missing_keys": (_manifest_without_keys, "manifest.json is unreadable"),
    "missing_file": (_delete_tokens, "tokens.json is missing"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_index_raises_and_is_rebuilt(saved, case):
    folder, sections, emb, fp = saved
    damage, reason = CORRUPTIONS[case]
    damage(folder)
    with pytest.raises(CorruptIndex) as err:
        load_index(folder, sections, emb, fp)
    assert reason in str(err.value)
    index, why = open_index(folder, sections, emb, fp)
    assert why.startswith("index was corrupt and has been rebuilt: ")
    assert reason in why
    assert len(index.chunks) == 3
    reloaded = load_index(folder, sections, emb, fp)  # the rebuilt files are whole again
    assert reloaded.chunks == index.chunks


def test_problem_classes():
    assert issubclass(StaleIndex, IndexProblem) and issubclass(CorruptIndex, IndexProblem)
    assert not issubclass(StaleIndex, CorruptIndex) and not issubclass(CorruptIndex, StaleIndex)


def test_unwritable_folder_keeps_the_index_in_memory(bank, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    index, why = open_index(blocker, sections_of(bank), HashEmbedder(64), corpus_fingerprint(bank))
    assert "in memory only: cannot write" in why
    assert len(index.chunks) == 3


def test_build_rejects_an_embedder_of_the_wrong_shape(bank):
    class Liar(HashEmbedder):
        def embed(self, texts, query=False):
            return super().embed(texts, query)[:, :8]

    with pytest.raises(ValueError, match=r"embedder hash-64 returned shape \(3, 8\), expected \(3, 64\)"):
        build_index(sections_of(bank), Liar(64), "fp")


def test_stale_when_the_tokenizer_lexicon_changes(saved, monkeypatch):
    import coach.indexing.index

    folder, sections, emb, fp = saved
    monkeypatch.setattr(coach.indexing.index, "TOKENIZER_ID", "jieba+another-lexicon")
    with pytest.raises(StaleIndex, match="index tokenizer is 'jieba\\+"):
        load_index(folder, sections, emb, fp)
    index, why = open_index(folder, sections, emb, fp)
    assert why.startswith("index rebuilt: index tokenizer is")
    assert load_index(folder, sections, emb, fp).fingerprint == fp  # saved with the new tokenizer id


@pytest.mark.parametrize("query", ["KV Cache 原理", "warmup 学习率 学习率", "LoRA 低秩 矩阵 A B", "完全 无关 的 词", ""])
def test_bm25_postings_give_rank_bm25s_own_scores(saved, query):
    """Oracle: HybridIndex.bm25_scores against rank-bm25's get_scores, float for float."""
    folder, sections, emb, fp = saved
    index = load_index(folder, sections, emb, fp)
    tokens = tokenize(query)
    np.testing.assert_array_equal(index.bm25_scores(tokens), index.bm25.get_scores(tokens))
