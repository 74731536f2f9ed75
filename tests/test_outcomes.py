"""The three outcomes of Coach.ask (answer / related / decline) and the LLM's coverage judgement.

Same hand-written bank and real retrieval as tests/test_answer.py (hash embedder + BM25, index in
tmp_path, a decline model fitted on its hand-made queries).  "related" comes from that decline model
with an ``answer_threshold`` (coach.retrieval.decline.DeclineModel.outcome): at 1.0 every question it does
not decline is related; the shipped calibration has no answer threshold yet.  The only fake is the
LLM (FakeLLM), which streams a reply word by word, so a JSON reply arrives in pieces as from vLLM.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from types import SimpleNamespace

import pytest

from coach.answering.answer import RELATED_HEAD, RESTART, Coach, StreamRestart, bank_categories
from coach.answering.coverage import (CoverageError, CoverageStream, check_coverage, coverage_schema)
from coach.retrieval.decline import fit_decline_model
from coach.llm import FakeLLM, LLMUnavailable
from coach.pipeline import build_retriever
from coach.answering.prompts import RELATED, language_of
from coach.settings import Settings
from coach.text import QueryError
from coach.types import Answer
from eval.calibrate import features_of
from tests.test_answer import ANSWERABLE, BANK, KV_QUESTION, UNANSWERABLE

HEAD_ZH, HEAD_EN = RELATED_HEAD["Chinese"], RELATED_HEAD["English"]
CATEGORIES = ("A. 推理", "I. 代码", "J. 追问")


RecordingLLM = FakeLLM  # FakeLLM keeps the response_format of every call in ``formats``


def judged(coverage: str, sections, answer: str, not_covered: str = "") -> str:
    """A structured reply as the schema asks for it, spaced so that FakeLLM streams it in many pieces."""
    return json.dumps({"coverage": coverage, "sections": list(sections), "not_covered": not_covered,
                       "answer": answer}, ensure_ascii=False, indent=1)


@pytest.fixture(scope="module")
def declining(tmp_path_factory):
    root = tmp_path_factory.mktemp("bank")
    (root / "corpus").mkdir()
    (root / "corpus" / "llm_interview_qa.md").write_text(BANK, encoding="utf-8")
    retriever, _ = build_retriever(Settings(corpus_dir=root / "corpus", index_dir=root / "index", embedder="hash"))
    queries = [SimpleNamespace(query=q, history=()) for q in ANSWERABLE + UNANSWERABLE]
    retriever.decline_model = fit_decline_model(
        features_of(retriever, queries), [True] * len(ANSWERABLE) + [False] * len(UNANSWERABLE),
        retriever.embedder.name, min_answered=1.0)
    return retriever


@pytest.fixture(scope="module")
def related(declining):
    """The same retriever and decline model, with every question it does not decline marked related."""
    from coach.retrieval.retrieve import Retriever

    model = replace(declining.decline_model, answer_threshold=1.0)
    return Retriever(declining.index, declining.embedder, declining.settings, model)


def run(coach: Coach, question: str, history=()) -> tuple[list[str], Answer]:
    *pieces, answer = list(coach.ask_stream(question, history))
    assert isinstance(answer, Answer) and all(isinstance(p, str) for p in pieces)
    return pieces, answer


def after_restart(pieces: list[str]) -> str:
    """What a reader shows at the end: the pieces after the last RESTART."""
    last = max((i for i, p in enumerate(pieces) if isinstance(p, StreamRestart)), default=-1)
    return "".join(pieces[last + 1:])


# -- the decline model's three-way split -----------------------------------------------------------
def test_answer_threshold_splits_answer_related_and_decline(declining):
    from coach.retrieval.retrieve import Retriever

    p_kv = declining.retrieve(KV_QUESTION).confidence
    p_lora = declining.retrieve("LoRA 是怎么做的？").confidence
    assert p_lora < p_kv, "the premise: the bank is more sure about KV Cache than about this LoRA wording"
    model = replace(declining.decline_model, answer_threshold=(p_kv + p_lora) / 2)
    split = Retriever(declining.index, declining.embedder, declining.settings, model)
    assert split.retrieve(KV_QUESTION).outcome == "answer"
    assert split.retrieve("LoRA 是怎么做的？").outcome == "related"
    assert split.retrieve("怎么做红烧肉？").outcome == "decline"


# -- related, offline ----------------------------------------------------------------------------------
@pytest.mark.parametrize("question, head", [(KV_QUESTION, HEAD_ZH), ("What is beam search?", HEAD_EN)])
def test_related_offline_says_first_that_nothing_answers_then_quotes_the_closest(related, question, head):
    pieces, answer = run(Coach(related), question)
    assert answer.outcome == "related" and not answer.declined and answer.mode == "extractive"
    assert answer.text.startswith(head), answer.text[:80]
    assert language_of(answer.text.split("\n")[0]) == language_of(question)
    shown = [h.id for h in answer.hits[:2]]
    assert [c.id for c in answer.citations] == shown
    for sid in shown:  # quoted verbatim, each under its id
        body = related.index.sections[sid].body
        assert f"**[{sid}] {related.index.sections[sid].title}**" in answer.text
        assert all(f"> {line}" in answer.text for line in body.splitlines() if line.strip())
    assert "题库中的参考答案" not in answer.text and "From the question bank" not in answer.text  # not an answer
    assert answer.suggestions == () and "".join(pieces) == answer.text


# -- related with an LLM -----------------------------------------------------------------------------------
def test_related_with_llm_heads_the_text_and_the_model_only_describes(related):
    llm = RecordingLLM().enqueue("[Q1] 讲的是 KV Cache 缓存 K/V 的原理；[J1] 讲显存太大时的办法；[Q9] 不存在。")
    coach = Coach(related, llm, context_sections=2, coverage=True)
    pieces, answer = run(coach, KV_QUESTION)
    assert answer.outcome == "related" and answer.mode == "fake-llm" and answer.coverage == ""
    assert pieces[0] == HEAD_ZH + "\n\n", "the heading comes first, before the model's first token"
    assert answer.text.startswith(HEAD_ZH) and "KV Cache 缓存 K/V 的原理" in answer.text
    system = llm.history[0][0]["content"]
    assert system == RELATED.format(language="Chinese") and "Do NOT answer the question" in system
    assert llm.formats == [None], "a related outcome is never re-judged by the model"
    shown = [h.id for h in answer.hits[:2]]
    assert [c.id for c in answer.citations][:1] == ["Q1"] and {c.id for c in answer.citations} == set(shown)
    assert answer.dropped_citations == ("Q9",) and "Q9" not in answer.text
    assert "".join(pieces).strip() == answer.text


def test_related_with_the_llm_down_restarts_with_the_quoted_sections(related):
    llm = FakeLLM().enqueue(LLMUnavailable("LLM server at http://x is unreachable"))
    pieces, answer = run(Coach(related, llm), "What is beam search?")
    assert answer.outcome == "related" and answer.mode == "extractive"
    assert RESTART in pieces and after_restart(pieces) == answer.text
    assert answer.text.startswith(HEAD_EN) and "> Beam search keeps" in answer.text
    assert any("unreachable" in n and "related sections" in n for n in answer.notices)


# -- the coverage judgement ------------------------------------------------------------------------------
def test_coverage_full_is_an_answer_streamed_as_it_arrives(declining):
    reply = judged("full", ["Q1"], "推理时缓存历史 token 的 K 和 V [Q1]，\n以 \"显存\" 换速度。")
    llm = RecordingLLM().enqueue(reply)
    pieces, answer = run(Coach(declining, llm, context_sections=2, coverage=True), KV_QUESTION)
    assert answer.outcome == "answer" and answer.coverage == "full" and answer.mode == "fake-llm"
    assert answer.text == "推理时缓存历史 token 的 K 和 V [Q1]，\n以 \"显存\" 换速度。"  # JSON escapes decoded
    assert [c.id for c in answer.citations] == ["Q1"] and not answer.citations_attached
    assert len(pieces) >= 3 and "".join(pieces) == answer.text, "the answer field streams in pieces"
    assert RESTART not in pieces
    fmt = llm.formats[0]
    shown = sorted(h.id for h in answer.hits[:2])
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert list(schema["properties"]) == ["coverage", "sections", "not_covered", "answer"]
    assert schema["properties"]["sections"]["items"]["enum"] == shown
    assert '"coverage"' in llm.history[0][0]["content"], "the system prompt asks for the judgement"


def test_coverage_partly_says_what_the_bank_does_not_cover_then_answers_the_rest(declining):
    reply = judged("partly", ["Q1"], "KV Cache 缓存历史 K/V [Q1]。", not_covered="KV Cache 在训练时的用法 [Q77]")
    coach = Coach(declining, FakeLLM().enqueue(reply), coverage=True)
    pieces, answer = run(coach, "KV Cache 的原理是什么？训练时也用吗？")
    assert answer.outcome == "answer" and answer.coverage == "partly"
    first, rest = answer.text.split("\n\n", 1)
    assert first == "题库只回答了这个问题的一部分，没有涵盖：KV Cache 在训练时的用法。"
    assert rest == "KV Cache 缓存历史 K/V [Q1]。"
    assert "Q77" in answer.dropped_citations and "Q77" not in answer.text
    assert "".join(pieces) == answer.text

    en = Coach(declining, FakeLLM().enqueue(judged("partly", ["Q5"], "It keeps the k best sequences [Q5].",
                                                    "how to choose k")), coverage=True).ask("What is beam search and how do I choose k?")
    assert en.text.startswith("The question bank answers only part of this question; it does not cover: how to choose k.")


def test_coverage_none_turns_the_answer_into_related_material(declining):
    reply = judged("none", [], "[Q3] 讲的是 LoRA 的做法，[Q1] 讲 KV Cache。")
    pieces, answer = run(Coach(declining, FakeLLM().enqueue(reply), context_sections=3, coverage=True),
                         "LoRA 是怎么做的？")
    assert answer.outcome == "related" and answer.coverage == "none" and not answer.declined
    assert answer.text.startswith(HEAD_ZH) and answer.text.endswith("[Q3] 讲的是 LoRA 的做法，[Q1] 讲 KV Cache。")
    assert pieces[0] == HEAD_ZH + "\n\n"
    shown = [h.id for h in answer.hits[:3]]
    assert {c.id for c in answer.citations} == set(shown), "related material shows every section it was given"
    assert "".join(pieces) == answer.text


@pytest.mark.parametrize("reply, why", [
    ("缓存 K/V [Q1]。", "not complete JSON"),  # plain text: a server that ignored response_format
    ('{"coverage": "full", "sections": ["Q1"], "not_covered": "", "answer": "缓存 K/V [Q1] 然后', "not complete JSON"),
    ('["full", "Q1"]', "not an object"),
    ('{"coverage": "full", "sections": ["Q1"], "answer": "缓存 K/V [Q1]"}', "lacks the field(s) not_covered"),
    (judged("mostly", ["Q1"], "缓存 K/V [Q1]"), "'mostly' is not one of"),
    (judged("full", ["Q99"], "缓存 K/V [Q1]"), "names section(s) it was not shown: Q99"),
    (judged("full", [], "缓存 K/V [Q1]"), "'full' names no section"),
    (judged("full", ["Q1"], ""), "answer field is empty"),
    ('{"coverage": "full", "sections": "Q1", "not_covered": "", "answer": "x [Q1]"}', "not a list"),
    ('{"coverage": "full", "sections": ["Q1"], "not_covered": "", "answer": "x [Q1]", "extra": 1}', "unexpected field"),
])
def test_an_unusable_judgement_is_recorded_and_the_offline_outcome_stands(declining, reply, why):
    pieces, answer = run(Coach(declining, FakeLLM().enqueue(reply), coverage=True), KV_QUESTION)
    assert answer.outcome == "answer" and answer.mode == "extractive" and answer.coverage == ""
    assert answer.citations[0].id == "Q1" and answer.text.startswith("题库中的参考答案")
    assert any("coverage judgement is unusable" in n and why in n and "reference answer" in n
               for n in answer.notices), answer.notices
    assert pieces[-1] == answer.text and after_restart(pieces) == answer.text
    before = pieces[:-1]
    assert not "".join(before) or isinstance(before[-1], StreamRestart), "text streamed before is withdrawn"


def test_a_judgement_cut_mid_answer_withdraws_what_was_streamed(declining):
    head = '{"coverage": "full", "sections": ["Q1"], "not_covered": "", "answer": "推理时 缓存 历史 K/V'
    llm = FakeLLM().enqueue((head, LLMUnavailable("dropped the connection")))
    pieces, answer = run(Coach(declining, llm, coverage=True), KV_QUESTION)
    streamed_before = "".join(pieces[: pieces.index(RESTART)])
    assert "推理时" in streamed_before, "the answer field was streamed before the cut"
    assert answer.mode == "extractive" and not answer.partial and after_restart(pieces) == answer.text
    assert any("dropped the connection" in n for n in answer.notices)


def test_a_judgement_on_a_related_retrieval_is_never_asked_for(related):
    """The model may lower the outcome, never raise it: a related retrieval gets the related prompt, no schema."""
    llm = RecordingLLM().enqueue(judged("full", ["Q1"], "缓存 K/V [Q1]"))
    answer = Coach(related, llm, coverage=True).ask(KV_QUESTION)
    assert llm.formats == [None] and answer.outcome == "related" and answer.text.startswith(HEAD_ZH)


def test_coverage_fields_in_another_order_are_checked_before_anything_is_shown(declining):
    reply = json.dumps({"answer": "缓存 K/V [Q1]", "coverage": "full", "sections": ["Q1"], "not_covered": ""},
                       ensure_ascii=False)
    pieces, answer = run(Coach(declining, FakeLLM().enqueue(reply), coverage=True), KV_QUESTION)
    assert answer.coverage == "full" and answer.text == "缓存 K/V [Q1]" and pieces == [answer.text]


def test_coverage_with_the_server_down_is_the_offline_answer(declining):
    llm = FakeLLM().enqueue(LLMUnavailable("LLM server at http://x is unreachable"))
    pieces, answer = run(Coach(declining, llm, coverage=True), KV_QUESTION)
    assert answer.mode == "extractive" and answer.outcome == "answer" and RESTART not in pieces
    assert any("unreachable" in n and "reference answer" in n for n in answer.notices)


# -- coach.answering.coverage on its own ----------------------------------------------------------------------------
def test_coverage_stream_hands_out_the_answer_only_after_the_judgement():
    stream = CoverageStream(["Q1"])
    reply = judged("partly", ["Q1"], "第一句 [Q1]。第二句。", "别的")
    out, levels = [], []
    for i in range(0, len(reply), 3):
        out.append(stream.feed(reply[i:i + 3]))
        levels.append(stream.level)
    assert "".join(out) == "第一句 [Q1]。第二句。"
    assert levels[0] is None and all(lv == "partly" for piece, lv in zip(out, levels) if piece)
    assert stream.finish().not_covered == "别的"


def test_check_coverage_keeps_the_evidence_unique_and_rejects_unshown_ids():
    ok = check_coverage({"coverage": "full", "sections": ["Q1", "Q1"], "not_covered": " ", "answer": "a"}, {"Q1"})
    assert ok.sections == ("Q1",) and ok.not_covered == ""
    with pytest.raises(CoverageError, match="not shown: Q2"):
        check_coverage({"coverage": "none", "sections": ["Q2"], "not_covered": "", "answer": "a"}, {"Q1"})
    assert coverage_schema({"Q2", "Q1"})["json_schema"]["schema"]["properties"]["coverage"]["enum"] == \
        ["full", "partly", "none"]


# -- decline: categories for a clearly off-topic question ---------------------------------------------------
@pytest.mark.parametrize("question, language", [("怎么做红烧肉？", "Chinese"), ("How do I bake sourdough bread?", "English")])
def test_clearly_off_topic_is_offered_the_bank_categories(declining, question, language):
    p = declining.retrieve(question).confidence
    assert p < 0.1, f"the premise: the tiny bank is far from {question!r} (P {p:.3f})"
    llm = FakeLLM(default="never [Q1]")
    pieces, answer = run(Coach(declining, llm, off_topic_p=0.1), question)
    assert answer.declined and answer.outcome == "decline" and llm.history == []
    assert answer.categories == CATEGORIES == bank_categories(declining.index.sections.values())
    assert answer.suggestions == () and all(f"- {c}" in answer.text for c in CATEGORIES)
    titles = [s.title for s in declining.index.sections.values()]
    assert not any(t in answer.text for t in titles), "no arbitrary titles"
    own = answer.text
    for c in CATEGORIES:
        own = own.replace(c, "")
    assert language_of(own) == language and "".join(pieces) == answer.text


def test_a_decline_near_the_bank_still_gets_nearby_titles(declining):
    question = "RAG 的检索用什么向量库？"
    retrieval = declining.retrieve(question)
    assert retrieval.declined and retrieval.confidence >= 0.1, "the premise: an in-field question the bank lacks"
    answer = Coach(declining, off_topic_p=0.1).ask(question)
    assert answer.categories == () and 2 <= len(answer.suggestions) <= 3
    assert all(s in answer.text for s in answer.suggestions)


def test_coach_rejects_an_off_topic_cut_that_is_not_a_probability(declining):
    with pytest.raises(ValueError, match="off_topic_p"):
        Coach(declining, off_topic_p=2)


# -- bad input, for every outcome ------------------------------------------------------------------------
BAD = [("", "empty"), (" \u200b\u200d\ufeff ", "empty"), ("\x00\x07\x1b\x7f", "empty"),
       ("？！。…🙂", "no letters or digits"), ("知" * 100_000, "100,000 characters"),
       ("a" * 102_400, "102,400 characters")]


@pytest.mark.parametrize("question, message", BAD)
@pytest.mark.parametrize("which", ["answer", "related", "decline"])
def test_bad_input_gets_a_clear_message_whatever_the_outcome_would_be(declining, related, which, question, message):
    retriever = related if which == "related" else declining
    llm = FakeLLM()
    with pytest.raises(QueryError, match=message):
        Coach(retriever, llm, coverage=True).ask(question)
    assert llm.history == []


@pytest.mark.parametrize("which, question, outcome", [
    ("answer", "KV\x00 Cache\x07 的原理\u200b是什么？\u202e", "answer"),
    ("related", "Ｗｈａｔ ｉｓ beam search？\u2066\ud800", "related"),
    ("decline", "怎么做\x1b红烧肉？\u2028🍖", "decline"),
])
def test_control_characters_and_odd_unicode_are_cleaned_for_every_outcome(declining, related, which, question,
                                                                            outcome):
    retriever = related if which == "related" else declining
    answer = Coach(retriever).ask(question)
    assert answer.outcome == outcome
    assert not any(ch in answer.question for ch in "\x00\x07\x1b\u200b\u202e\u2028\ud800")
    assert not any(ch in answer.text for ch in "\x00\x07\x1b\ud800")


# -- the CLI -------------------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(declining, tmp_path, monkeypatch):
    """The CLI over the tiny bank; returns a function that saves a decline model and points COACH_DECLINE_MODEL at it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "llm_interview_qa.md").write_text(BANK, encoding="utf-8")
    for name, value in {"COACH_CORPUS_DIR": corpus, "COACH_INDEX_DIR": tmp_path / "index", "COACH_EMBEDDER": "hash"}.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("COACH_LLM_BASE_URL", raising=False)

    def use(model):
        path = tmp_path / "decline.json"
        model.save(path)
        monkeypatch.setenv("COACH_DECLINE_MODEL", str(path))
        return path
    return use


def ask_cli(capsys, *argv) -> tuple[int, str, str]:
    from coach.cli import main

    code = main(["ask", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_carries_the_outcome(cli_env, declining, capsys):
    code, out, _ = ask_cli(capsys, KV_QUESTION, "--json")  # no calibration for the hash embedder: never declines
    assert code == 0 and json.loads(out)["outcome"] == "answer"
    cli_env(replace(declining.decline_model, answer_threshold=1.0))
    code, out, _ = ask_cli(capsys, KV_QUESTION, "--json")
    data = json.loads(out)
    assert code == 0 and data["outcome"] == "related" and not data["declined"]
    assert data["answer"].startswith(HEAD_ZH) and data["citations"][0]["id"] == "Q1"
    code, out, _ = ask_cli(capsys, "怎么做红烧肉？", "--json")
    data = json.loads(out)
    assert data["outcome"] == "decline" and data["declined"]
    # a decline offers nearby titles or, far from the bank, its categories (which one: the tests above, by hand)
    assert bool(data["suggestions"]) != bool(data["categories"]), data


def test_cli_plain_output_labels_related_material(cli_env, declining, capsys):
    cli_env(replace(declining.decline_model, answer_threshold=1.0))
    code, out, _ = ask_cli(capsys, "What is beam search?")
    assert code == 0 and out.startswith(HEAD_EN)
    assert "related material (not an answer): Q5 What is beam search?" in out


@pytest.mark.parametrize("content, message", [("{not json", "cannot be read as a decline model"),
                                              ('{"embedder": "hash"}', "cannot be read as a decline model")])
def test_cli_says_what_is_wrong_with_a_decline_model_file(cli_env, tmp_path, monkeypatch, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    monkeypatch.setenv("COACH_DECLINE_MODEL", str(bad))
    code, out, err = ask_cli(capsys, KV_QUESTION)
    assert code == 2 and out == "" and message in err and "COACH_DECLINE_MODEL" in err


@pytest.mark.parametrize("question, message", [("", "empty"), ("\x00\x1b", "empty"), ("知" * 102_400, "102,400")])
def test_cli_bad_input_is_a_clear_message_with_any_decline_model(cli_env, declining, capsys, question, message):
    cli_env(replace(declining.decline_model, answer_threshold=1.0))
    code, out, err = ask_cli(capsys, question, "--json")
    assert code == 2 and out == "" and message in err


def test_settings_read_switches_from_the_environment():
    assert Settings.from_env({}).llm_coverage is True
    assert Settings.from_env({"COACH_LLM_COVERAGE": "0"}).llm_coverage is False
    assert Settings.from_env({"COACH_LLM_COVERAGE": "yes"}).llm_coverage is True
    with pytest.raises(ValueError, match="COACH_LLM_COVERAGE='maybe' is not a valid bool"):
        Settings.from_env({"COACH_LLM_COVERAGE": "maybe"})
    assert Settings.from_env({"COACH_DECLINE_MODEL": "/x.json"}).decline_model == "/x.json"


def test_pipeline_turns_the_coverage_judgement_on_by_default(cli_env):
    from coach.pipeline import build_coach

    coach, _ = build_coach(Settings.from_env(llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert coach.coverage is True
    coach, _ = build_coach(Settings.from_env({**os.environ, "COACH_LLM_COVERAGE": "0"}))
    assert coach.coverage is False


# -- the real client at the HTTP edge (the stub server of tests/test_llm_faults.py) ---------------------------
from tests.test_llm_faults import MODEL, stub  # noqa: E402,F401  (the stub fixture)


def test_the_schema_travels_in_the_request_and_the_streamed_judgement_comes_back(stub, declining):  # noqa: F811
    from coach.llm import OpenAIChatLLM

    reply = judged("partly", ["Q1"], "缓存历史 K/V [Q1]。", "训练时的用法")
    stub.words = [reply[i:i + 7] for i in range(0, len(reply), 7)]  # SSE chunks that split keys and escapes
    llm = OpenAIChatLLM(stub.base_url, MODEL, timeout=5, max_tokens=64)
    pieces, answer = run(Coach(declining, llm, context_sections=2, coverage=True), KV_QUESTION)
    sent = stub.requests[-1]
    assert sent["stream"] is True and sent["response_format"] == coverage_schema([h.id for h in answer.hits[:2]])
    assert answer.mode == MODEL and answer.coverage == "partly" and answer.outcome == "answer"
    assert answer.text == "题库只回答了这个问题的一部分，没有涵盖：训练时的用法。\n\n缓存历史 K/V [Q1]。"
    assert "".join(pieces) == answer.text and len(pieces) > 2
    Coach(declining, llm).ask(KV_QUESTION)  # coverage off: a plain request, no response_format at all
    assert "response_format" not in stub.requests[-1]
