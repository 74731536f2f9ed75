"""The Slack bot shows the three outcomes differently: related material under its own header block.

The pure formatting first, then the real Bolt App against the fake Slack Web API of
tests/test_slack_bot.py, with a Coach over the seed bank whose decline model has an answer
threshold (the shipped calibration has none yet): P(answerable) below 0.9 and above the shipped
decline threshold is "related".
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from coach.answering.answer import Coach
from coach.retrieval.retrieve import Retriever
from coach.slack.format import RELATED_HEADER, answer_messages, escape
from coach.types import Answer, Citation
from tests.test_slack_bot import SECRET, TOKEN, FakeSlack, event_body, mention, next_ts, send, seed_coach  # noqa: F401

GRPO = "GRPO 和 PPO 的区别？"  # the example: J3 (DPO vs PPO) is related, not an answer


def _answer(outcome: str, question: str = "q", **extra) -> Answer:
    return Answer(question=question, text="题库中没有直接回答这个问题的条目。\n\n**[J3] DPO 与 PPO**\n> 引用",
                  citations=(Citation("J3", "DPO 与 PPO 的区别？", "p"),), declined=outcome == "decline",
                  decline_reason="", rewritten_query=question, mode="extractive", rerank_state="off",
                  outcome=outcome, **extra)


@pytest.mark.parametrize("question, language", [("GRPO 是什么？", "Chinese"), ("What is GRPO?", "English")])
def test_related_material_opens_with_its_own_header_and_lists_related_sections(question, language):
    (message,) = answer_messages(_answer("related", question))
    first = message["blocks"][0]
    assert first == {"type": "header", "text": {"type": "plain_text", "text": RELATED_HEADER[language]}}
    context = message["blocks"][-1]
    assert context["type"] == "context" and context["elements"][0]["text"].startswith("related: *J3*")
    (plain,) = answer_messages(_answer("answer", question))
    assert all(b["type"] != "header" for b in plain["blocks"]) and plain["blocks"][-1]["elements"][0]["text"].startswith("*J3*")


def test_clearly_off_topic_decline_lists_the_categories():
    answer = Answer(question="怎么做红烧肉？", text="x", citations=(), declined=True, decline_reason="r",
                    rewritten_query="怎么做红烧肉？", mode="extractive", rerank_state="off",
                    categories=("A. 架构基础（Transformer）", "E. RAG（检索增强生成）"))
    (message,) = answer_messages(answer)
    assert "题库涵盖这些类别" in message["text"] and "• E. RAG（检索增强生成）" in message["text"]
    assert "相近的题目" not in message["text"]


@pytest.fixture(scope="module")
def related_bot(seed_coach):  # noqa: F811
    from slack_sdk import WebClient

    from coach.slack.app import create_app
    from coach.slack.server import serve_http

    base = seed_coach[0].retriever
    model = replace(base.decline_model, answer_threshold=0.9)
    coach = Coach(Retriever(base.index, base.embedder, base.settings, model, base.reranker, base.rerank_state))
    fake = FakeSlack()
    app = create_app(coach, client=WebClient(token=TOKEN, base_url=fake.url), signing_secret=SECRET, seed=7)
    server = serve_http(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield type("Bot", (), {"fake": fake, "url": f"http://127.0.0.1:{server.server_port}/slack/events", "coach": coach})
    server.shutdown()
    server.server_close()
    app.coach_bot.close()
    fake.close()


@pytest.mark.integration
def test_related_reply_in_slack_has_its_header_and_an_answer_does_not(related_bot):
    expected = related_bot.coach.ask(GRPO)
    assert expected.outcome == "related", f"the premise: {GRPO} is related at answer threshold 0.9 ({expected.outcome})"
    send(related_bot.url, event_body(mention("C_rel", GRPO, next_ts())))
    (post,) = related_bot.fake.wait("C_rel")
    assert post["blocks"][0]["type"] == "header"
    assert post["blocks"][0]["text"]["text"] == RELATED_HEADER["Chinese"]
    assert post["text"].startswith("题库中没有直接回答这个问题的条目")
    related = [e["text"] for b in post["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert related and all(t.startswith("related: *") for t in related)
    assert {c.id for c in expected.citations} <= {t.split("*")[1] for t in related}

    send(related_bot.url, event_body(mention("C_rel_ans", "KV Cache 的原理是什么？", next_ts())))
    (answer,) = related_bot.fake.wait("C_rel_ans")
    assert all(b["type"] != "header" for b in answer["blocks"]) and "*[Q13]" in answer["text"]
    assert escape("题库中没有直接回答") not in answer["text"]


@pytest.mark.integration
def test_bad_input_to_the_related_bot_gets_a_clear_message(related_bot):
    send(related_bot.url, event_body(mention("C_rel_bad", "\u200b \x1b ？！", next_ts())))
    (post,) = related_bot.fake.wait("C_rel_bad")
    assert post["text"].startswith("I couldn't search that:") and "letters or digits" in post["text"], post["text"]
