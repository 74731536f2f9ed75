"""The Slack bot: a Bolt App that answers with the Coach, in threads, once per event.

    app = create_app(coach, token=..., signing_secret=...)   # auth.test runs here
    serve_http(app, "0.0.0.0", 3000)                         # or SocketModeHandler(app, app_token)

What happens to one request (the order matters):

1. Bolt's built-in middleware verifies the signature and timestamp (401 if
   forged or older than five minutes), then drops the bot's own events.
2. ``_drop_unwanted`` (ours, still before the ack) drops Slack retries
   (``X-Slack-Retry-Num``), event ids already accepted, and events from any
   bot, answering 200 so Slack stops.  These checks run before the ack on the
   request thread, so a duplicate can never reach a worker.
3. The listener acknowledges (events: Bolt's auto-ack; ``/coach``: ``ack()``)
   and hands the work to the bot's own thread pool, so a slow answer never
   holds an ack, and Bolt's listener threads are never all busy.
4. A worker asks the Coach with the thread's memory and posts the reply in
   the thread (``thread_ts`` = the event's thread root).  chat.postMessage
   goes through slack_sdk's RateLimitErrorRetryHandler: a 429 is retried
   once after its Retry-After, so the message arrives exactly once, late.

Practice: ``/coach practice [A-J]`` posts a question; the first reply in its
thread is graded with the shared Grader and the round ends.  The grade comes with
a message of Block Kit controls (a verdict selector per key point and a "Confirm
grade" button, format.confirm_message): the candidate who answered may correct any
verdict, and confirming fixes the score from the confirmed verdicts (and calls
``on_confirm(user_id, section, grade)`` when given, where progress is stored).
"""

from __future__ import annotations

import logging
import random
import secrets
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from ..text import QueryError
from ..grading import VERDICTS, confirm
from .format import (CONFIRM_ACTION, POINT_ACTION, answer_messages, confirm_message, escape, grade_messages,
                     practice_messages, text_messages)
from .memory import LRU, SeenEvents, ThreadMemory

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_HANDLED_SUBTYPES = (None, "file_share", "thread_broadcast")
USAGE = ("Usage: `/coach practice` (a random question from the bank) or `/coach practice D` (category D). "
         "Ask questions by mentioning me in a channel, or in a direct message.")


_SORRY = "Sorry, something went wrong on my side. Please try again in a moment."


class SlackSetupError(RuntimeError):
    """The bot cannot start; the message names the variable to set. It never contains a secret."""


def verify_token(client: WebClient) -> dict:
    """auth.test, or SlackSetupError saying which variable to fix."""
    if not client.token:
        raise SlackSetupError("SLACK_BOT_TOKEN is not set: export the app's Bot User OAuth Token (xoxb-…, "
                              "Slack app settings → OAuth & Permissions) as SLACK_BOT_TOKEN")
    try:
        return client.auth_test().data
    except SlackApiError as err:
        code = err.response.get("error", "unknown error") if err.response is not None else "unknown error"
        raise SlackSetupError(
            f"Slack rejected SLACK_BOT_TOKEN (auth.test: {code}): set SLACK_BOT_TOKEN to the app's current Bot User "
            "OAuth Token (xoxb-…, OAuth & Permissions; reinstall the app if it was revoked)") from None
    except OSError as err:
        raise SlackSetupError(f"cannot reach the Slack Web API at {client.base_url} ({type(err).__name__}): "
                              "check the network, or SLACK_API_URL if you set it") from None


def strip_mentions(text: str) -> str:
    """``"<@U123> KV Cache?"`` -> ``"KV Cache?"``."""
    return _MENTION.sub(" ", text or "").strip()


def is_from_bot(event: dict, bot_user_id: str | None) -> bool:
    """Messages by any bot or app, including this one: never answered, so no loops form."""
    return bool(event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message"
                or (bot_user_id and event.get("user") == bot_user_id))


def create_app(coach, *, token: str | None = None, signing_secret: str | None, client: WebClient | None = None,
               grader=None, workers: int = 4, memory: ThreadMemory | None = None, seed: int | None = None,
               socket_mode: bool = False, seen_capacity: int = 10000, on_confirm=None) -> App:
    """A Bolt App around ``coach``; raises SlackSetupError if the token or signing secret is missing or bad.

    ``client`` (a slack_sdk WebClient) overrides ``token``, e.g. to point at another API base URL; a
    RateLimitErrorRetryHandler is added to it if it has none.  ``signing_secret`` may be empty only with
    ``socket_mode=True`` (Socket Mode has no HTTP requests to sign).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not signing_secret and not socket_mode:
        raise SlackSetupError("SLACK_SIGNING_SECRET is not set: export the app's Signing Secret "
                              "(Slack app settings → Basic Information → App Credentials) as SLACK_SIGNING_SECRET")
    client = client or WebClient(token=token)
    if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    bot_user_id = verify_token(client).get("user_id")
    if grader is None:
        from ..grader import Grader

        grader = Grader(coach.retriever.embedder)

    # Socket Mode without a signing secret: a random one, so any HTTP request would be rejected.
    app = App(client=client, signing_secret=signing_secret or secrets.token_hex(32),
              process_before_response=False, token_verification_enabled=True, request_verification_enabled=True,
              ignoring_self_events_enabled=True, name="interview-coach")
    bot = _Bot(coach, grader, client, bot_user_id, memory or ThreadMemory(), workers, seed, on_confirm)
    seen = SeenEvents(seen_capacity)

    @app.middleware
    def _drop_unwanted(request, body, next):
        if body.get("type") != "event_callback":
            return next()
        event_id = body.get("event_id", "")
        retry = request.headers.get("x-slack-retry-num")
        if retry:
            log.info("ignoring Slack retry %s of event %s (%s)", retry[0], event_id,
                     (request.headers.get("x-slack-retry-reason") or ["?"])[0])
            return BoltResponse(status=200, body="")
        if is_from_bot(body.get("event") or {}, bot_user_id):
            return BoltResponse(status=200, body="")
        if event_id and not seen.add(event_id):
            log.info("ignoring event %s: already accepted", event_id)
            return BoltResponse(status=200, body="")
        return next()

    @app.event("app_mention")
    def _on_mention(event):
        bot.submit(bot.on_user_text, event, True)

    @app.event("message")
    def _on_message(event):
        if event.get("subtype") in _HANDLED_SUBTYPES:
            bot.submit(bot.on_user_text, event, False)

    @app.command("/coach")
    def _on_command(ack, command):
        words = (command.get("text") or "").split()
        if not words or words[0].lower() != "practice" or len(words) > 2:
            ack(USAGE)
            return
        ack("Starting a practice round: the question will appear in this conversation; reply in its thread.")
        bot.submit(bot.start_practice, command.get("channel_id", ""), words[1] if len(words) > 1 else "")

    @app.action(re.compile(rf"^{POINT_ACTION}_\d+$"))
    def _on_point(ack, body, action):
        ack()
        bot.submit(bot.change_point, body, action)

    @app.action(CONFIRM_ACTION)
    def _on_confirm(ack, body):
        ack()
        bot.submit(bot.confirm_grade, body)

    app.coach_bot = bot  # for shutdown (app.coach_bot.close()) and inspection
    return app


class _Bot:
    """The work done after the ack, on the bot's own thread pool."""

    def __init__(self, coach, grader, client: WebClient, bot_user_id, memory: ThreadMemory, workers: int, seed,
                 on_confirm=None):
        self.coach, self.grader, self.client, self.bot_user_id = coach, grader, client, bot_user_id
        self.memory, self.practice = memory, LRU(1000)  # (channel, question ts) -> section id
        self.pending = LRU(1000)  # (channel, confirm message ts) -> [section id, Grade, verdicts, answerer]
        self._pending_lock, self.on_confirm = threading.Lock(), on_confirm
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coach-slack")
        self._rng, self._rng_lock = random.Random(seed), threading.Lock()

    def submit(self, fn, *args) -> None:
        self.pool.submit(self._safely, fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _safely(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # a failure must not vanish silently on a worker thread
            log.exception("the Slack bot failed while handling %s", fn.__name__)

    # -- events --------------------------------------------------------------------------------
    def on_user_text(self, event: dict, mentioned: bool) -> None:
        channel, thread = event.get("channel", ""), event.get("thread_ts")
        root = thread or event.get("ts", "")
        key, text = (channel, root), event.get("text") or ""
        if mentioned and channel.startswith("D"):
            return  # a direct message arrives as message.im too; that one is answered
        if not mentioned and event.get("channel_type") != "im":
            # channel chatter is ignored, except the reply that answers a practice question;
            # a reply that mentions the bot arrives as app_mention as well and is handled there
            if thread and not (self.bot_user_id and f"<@{self.bot_user_id}" in text):
                section_id = self.practice.pop(key)
                if section_id is not None:
                    self.grade(channel, root, text, section_id, event.get("user", ""))
            return
        if thread:
            section_id = self.practice.pop(key)
            if section_id is not None:
                return self.grade(channel, root, text, section_id, event.get("user", ""))
        self.answer(channel, root, text)

    def answer(self, channel: str, root: str, text: str) -> None:
        key = (channel, root)
        question = strip_mentions(text)
        try:
            answer = self.coach.ask(question, self.memory.history(key))
        except QueryError as err:
            self.post(channel, root, text_messages(f"I couldn't search that: {escape(str(err))}"))
            return
        except Exception:
            log.exception("the coach failed on a question in %s", channel)
            self.post(channel, root, text_messages(_SORRY))
            return
        self.memory.add(key, "user", answer.question)
        self.memory.add(key, "assistant", answer.text)
        self.post(channel, root, answer_messages(answer))

    # -- practice ------------------------------------------------------------------------------
    def start_practice(self, channel: str, category: str) -> None:
        sections = sorted(self.coach.retriever.index.sections.values(), key=lambda s: s.id)
        pool = [s for s in sections if not category or s.category_letter == category.upper()]
        if not pool:
            letters = "".join(sorted({s.category_letter for s in sections if s.category_letter}))
            self.post(channel, None, text_messages(f"There is no category {escape(category)}: use one of {letters}."))
            return
        with self._rng_lock:
            section = self._rng.choice(pool)
        posted = self.post(channel, None, practice_messages(section))
        if posted:
            self.practice.put((channel, posted), section.id)

    def grade(self, channel: str, root: str, text: str, section_id: str, user: str = "") -> None:
        reply = strip_mentions(text)
        if not reply:
            self.practice.put((channel, root), section_id)
            self.post(channel, root, text_messages("Write your answer in this thread and I'll grade it."))
            return
        section = self.coach.retriever.index.sections[section_id]
        try:
            grade = self.grader.grade(section, reply)
        except Exception:
            log.exception("the grader failed on %s", section_id)
            self.practice.put((channel, root), section_id)  # the user may try again
            self.post(channel, root, text_messages(_SORRY))
            return
        self.post(channel, root, grade_messages(grade, section))
        if grade.points and grade.answer:
            verdicts = [v.verdict for v in grade.points]
            ts = self.post(channel, root, [confirm_message(grade, verdicts)])
            if ts:
                self.pending.put((channel, ts), [section_id, grade, verdicts, user])

    def _pending_for(self, body: dict):
        channel = (body.get("channel") or {}).get("id", "")
        ts = (body.get("message") or {}).get("ts", "")
        user = (body.get("user") or {}).get("id", "")
        entry = self.pending.get((channel, ts))
        if entry is None:
            self._ephemeral(channel, user, "This grade was already confirmed, or is too old to change.")
            return None
        if entry[3] and user != entry[3]:
            self._ephemeral(channel, user, f"Only <@{entry[3]}>, who answered, can confirm or correct this grade.")
            return None
        return channel, ts, user, entry

    def change_point(self, body: dict, action: dict) -> None:
        """One verdict changed by the candidate: the controls message shows the new score."""
        with self._pending_lock:
            found = self._pending_for(body)
            if found is None:
                return
            channel, ts, _, entry = found
            i = int(action["action_id"].rsplit("_", 1)[1])
            value = (action.get("selected_option") or {}).get("value")
            if value not in VERDICTS or not 0 <= i < len(entry[2]):
                log.warning("ignoring verdict %r for point %s", value, i)
                return
            entry[2][i] = value
            message = confirm_message(entry[1], entry[2])
        self._update(channel, ts, message)

    def confirm_grade(self, body: dict) -> None:
        """The candidate's last word: the score of the confirmed verdicts is the one that counts."""
        with self._pending_lock:
            found = self._pending_for(body)
            if found is None:
                return
            channel, ts, user, entry = found
            self.pending.pop((channel, ts))
        section_id, grade, verdicts, _ = entry
        confirmed = confirm(grade, verdicts)
        self._update(channel, ts, confirm_message(grade, verdicts, confirmed_by=user))
        if self.on_confirm is not None:
            try:
                self.on_confirm(user, self.coach.retriever.index.sections[section_id], confirmed)
            except Exception:
                log.exception("storing the confirmed grade of %s failed", section_id)
                self._ephemeral(channel, user, "Your confirmed grade could not be saved; please try again later.")

    def _update(self, channel: str, ts: str, message: dict) -> None:
        try:
            self.client.chat_update(channel=channel, ts=ts, text=message["text"], blocks=message["blocks"])
        except SlackApiError as err:
            log.error("chat.update in %s failed: %s", channel, err.response.get("error") if err.response else "?")

    def _ephemeral(self, channel: str, user: str, text: str) -> None:
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as err:
            log.error("chat.postEphemeral in %s failed: %s", channel, err.response.get("error") if err.response else "?")

    # -- Slack Web API -------------------------------------------------------------------------
    def post(self, channel: str, thread_ts: str | None, messages: list[dict]) -> str | None:
        """Post the messages in order; the ts of the first one, or None if Slack refused."""
        first = None
        for message in messages:
            try:
                resp = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=message["text"],
                                                    blocks=message["blocks"], unfurl_links=False, unfurl_media=False)
            except SlackApiError as err:
                code = err.response.get("error") if err.response is not None else "?"
                hint = " (invite the bot to the channel)" if code in ("not_in_channel", "channel_not_found") else ""
                log.error("chat.postMessage to %s failed: %s%s", channel, code, hint)
                return first
            first = first or resp.get("ts")
        return first
