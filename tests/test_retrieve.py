"""coach.retrieval.retrieve on a five-question bank with the deterministic HashEmbedder.

The bank's topics are disjoint (KV cache, warmup, LoRA, BM25, vector search), so
which section a query must find can be read off by eye.  Only Q4 mentions 缺点,
which the follow-up tests rely on.
"""

from __future__ import annotations

import numpy as np
import pytest

from coach.bank.corpus import corpus_fingerprint, load_corpus
from coach.retrieval.decline import NEVER_DECLINE, fit_decline_model
from coach.embedders import HashEmbedder
from coach.retrieval.followup import contextualize, is_elliptical
from coach.indexing.index import build_index
from coach.retrieval.rerank import OverlapReranker, make_reranker
from coach.retrieval.retrieve import RetrievalSettings, Retriever
from coach.text import QueryError
from eval.calibrate import features_of
from eval.dataset import LabelledQuery

BANK = """\
# 小题库

## A. 推理
**1. KV Cache 原理？**
推理时把历史 token 的 Key 和 Value 缓存起来，新 token 只与缓存做注意力，省去重复计算。显存占用随序列长度线性增长。

**2. 为什么要 warmup？**
训练初期学习率从很小逐步升高到峰值，避免一开始梯度过大导致训练发散，也让 Adam 的二阶矩估计先稳定下来。

## B. 微调
**3. LoRA 原理？**
冻结预训练权重，在线性层旁边加两个低秩矩阵 A 和 B，只训练 A、B，可训练参数很少，推理前可以合并回原权重。

## C. 检索
**4. BM25 怎么打分？**
按词频 TF 和逆文档频率 IDF 给文档打分，k1 控制词频饱和，b 控制文档长度归一化。缺点是只看字面匹配，不懂同义词。

**5. 向量检索用什么相似度？**
向量归一化后用内积，也就是余弦相似度；FAISS 的 IndexFlatIP 做精确的暴力搜索。
"""

KV = "KV Cache 的原理是什么？"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bank")
    (folder / "bank.md").write_text(BANK, encoding="utf-8")
    sections = load_corpus(folder, primary="bank.md")
    assert [s.id for s in sections] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    return build_index(sections, HashEmbedder(), corpus_fingerprint(folder))


@pytest.fixture(scope="module")
def retriever(index):
    return Retriever(index, HashEmbedder())


class FailingReranker:
    name = "boom"

    def score(self, query, texts):
        raise RuntimeError("model exploded")


# -- ranking ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
@pytest.mark.parametrize(
    "query, expected",
    [
        (KV, "Q1"),
        ("为什么训练要 warmup？", "Q2"),
        ("LoRA 低秩矩阵怎么训练", "Q3"),
        ("BM25 的 k1 和 b 参数", "Q4"),
        ("向量检索用余弦相似度吗", "Q5"),
    ],
)
def test_right_section_ranks_first(retriever, mode, query, expected):
    hits = retriever.retrieve(query, mode=mode).hits
    assert hits[0].id == expected
    assert len({h.id for h in hits}) == len(hits), "a section appears once"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hits_are_unique_sections_even_with_many_chunks(tmp_path):
    long_body = "".join(f"第{i:02d}句讲 KV Cache 的缓存细节。" for i in range(60))  # several chunks, one section
    (tmp_path / "bank.md").write_text(BANK + f"\n**6. KV Cache 细节？**\n{long_body}\n", encoding="utf-8")
    sections = load_corpus(tmp_path, primary="bank.md")
    index = build_index(sections, HashEmbedder(), "fp")
    assert sum(c.section_id == "Q6" for c in index.chunks) >= 3
    hits = Retriever(index, HashEmbedder()).retrieve("KV Cache 缓存细节", k=6, mode="dense").hits
    assert sorted(h.id for h in hits) == ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"]


def test_k_default_and_per_call_override(index):
    emb = HashEmbedder()
    assert len(Retriever(index, emb).retrieve(KV, mode="dense").hits) == 5  # default k = 5
    three = Retriever(index, emb, RetrievalSettings(k=3))
    assert len(three.retrieve(KV, mode="dense").hits) == 3
    assert len(three.retrieve(KV, mode="dense", k=1).hits) == 1
    assert [h.id for h in three.retrieve(KV, mode="dense", k=2).hits] == ["Q1", "Q3"]
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        three.retrieve(KV, k=0)


def test_bm25_mode_returns_only_sections_that_share_a_word(retriever):
    # "那它的缺点是什么": every token but 缺点 is a stopword, and only Q4 says 缺点.
    assert [h.id for h in retriever.retrieve("那它的缺点是什么", mode="bm25").hits] == ["Q4"]


def test_hit_carries_the_score_of_every_stage(retriever, index):
    emb = HashEmbedder()
    hybrid = retriever.retrieve(KV, mode="hybrid")
    top, last = hybrid.hits[0], hybrid.hits[-1]
    assert top.id == "Q1" and top.bm25 > 0 and top.rerank is None
    # weighted fusion (default, w=0.8) of min-max scores: Q1 tops both lists -> 0.8 * 1 + 0.2 * 1.
    assert top.fused == pytest.approx(1.0) and top.score == top.fused
    # Q4 is last in dense and shares no word with the query -> 0 in both lists.
    assert (last.id, last.bm25, last.fused) == ("Q4", 0.0, 0.0)
    # the dense score is the cosine of the cleaned query (NFKC: ？ -> ?) and the section's (only) chunk
    chunk = next(c for c in index.chunks if c.section_id == "Q1")
    assert hybrid.query == "KV Cache 的原理是什么?"
    cosine = float(emb.embed([chunk.search_text])[0] @ emb.embed([hybrid.query], query=True)[0])
    assert top.dense == pytest.approx(cosine, abs=1e-6)
    assert top.chunk_text == chunk.text and top.title == "KV Cache 原理？"
    assert retriever.retrieve(KV, mode="bm25").hits[0].score == top.bm25
    assert retriever.retrieve(KV, mode="dense").hits[0].score == top.dense
    assert set(hybrid.timings_ms) >= {"clean", "bm25", "dense", "fuse_decline", "total"}


def test_rrf_fusion_scores_by_hand(index):
    r = Retriever(index, HashEmbedder(), RetrievalSettings(fusion="rrf", rrf_k=60, dense_weight=0.5))
    top = r.retrieve(KV).hits[0]
    assert top.id == "Q1" and top.fused == pytest.approx(0.5 / 61 + 0.5 / 61)  # first in both lists


@pytest.mark.parametrize(
    "kwargs, message",
    [({"k": 0}, "k \\(0\\) and candidates"), ({"candidates": 0}, "candidates \\(0\\)"), ({"fusion": "max"}, "fusion 'max' is unknown")],
)
def test_retrieval_settings_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RetrievalSettings(**kwargs)


def test_index_and_embedder_must_match(index):
    with pytest.raises(ValueError, match="index was built with hash-256, not hash-64: rebuild it"):
        Retriever(index, HashEmbedder(64))


def test_unknown_mode(retriever):
    with pytest.raises(ValueError, match="mode 'sparse' is unknown"):
        retriever.retrieve(KV, mode="sparse")


@pytest.mark.parametrize("bad", ["", "   ", "\u200b", "😀😀", "？？？", "a" * 9000])
def test_bad_queries_raise_query_error(retriever, bad):
    with pytest.raises(QueryError):
        retriever.retrieve(bad)


# -- follow-ups -------------------------------------------------------------------------------------
def test_follow_up_with_history_finds_the_earlier_topic(retriever):
    with_history = retriever.retrieve("那它的缺点是什么", history=[KV])
    assert with_history.rewritten_query == "KV Cache 的原理是什么? 那它的缺点是什么"
    assert with_history.hits[0].id == "Q1"
    assert retriever.retrieve("那它的缺点是什么", history=[KV], mode="bm25").hits[0].id == "Q1"
    alone = retriever.retrieve("那它的缺点是什么", mode="bm25")
    assert alone.rewritten_query == "那它的缺点是什么"
    assert alone.hits[0].id == "Q4"  # without history only the word 缺点 is left


def test_self_contained_question_ignores_history(retriever):
    r = retriever.retrieve("LoRA 低秩矩阵怎么训练", history=[KV])
    assert r.rewritten_query == "LoRA 低秩矩阵怎么训练"
    assert r.hits[0].id == "Q3"


@pytest.mark.parametrize(
    "query, history, expected",
    [
        ("那它的缺点是什么", [KV], "KV Cache 的原理是什么? 那它的缺点是什么"),  # history is NFKC-folded
        ("有什么缺点", ["LoRA 原理？"], "LoRA 原理? 有什么缺点"),  # names no topic of its own
        ("缺点呢", ["LoRA 原理？"], "LoRA 原理? 缺点呢"),
        ("那它呢", [KV, "缺点是什么"], "KV Cache 的原理是什么? 缺点是什么 那它呢"),  # chain of follow-ups
        ("what about its drawbacks?", ["How does LoRA work?"], "How does LoRA work? what about its drawbacks?"),
        ("LoRA 的原理是什么", [KV], "LoRA 的原理是什么"),  # self-contained
        ("Explain BM25 scoring", ["How does LoRA work?"], "Explain BM25 scoring"),
        ("那它的缺点是什么", [], "那它的缺点是什么"),  # nothing to lean on
        ("那它的缺点是什么", ["", "  "], "那它的缺点是什么"),
    ],
)
def test_contextualize(query, history, expected):
    assert contextualize(query, history) == expected


def test_is_elliptical():
    assert is_elliptical("那它的缺点是什么") and is_elliptical("优缺点？") and is_elliptical("and the cons?")
    assert not is_elliptical("KV Cache 的原理是什么？") and not is_elliptical("How does LoRA work?")


# -- decline ----------------------------------------------------------------------------------------
ANSWERABLE = ["KV Cache 缓存了什么", "推理时为什么缓存 Key 和 Value", "warmup 的作用", "学习率为什么要逐步升高",
              "LoRA 训练哪些参数", "低秩矩阵能合并回原权重吗", "BM25 的 k1 是什么", "IDF 逆文档频率怎么算",
              "FAISS 用什么相似度", "向量检索为什么要归一化"]
UNANSWERABLE = ["今天天气怎么样", "如何做红烧肉", "推荐一部电影", "北京到上海的高铁票多少钱", "怎么养猫",
                "足球世界杯冠军是谁", "头疼吃什么药", "周末去哪里玩", "怎么学游泳", "股票明天会涨吗"]


@pytest.fixture(scope="module")
def decline_model(retriever):
    queries = [LabelledQuery(q, ("Q1",)) for q in ANSWERABLE] + [LabelledQuery(q, ()) for q in UNANSWERABLE]
    feats = features_of(retriever, queries)
    return fit_decline_model(feats, [q.answerable for q in queries], "hash-256")


def test_fitted_decline_model_separates_its_training_queries(retriever, decline_model):
    r = Retriever(retriever.index, HashEmbedder(), decline_model=decline_model)
    assert not any(r.retrieve(q).declined for q in ANSWERABLE)
    assert sum(r.retrieve(q).declined for q in UNANSWERABLE) >= 8


@pytest.mark.parametrize("query", ["怎么做糖醋排骨", "明天会下雨吗"])  # not in the training queries
def test_off_topic_query_is_declined(retriever, decline_model, query):
    r = Retriever(retriever.index, HashEmbedder(), decline_model=decline_model).retrieve(query)
    assert r.declined
    assert r.confidence < decline_model.threshold
    assert r.decline_reason.startswith("no section of the bank matches well enough (confidence")
    assert r.hits, "a declined query still returns its nearest sections"


@pytest.mark.parametrize("query, expected", [(KV, "Q1"), ("BM25 怎么打分", "Q4"), ("LoRA 原理？", "Q3")])
def test_on_topic_query_is_answered(retriever, decline_model, query, expected):
    r = Retriever(retriever.index, HashEmbedder(), decline_model=decline_model).retrieve(query)
    assert not r.declined and r.decline_reason == ""
    assert r.confidence >= decline_model.threshold
    assert r.hits[0].id == expected


def test_decline_model_probability_and_threshold_by_hand():
    import math

    from coach.retrieval.decline import DeclineModel

    # z = intercept + coef * (f - mean) / scale = 0 + 2 * (3 - 1) / 4 = 1 -> p = 1 / (1 + e^-1)
    model = DeclineModel("x", (1.0,), (4.0,), (2.0,), 0.0, 0.5)
    assert model.probability((3.0,)) == pytest.approx(1 / (1 + math.exp(-1)))
    assert not model.declines((3.0,))
    assert model.probability((1.0,)) == 0.5 and not model.declines((1.0,))  # at the threshold: answered
    assert model.declines((0.0,))  # z = -0.5


def test_fit_needs_both_classes():
    with pytest.raises(ValueError, match="needs both answerable and unanswerable"):
        fit_decline_model([(0.1,) * 6, (0.2,) * 6], [True, True], "x")


@pytest.mark.parametrize("query", [KV, "如何做红烧肉", "明天会下雨吗", "xyz"])
def test_never_decline_never_declines(retriever, query):
    r = retriever.retrieve(query)  # the default decline model is NEVER_DECLINE
    assert not r.declined and r.decline_reason == ""
    assert r.confidence == 0.5
    assert not NEVER_DECLINE.declines((0.0, -5.0, -10.0, 0.0, 0.0, 0.0))


# -- rerank -----------------------------------------------------------------------------------------
def test_overlap_reranker_docstring_example():
    assert OverlapReranker().score("kv cache", ["KV Cache 原理", "LoRA"]) == [1.0, 0.0]
    assert OverlapReranker().score("的 是", ["任何文本"]) == [0.0]  # only stopwords: no tokens


def test_overlap_reranker_reorders(retriever):
    query = "低秩矩阵 缓存"  # tokens 低 秩 矩阵 缓存: 3 of 4 in Q3, 1 of 4 in Q1
    plain = retriever.retrieve(query)
    assert plain.hits[0].id == "Q1"
    rr = Retriever(retriever.index, HashEmbedder(), reranker=OverlapReranker(), rerank_state="on (overlap)")
    r = rr.retrieve(query)
    assert r.rerank_state == "on (overlap)"
    assert [(h.id, h.rerank) for h in r.hits[:2]] == [("Q3", 0.75), ("Q1", 0.25)]
    assert all(h.score == h.rerank for h in r.hits)
    assert [h.rerank for h in r.hits] == sorted((h.rerank for h in r.hits), reverse=True)
    assert rr.retrieve(query, rerank=False).rerank_state == "off (disabled for this call)"
    assert [h.id for h in rr.retrieve(query, rerank=False).hits] == [h.id for h in plain.hits]


def test_failing_reranker_keeps_results(retriever):
    plain = retriever.retrieve(KV)
    r = Retriever(retriever.index, HashEmbedder(), reranker=FailingReranker(), rerank_state="on (boom)").retrieve(KV)
    assert r.rerank_state == "off (reranker failed: RuntimeError: model exploded)"
    assert [h.id for h in r.hits] == [h.id for h in plain.hits]
    assert all(h.rerank is None for h in r.hits)
    assert "rerank" in r.timings_ms


def test_no_reranker_reports_off(retriever, index):
    assert retriever.retrieve(KV).rerank_state == "off (no reranker configured)"
    reranker, state = make_reranker("")
    assert reranker is None and state.startswith("off (no reranker configured; set COACH_RERANKER")
    r = Retriever(index, HashEmbedder(), reranker=reranker, rerank_state=state).retrieve(KV)
    assert r.rerank_state == state and all(h.rerank is None for h in r.hits)
    reranker, state = make_reranker("overlap")
    assert isinstance(reranker, OverlapReranker) and state == "on (overlap)"


def test_dense_scores_are_cosines(retriever):
    hits = retriever.retrieve(KV, mode="dense").hits
    assert all(-1.0 <= h.dense <= 1.0 for h in hits)
    assert np.isfinite([h.score for h in hits]).all()
