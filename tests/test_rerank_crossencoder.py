"""coach.retrieval.rerank.CrossEncoderReranker with a tiny random-weight BERT cross-encoder built on the spot.

No download: a 2-layer BertForSequenceClassification (hidden 32) and a WordPiece
tokenizer trained on a few lines are saved into a temp folder once per session.
The scores are noise; these tests check plumbing (loading, one float per text,
determinism, ordering), never relevance.
"""

from __future__ import annotations

import os

import pytest

from coach.bank.corpus import load_corpus
from coach.embedders import HashEmbedder
from coach.indexing.index import build_index
from coach.retrieval.rerank import CrossEncoderReranker, make_reranker
from coach.retrieval.retrieve import Retriever

pytestmark = pytest.mark.integration

LINES = [
    "KV Cache 原理？推理时缓存历史 Key 和 Value，新 token 只与缓存做注意力。",
    "为什么要 warmup？训练初期学习率从小逐步升高，避免发散。",
    "LoRA 原理？冻结权重，加低秩矩阵 A 和 B，只训练 A、B。",
    "BM25 怎么打分？词频 TF 和逆文档频率 IDF，k1 与 b 两个参数。",
    "向量检索用什么相似度？归一化后用内积，也就是余弦相似度。",
]
BANK = "## A. 题\n" + "".join(f"**{i}. {line.split('？')[0]}？**\n{line.split('？', 1)[1]}\n\n" for i, line in enumerate(LINES, 1))


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory):
    """Path of a saved tiny cross-encoder (model + tokenizer)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from tokenizers.implementations import BertWordPieceTokenizer
            from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
        except ImportError as err:
            pytest.fail(f"cannot build the tiny cross-encoder: {err}; install requirements.txt (torch, transformers, tokenizers)")
        path = tmp_path_factory.mktemp("tiny-cross-encoder")
        wordpiece = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
        wordpiece.train_from_iterator(
            LINES, vocab_size=300, min_frequency=1, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        )
        tokenizer = BertTokenizerFast(
            tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        )
        torch.manual_seed(1234)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=512, num_labels=1, initializer_range=0.2,
        )
        BertForSequenceClassification(config).eval().save_pretrained(path)
        tokenizer.save_pretrained(path)
        assert tokenizer.tokenize("KV Cache 原理")[:3] == ["kv", "cache", "原"]
        yield path


@pytest.fixture(scope="session")
def reranker_and_state(tiny_cross_encoder):
    return make_reranker(str(tiny_cross_encoder))


def test_make_reranker_loads_the_local_model(reranker_and_state, tiny_cross_encoder):
    reranker, state = reranker_and_state
    assert isinstance(reranker, CrossEncoderReranker), state
    assert state == f"on ({tiny_cross_encoder})"
    assert reranker.name == str(tiny_cross_encoder)


def test_score_returns_one_float_per_text_deterministically(reranker_and_state):
    reranker, _ = reranker_and_state
    texts = ["推理时缓存历史 Key 和 Value", "冻结权重，加低秩矩阵", "词频 TF 和逆文档频率 IDF", "完全无关的句子"]
    first = reranker.score("KV Cache 原理", texts)
    assert len(first) == len(texts)
    assert all(type(s) is float for s in first)
    assert reranker.score("KV Cache 原理", texts) == first
    assert reranker.score("KV Cache 原理", texts[::-1]) == pytest.approx(first[::-1], abs=1e-6)  # pairs scored independently
    assert len(set(first)) > 1, "random weights should still tell texts apart"
    assert reranker.score("KV Cache 原理", []) == []


def test_retriever_orders_hits_by_cross_encoder_scores(reranker_and_state, tmp_path):
    reranker, state = reranker_and_state
    (tmp_path / "bank.md").write_text(BANK, encoding="utf-8")
    sections = load_corpus(tmp_path, primary="bank.md")
    index = build_index(sections, HashEmbedder(), "fp")
    r = Retriever(index, HashEmbedder(), reranker=reranker, rerank_state=state).retrieve("KV Cache 缓存了什么", k=5)
    assert r.rerank_state == state
    assert len(r.hits) == 5
    assert all(h.rerank is not None and h.score == h.rerank for h in r.hits)
    assert [h.rerank for h in r.hits] == sorted((h.rerank for h in r.hits), reverse=True)
    expected = reranker.score(r.rewritten_query, [h.chunk_text for h in r.hits])
    assert [h.rerank for h in r.hits] == pytest.approx(expected, abs=1e-6)


def test_unloadable_path_turns_rerank_off():
    reranker, state = make_reranker("/nonexistent/path")
    assert reranker is None
    assert state.startswith("off (cannot load cross-encoder '/nonexistent/path'")


def test_folder_without_a_model_turns_rerank_off(tmp_path):
    (tmp_path / "README.txt").write_text("no model here", encoding="utf-8")
    reranker, state = make_reranker(str(tmp_path))
    assert reranker is None
    assert state.startswith(f"off (cannot load cross-encoder '{tmp_path}'")
    assert os.listdir(tmp_path) == ["README.txt"]  # nothing was downloaded into it
