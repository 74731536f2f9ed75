"""coach.bank.similar and the question signals: similar questions are searched like titles, never cited, named in
errors by file and line; the answer threshold of the three outcomes (coach.retrieval.decline) worked out by hand."""

from __future__ import annotations

import json
import re
import math
from dataclasses import replace

import numpy as np
import pytest

from coach.bank.corpus import CorpusError, corpus_fingerprint, load_corpus
from coach.retrieval.decline import (FEATURES, QUESTION_FEATURES, DeclineModel, fit_decline_model, question_signals,
                                     uncovered_idf)
from coach.embedders import HashEmbedder
from coach.indexing.index import open_index
from coach.retrieval.retrieve import Retriever
from coach.bank.similar import load_similar, parse_similar
from coach.types import ANSWER, DECLINE, RELATED, Answer, Retrieval

BANK = """\
## A. 推理
**1. KV Cache 原理？**
推理时把历史 token 的 Key 和 Value 缓存起来，新 token 只与缓存做注意力，省去重复计算。

**2. 为什么要 warmup？**
训练初期学习率从很小逐步升高到峰值，避免梯度过大导致训练发散。
"""
SIMILAR = [{"id": "Q1", "questions": ["解码时为啥要存下以前的键和值", "How does KV caching speed up decoding?"]},
           {"id": "Q2", "questions": ["学习率预热有什么用"]}]


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "bank.md").write_text(BANK, encoding="utf-8")
    (folder / "similar_questions.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in SIMILAR) + "\n", encoding="utf-8")
    return folder


def retriever_for(folder, tmp_path):
    sections = load_corpus(folder, primary="bank.md")
    emb = HashEmbedder(256)
    index, _ = open_index(tmp_path / "index", sections, emb, corpus_fingerprint(folder),
                          similar=load_similar(folder, {s.id for s in sections}))
    return Retriever(index, emb)


def test_similar_questions_find_their_section_and_are_never_the_cited_passage(corpus, tmp_path):
    r = retriever_for(corpus, tmp_path)
    assert sum(c.kind == "question" for c in r.index.chunks) == 3
    hit = r.retrieve("学习率预热有什么用", k=1).hits[0]
    assert hit.id == "Q2"
    assert hit.chunk_text.startswith("为什么要 warmup？")  # the passage shown is the section's text, not the question
    assert r.retrieve("How does KV caching speed up decoding?", k=1).hits[0].id == "Q1"


def test_the_similar_questions_file_is_part_of_the_index_fingerprint(corpus):
    before = corpus_fingerprint(corpus)
    with open(corpus / "similar_questions.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "Q2", "questions": ["warmup 干嘛的"]}, ensure_ascii=False) + "\n")
    assert corpus_fingerprint(corpus) != before  # so the index is rebuilt


@pytest.mark.parametrize("line, message", [
    ("not json", "similar.jsonl:2: not a similar-questions line"),
    ('{"id": "Q9", "questions": ["x"]}', "similar.jsonl:2: section 'Q9' is in no bank"),
    ('{"id": "Q1", "questions": "x"}', "similar.jsonl:2: 'id' must be a string"),
    ('{"questions": ["x"]}', "similar.jsonl:2: not a similar-questions line (missing 'id')"),
])
def test_a_malformed_line_names_file_and_line(line, message):
    good = json.dumps(SIMILAR[0], ensure_ascii=False)
    with pytest.raises(CorpusError, match=re.escape(message)):
        parse_similar(f"{good}\n{line}\n", "similar.jsonl", {"Q1", "Q2"})


def test_question_signals_by_hand():
    cos = [0.80, 0.95, 0.70, 0.85, 0.60]
    is_q = [False, True, False, True, True]
    section = ["Q1", "Q1", "Q2", "Q2", "Q3"]
    idf = {"kv": 2.0, "cache": 1.0, "原理": 1.0}
    got = question_signals(cos, is_q, section, "Q1", ["kv", "cache", "原理", "未知"], {"kv", "原理"}, idf)
    # question_max .95; question_top (Q1) .95; gap .95 - .85; over text .95 - .80; top over text .95 - .80;
    # coverage: (2 + 1) / (2 + 1 + 1), the unknown word not counted; uncovered: "cache" (idf 1) is not in Q1
    assert got == pytest.approx((0.95, 0.95, 0.10, 0.15, 0.15, 0.75, 1.0))
    none = question_signals(cos, [False] * 5, section, "Q1", ["kv"], {"kv"}, idf)
    assert all(math.isnan(x) for x in none[:5]) and none[5:] == (1.0, 0.0)  # no similar questions: neutral
    assert len(FEATURES) == 10 + len(QUESTION_FEATURES)


def test_uncovered_idf_by_hand():
    idf = {"kv": 2.0, "cache": 1.0, "q": 1.5, "的": -0.2}
    # "q" is asked and the section lacks it; "红烧肉" is no bank word (rare_unknown's business); idf < 0 counts 0
    assert uncovered_idf(["kv", "cache", "q", "红烧肉", "的"], {"kv", "cache"}, idf) == 1.5
    assert uncovered_idf(["kv", "q", "q"], set(), idf) == 5.0  # every occurrence counts, as BM25's tokens repeat
    assert uncovered_idf([], {"kv"}, idf) == 0.0


def test_two_thresholds_give_three_outcomes():
    n = len(FEATURES)
    coef = (1.0,) + (0.0,) * (n - 1)
    model = DeclineModel("x", (0.0,) * n, (1.0,) * n, coef, 0.0, threshold=0.3, answer_threshold=0.7)
    f = lambda z: (z,) + (0.0,) * (n - 1)  # noqa: E731  P = sigmoid(z)
    assert model.outcome(f(-2.0)) == DECLINE and model.declines(f(-2.0))
    assert model.outcome(f(0.0)) == RELATED and not model.declines(f(0.0))
    assert model.outcome(f(2.0)) == ANSWER
    assert DeclineModel("x", (0.0,) * n, (1.0,) * n, coef, 0.0, 0.3).outcome(f(0.0)) == ANSWER  # no answer threshold


def test_the_answer_threshold_caps_direct_answers_to_marked_unanswerable_rows():
    # one feature = the label plus noise: P rises with it; the answer threshold is set on the marked rows only
    rng = np.random.default_rng(0)
    y = [True] * 40 + [False] * 40
    feats = [(float(a) + rng.normal(0, 0.6),) + (0.0,) * (len(FEATURES) - 1) for a in y]
    marked = [i % 2 == 0 for i in range(80)]
    model = fit_decline_model(feats, y, "x", 0.9, answer_on=marked, max_direct_unanswerable=0.1)
    direct = [model.outcome(f) == ANSWER for f in feats]
    harm = [d for d, a, m in zip(direct, y, marked) if m and not a]
    assert sum(harm) <= 0.1 * len(harm)
    assert model.answer_coef is not None  # an answer model was fitted beside the decline model
    answered = [not model.declines(f) for f, a in zip(feats, y) if a]
    assert sum(answered) >= 0.9 * 40


def test_the_answer_model_learns_answered_vs_related_from_the_labelled_rows_only():
    # feature 0 tells on-topic from off-topic, feature 1 answered from related.  The off-topic rows (group None)
    # are negatives of the decline model only; the answer model, fitted on the labelled rows, weighs feature 1.
    n = len(FEATURES)
    row = lambda a, b: (a, b) + (0.0,) * (n - 2)  # noqa: E731
    answered = [row(1.0, 1.0 + 0.1 * i) for i in range(10)]
    related = [row(1.0, -1.0 - 0.1 * i) for i in range(10)]
    offtopic = [row(-1.0 - 0.1 * i, 1.0) for i in range(30)]  # off-topic, though "answer-like" on feature 1
    feats = answered + related + offtopic
    model = fit_decline_model(feats, [True] * 10 + [False] * 40, "x", 0.9,
                              threshold_on=["real"] * 20 + [None] * 30, answer_on=[True] * 20 + [False] * 30,
                              max_direct_unanswerable=0.0)
    assert abs(model.answer_coef[1]) > 5 * abs(model.answer_coef[0])  # feature 0 is constant on labelled rows
    assert model.answer_probability(row(1.0, 1.5)) > model.answer_threshold > model.answer_probability(row(1.0, -1.5))
    assert [model.outcome(f) for f in (row(1.0, 1.5), row(-2.0, 1.5))] == [ANSWER, DECLINE]
    lenient = replace(model, threshold=0.0)  # a related row the decline threshold lets through: related, not answer
    assert lenient.outcome(row(1.0, -1.5)) == RELATED
    single = DeclineModel("x", model.mean, model.scale, model.coef, model.intercept, model.threshold,
                          answer_threshold=model.answer_threshold)
    assert single.answer_probability(row(1.0, 1.5)) == single.probability(row(1.0, 1.5))  # no answer model: one P


def test_outcome_and_declined_agree_on_every_record():
    with pytest.raises(ValueError, match="contradicts"):
        Retrieval("q", "q", (), False, "", 0.5, "off", outcome=DECLINE)
    with pytest.raises(ValueError, match="not one of"):
        Answer("q", "t", (), False, "", "q", "extractive", "off", outcome="maybe")
    assert Retrieval("q", "q", (), True, "why", 0.1, "off").outcome == DECLINE
    assert Answer("q", "t", (), False, "", "q", "extractive", "off").outcome == ANSWER
