"""Slack for a team: event claims instead of dropped retries, shared thread memory and rounds, progress per
Slack user, `/coach progress` only to that user; then two real bot processes against real Redis and
PostgreSQL.  The Coach uses the hash embedder here: delivery is under test, not retrieval quality.

In-process tests run one real Bolt app over HTTP (and Socket Mode's dispatch) against the fake Slack
Web API of tests/test_slack_bot.py, extended with chat.postEphemeral.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coach.pipeline import build_coach
from coach.settings import Settings
from coach.state import MemoryState, SQLiteProgress, SQLiteState
from coach.state.open import UnavailableProgress
from tests.servers import free_port, start_postgres, start_redis
from tests.test_slack_bot import (FORM, SECRET, TOKEN, FakeSlack, block_action, cited, event_body, mention, next_ts,
                                  running_bot, send)

ROOT = Path(__file__).resolve().parents[1]
KV = "KV Cache 的原理是什么？"
FOLLOW = "那它的缺点是什么"


class TeamSlack(FakeSlack):
    """The tests' fake Web API plus chat.postEphemeral (recorded with ``ephemeral: True``)."""

    def handle(self, method, args, auth):
        if method == "chat.postEphemeral" and auth == f"Bearer {self.token}":
            blocks = args.get("blocks") or []
            with self.cond:
                self.posts.append({**args, "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks,
                                   "ephemeral": True, "ts": "", "at": time.monotonic()})
                self.cond.notify_all()
            return 200, {}, {"ok": True, "message_ts": "1.0"}
        return super().handle(method, args, auth)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("index-hash")
    build_coach(Settings(index_dir=d, embedder="hash"))
    return d


@pytest.fixture(scope="module")
def coach(index_dir):
    return build_coach(Settings(index_dir=index_dir, embedder="hash"))[0]


def command(url: str, text: str, channel: str, user: str = "U1") -> int:
    form = urllib.parse.urlencode({"command": "/coach", "text": text, "channel_id": channel, "user_id": user,
                                   "team_id": "T1", "trigger_id": "1.2", "response_url": "http://127.0.0.1:9/r"})
    return send(url, form.encode(), content_type="application/x-www-form-urlencoded")


def question_of(post: dict) -> str:
    return re.search(r"Practice round\* · (\w+)", post["text"]).group(1)


def settle(seconds: float = 1.5) -> None:
    time.sleep(seconds)  # long enough for a duplicate reply to have arrived, had one been sent


# -- one bot in this process -----------------------------------------------------------------------------------
@pytest.fixture()
def bot(coach, tmp_path):

    progress = SQLiteProgress(tmp_path / "progress.sqlite3")
    with running_bot(coach, TeamSlack(), seed=3, state=SQLiteState(tmp_path / "state.sqlite3"), progress=progress,
                     claim_ttl=1.0) as (app, fake, url):
        yield type("Bot", (), {"fake": fake, "url": url, "app": app, "progress": progress})


@pytest.mark.integration
def test_one_message_under_two_event_ids_is_answered_once(bot):
    ts = next_ts()
    event = mention("C_two", KV, ts)
    assert send(bot.url, event_body(event, "EvA1")) == 200
    assert send(bot.url, event_body(event, "EvB1")) == 200
    bot.fake.wait("C_two", 1)
    settle()
    assert len(bot.fake.in_channel("C_two")) == 1


@pytest.mark.integration
def test_socket_mode_deliveries_are_claimed_too(bot):
    from slack_bolt.request import BoltRequest

    body = event_body(mention("C_sock", KV, next_ts()), "EvSOCK1").decode()
    for _ in range(3):  # Socket Mode redelivers with no retry header
        response = bot.app.dispatch(BoltRequest(body=body, mode="socket_mode"))
        assert response.status == 200
    bot.fake.wait("C_sock", 1)
    settle()
    assert len(bot.fake.in_channel("C_sock")) == 1


@pytest.mark.integration
def test_practice_grade_is_that_users_progress_and_progress_is_shown_only_to_them(bot, coach):
    assert command(bot.url, "practice A", "C_prog", user="U7") == 200
    (question,) = bot.fake.wait("C_prog", 1)
    section = coach.retriever.index.sections[question_of(question)]
    reply = {"type": "message", "channel": "C_prog", "channel_type": "channel", "user": "U7",
             "text": section.body[:200], "ts": next_ts(), "thread_ts": question["ts"]}
    assert send(bot.url, event_body(reply)) == 200
    _, graded, controls = bot.fake.wait("C_prog", 3)
    assert "*Score:" in graded["text"] and bot.progress.schedule("slack:U7") == []  # saved once confirmed
    assert send(bot.url, block_action(controls, "U7", "grade_confirm"), content_type=FORM) == 200
    assert "Progress saved" in bot.fake.wait_for("updates", 1)[-1]["text"]
    assert [e.section_id for e in bot.progress.schedule("slack:U7")] == [section.id]
    assert bot.progress.schedule("slack:U8") == []

    # a reply to the round that has ended: no second grade, no reply at all
    send(bot.url, event_body({**reply, "ts": next_ts(), "text": "再答一次"}))
    assert command(bot.url, "progress", "C_prog", user="U7") == 200
    assert command(bot.url, "progress", "C_prog", user="U8") == 200
    posts = bot.fake.wait("C_prog", 5)
    settle()
    posts = bot.fake.in_channel("C_prog")
    assert len(posts) == 5, [p["text"][:60] for p in posts]
    mine = next(p for p in posts if p.get("ephemeral") and p["user"] == "U7")
    other = next(p for p in posts if p.get("ephemeral") and p["user"] == "U8")
    assert section.category in mine["text"] and section.id in mine["text"] and "only you" in mine["text"]
    assert "Due in the coming days" in mine["text"]
    assert "Nothing recorded yet" in other["text"] and section.id not in other["text"]


@pytest.mark.integration
def test_bad_input_gets_a_clear_reply_or_none_and_never_two(bot, caplog):
    no_user = {"type": "app_mention", "text": "<@UBOT> KV Cache?", "ts": next_ts(), "channel": "C_bad"}
    assert send(bot.url, event_body(no_user)) == 200
    action = json.dumps({"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"},
                         "actions": [{"action_id": "no-such-action", "value": "x"}], "trigger_id": "1",
                         "response_url": "http://127.0.0.1:9/r", "container": {}, "api_app_id": "A1"})
    assert send(bot.url, ("payload=" + urllib.parse.quote(action)).encode(),
                content_type="application/x-www-form-urlencoded") == 200
    assert command(bot.url, "frobnicate", "C_bad") == 200
    assert command(bot.url, "practice Z", "C_bad") == 200
    (post,) = bot.fake.wait("C_bad", 1)
    assert "There is no category Z" in post["text"]
    settle()
    assert len(bot.fake.in_channel("C_bad")) == 1
    assert "Traceback" not in caplog.text


@pytest.mark.integration
def test_progress_store_down_says_not_saved_and_keeps_answering(coach):
    down = UnavailableProgress("progress is not saved: COACH_PROGRESS_URL='mysql://x' cannot be used")
    with running_bot(coach, TeamSlack(), state=MemoryState(), progress=down) as (_, fake, url):
        command(url, "practice", "C_down")
        (question,) = fake.wait("C_down", 1)
        send(url, event_body({"type": "message", "channel": "C_down", "channel_type": "channel", "user": "U1",
                              "text": "缓存", "ts": next_ts(), "thread_ts": question["ts"]}))
        _, graded, controls = fake.wait("C_down", 3)
        assert "*Score:" in graded["text"]
        send(url, block_action(controls, "U1", "grade_confirm"), content_type=FORM)
        final = fake.wait_for("updates", 1)[-1]
        assert "Progress is not saved" in final["text"] and "COACH_PROGRESS_URL" in final["text"]
        send(url, event_body(mention("C_down", KV, next_ts())))
        assert cited(fake.wait("C_down", 4)[3]) == ["Q13"]
        command(url, "progress", "C_down")
        assert "not saved" in fake.wait("C_down", 5)[4]["text"]


def test_event_kind_and_keys():
    from coach.slack.app import delivery_keys, event_kind

    assert event_kind(mention("C1", "hi", "1.0"), "UBOT") == "mention"
    assert event_kind(mention("D1", "hi", "1.0"), "UBOT") is None  # answered as message.im
    assert event_kind({"type": "message", "channel": "D1", "channel_type": "im", "user": "U1", "ts": "1"}, "UBOT") == "dm"
    assert event_kind({"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1", "ts": "2",
                       "thread_ts": "1"}, "UBOT") == "thread"
    assert event_kind({"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1", "ts": "2",
                       "thread_ts": "1", "text": "<@UBOT> hi"}, "UBOT") is None  # it arrives as app_mention
    assert event_kind({"type": "message", "channel": "C1", "user": "U1", "ts": "2"}, "UBOT") is None  # chatter
    assert event_kind({"type": "app_mention", "channel": "C1", "ts": "2"}, "UBOT") is None  # no user
    assert delivery_keys({"event_id": "Ev1", "event": {"channel": "C1", "ts": "1.5"}}) == ["ev:Ev1", "msg:C1:1.5"]


# -- two bot processes, real Redis and PostgreSQL ----------------------------------------------------------------
class HangingLLM:
    """An OpenAI-compatible endpoint that never answers: a bot asking it is stuck mid-answer."""

    def __init__(self):
        self.requests, self.release = [], threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.requests.append(self.path)
                outer.release.wait(120)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class BotProcess:
    def __init__(self, name: str, tmp: Path, fake_url: str, index_dir: Path, state_url: str, progress_url: str,
                 **extra: str):
        self.port = free_port()
        self.log_path = tmp / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COACH_", "SLACK_"))}
        env.update(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_url,
                   COACH_INDEX_DIR=str(index_dir), COACH_EMBEDDER="hash", COACH_DATA_DIR=str(tmp / f"{name}-data"),
                   COACH_STATE_URL=state_url, COACH_PROGRESS_URL=progress_url, COACH_CLAIM_TTL="2",
                   PYTHONUNBUFFERED="1", **extra)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "coach.slack", "--port", str(self.port)], cwd=ROOT,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        deadline = time.monotonic() + 120
        while "listening on" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bot {name} did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # by pid: the process this test started
            self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture(scope="module")
def team(tmp_path_factory, index_dir):
    tmp = tmp_path_factory.mktemp("team")
    redis, pg = start_redis(tmp / "redis"), start_postgres(tmp / "pg")
    fake, llm = TeamSlack(), HangingLLM()
    bots = {}
    try:
        common = dict(tmp=tmp, fake_url=fake.url, index_dir=index_dir, state_url=redis.url, progress_url=pg.url)
        bots["a"] = BotProcess("a", **common)
        bots["b"] = BotProcess("b", **common)
        yield type("Team", (), {"fake": fake, "llm": llm, "bots": bots, "redis": redis, "pg": pg, "tmp": tmp,
                                "common": common})
    finally:
        for b in bots.values():
            b.stop()
        fake.close()
        llm.close()
        redis.stop()
        pg.stop()


@pytest.mark.integration
def test_two_bots_one_event_and_its_retries_one_reply(team):
    a, b = team.bots["a"], team.bots["b"]
    body = event_body(mention("C_t1", KV, next_ts()), "EvTEAM1")
    sends = [(a, {}), (b, {}), (a, {"X-Slack-Retry-Num": "1"}), (b, {"X-Slack-Retry-Num": "2"})]
    threads = [threading.Thread(target=send, args=(bot.url, body), kwargs={"headers": h}) for bot, h in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (post,) = team.fake.wait("C_t1", 1)
    settle(3.0)  # past the claim's 2 s expiry: a finished event stays finished
    send(b.url, body, headers={"X-Slack-Retry-Num": "3"})
    settle()
    assert len(team.fake.in_channel("C_t1")) == 1 and cited(post) == ["Q13"]


@pytest.mark.integration
def test_thread_memory_follows_a_thread_to_the_other_process(team, coach):
    a, b = team.bots["a"], team.bots["b"]
    root = next_ts()
    send(a.url, event_body(mention("C_t2", KV, root)))
    team.fake.wait("C_t2", 1)
    send(b.url, event_body(mention("C_t2", FOLLOW, next_ts(), thread_ts=root)))
    follow = team.fake.wait("C_t2", 2)[1]
    first = coach.ask(KV)
    with_memory = coach.ask(FOLLOW, [("user", first.question), ("assistant", first.text)])
    without = coach.ask(FOLLOW)
    assert [c.id for c in with_memory.citations] != [c.id for c in without.citations], "the check can tell"
    assert follow["thread_ts"] == root and cited(follow) == [c.id for c in with_memory.citations]


@pytest.mark.integration
def test_a_persons_progress_is_the_same_from_both_and_private(team, coach):
    a, b = team.bots["a"], team.bots["b"]
    command(a.url, "practice B", "C_t3", user="UANA")
    (question,) = team.fake.wait("C_t3", 1)
    section = coach.retriever.index.sections[question_of(question)]
    reply = {"type": "message", "channel": "C_t3", "channel_type": "channel", "user": "UANA",
             "text": section.body[:300], "ts": next_ts(), "thread_ts": question["ts"]}
    for bot in (a, b):  # both replicas get the answer (two deliveries): one grade
        send(bot.url, event_body(reply, f"EvANS-{bot.port}"))
    _, graded, controls = team.fake.wait("C_t3", 3)
    # The grade waiting for confirmation is in the shared store: the click reaches either replica (here both,
    # one after the other: the first confirms, the second finds it taken and says so, once).
    send(b.url, block_action(controls, "UANA", "grade_confirm"), content_type=FORM)
    assert "Progress saved" in team.fake.wait_for("updates", 1)[-1]["text"]
    send(a.url, block_action(controls, "UANA", "grade_confirm"), content_type=FORM)
    gone = team.fake.wait("C_t3", 4)[3]
    assert gone.get("ephemeral") and "already confirmed" in gone["text"]
    command(a.url, "progress", "C_t3", user="UANA")
    command(b.url, "progress", "C_t3", user="UANA")
    command(b.url, "progress", "C_t3", user="UBO")
    posts = team.fake.wait("C_t3", 7)
    settle()
    assert len(team.fake.in_channel("C_t3")) == 7 and len(team.fake.updates) == 1
    ana = [p["text"] for p in posts if p.get("ephemeral") and p["user"] == "UANA" and "Your progress" in p["text"]]
    bo = [p["text"] for p in posts if p.get("ephemeral") and p["user"] == "UBO" and "Your progress" in p["text"]]
    assert len(ana) == 2 and ana[0] == ana[1] and section.id in ana[0] and "1 attempt," in ana[0]
    assert len(bo) == 1 and "Nothing recorded yet" in bo[0]


@pytest.mark.integration
def test_a_bot_killed_mid_answer_the_retry_is_answered_by_the_other_once(team):
    slow = BotProcess("slow", **team.common, COACH_LLM_BASE_URL=team.llm.url, COACH_LLM_MODEL="m",
                      COACH_LLM_TIMEOUT="60", COACH_LLM_DEADLINE="60")
    try:
        body = event_body(mention("C_t4", KV, next_ts()), "EvKILLED")
        assert send(slow.url, body) == 200
        deadline = time.monotonic() + 20
        while not team.llm.requests:  # the slow bot claimed the event and is waiting for its LLM
            assert time.monotonic() < deadline, "the slow bot never asked its LLM"
            time.sleep(0.05)
        slow.kill()
        assert send(team.bots["b"].url, body, headers={"X-Slack-Retry-Num": "1"}) == 200
        settle(1.0)
        assert team.fake.in_channel("C_t4") == [], "while the claim holds, the retry is not redone"
        time.sleep(1.5)  # the dead worker's 2 s claim expires
        assert send(team.bots["b"].url, body, headers={"X-Slack-Retry-Num": "2"}) == 200
        (post,) = team.fake.wait("C_t4", 1)
        assert send(team.bots["a"].url, body, headers={"X-Slack-Retry-Num": "3"}) == 200
        settle()
        assert len(team.fake.in_channel("C_t4")) == 1 and cited(post) == ["Q13"]
    finally:
        slow.stop()


@pytest.mark.integration
def test_the_store_killed_mid_run_progress_not_saved_answers_go_on(team, coach):
    a = team.bots["a"]
    command(a.url, "practice", "C_t5", user="UANA")
    (question,) = team.fake.wait("C_t5", 1)
    team.pg.kill()
    team.redis.kill()
    send(a.url, event_body({"type": "message", "channel": "C_t5", "channel_type": "channel", "user": "UANA",
                            "text": "缓存", "ts": next_ts(), "thread_ts": question["ts"]}))
    send(a.url, event_body(mention("C_t5", KV, next_ts())))
    posts = team.fake.wait("C_t5", 2)
    settle()
    texts = [p["text"] for p in team.fake.in_channel("C_t5")]
    assert len(texts) == 2
    # the round lived in Redis, which is gone: the thread reply is chatter now; the question is answered
    answered = next(p for p in posts[1:] if p.get("blocks"))
    assert cited(answered) == ["Q13"]
    command(a.url, "progress", "C_t5", user="UANA")
    shown = team.fake.wait("C_t5", 3)[2]
    assert shown.get("ephemeral") and "Progress is not saved" in shown["text"] and "PostgreSQL" in shown["text"]
    log = a.log_path.read_text()
    assert "Redis at" in log and "Traceback" not in log


@pytest.mark.integration
def test_a_bot_with_bad_store_urls_starts_names_them_and_answers(tmp_path, index_dir):
    fake = TeamSlack()
    bot = BotProcess("bad", tmp_path, fake.url, index_dir, state_url="redis://:hunter2@127.0.0.1:1/0",
                     progress_url="postgres-ish://nowhere")
    try:
        log = bot.log_path.read_text()
        assert "COACH_STATE_URL" in log and "COACH_PROGRESS_URL" in log and "hunter2" not in log
        send(bot.url, event_body(mention("C_badurl", KV, next_ts())))
        assert cited(fake.wait("C_badurl", 1)[0]) == ["Q13"]
        command(bot.url, "progress", "C_badurl")
        assert "not saved" in fake.wait("C_badurl", 2)[1]["text"]
    finally:
        bot.stop()
        fake.close()


@pytest.mark.integration
def test_a_slow_answer_keeps_its_claim_so_a_retry_is_not_answered_twice(index_dir):
    llm = HangingLLM()
    slow_coach, _ = build_coach(Settings(index_dir=index_dir, embedder="hash", llm_base_url=llm.url, llm_model="m",
                                         llm_timeout=30, llm_deadline=30))
    try:
        with running_bot(slow_coach, TeamSlack(), state=MemoryState(), claim_ttl=0.6) as (_, fake, url):
            body = event_body(mention("C_slow", KV, next_ts()), "EvSLOW1")
            send(url, body)
            deadline = time.monotonic() + 20
            while not llm.requests:
                assert time.monotonic() < deadline, "the bot never asked its LLM"
                time.sleep(0.05)
            time.sleep(2.0)  # over three claim lifetimes: only the heartbeat keeps the claim alive
            send(url, body, headers={"X-Slack-Retry-Num": "1"})
            settle(0.5)
            llm.release.set()  # the LLM gives up: the coach answers extractively, with a notice
            (post,) = fake.wait("C_slow", 1)
            settle()
            assert len(fake.in_channel("C_slow")) == 1 and cited(post) == ["Q13"]
    finally:
        llm.close()
