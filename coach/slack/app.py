"""The Slack bot: a Bolt App that answers with the Coach, in threads, once per event.

    app = create_app(coach, token=..., signing_secret=...)   # auth.test runs here
    serve_http(app, "0.0.0.0", 3000)                         # or SocketModeHandler(app, app_token)

What happens to one request (the order matters):

1. Bolt's built-in middleware verifies the signature and timestamp (401 if
   forged or older than five minutes), then drops the bot's own events.
2. ``_claim_delivery`` (ours, still before the ack) drops events the bot does
   not handle (any bot's, ones without a user), then claims the delivery in the
   shared StateStore under two keys: the event id and (channel, message ts),
   because Slack can deliver one message under two event ids.  A key someone
   already claimed (the other replica, an earlier delivery, a retry of a
   finished event) means: answer 200 and do nothing.  Retries are not dropped:
   a retry whose first delivery never got to work (lost, or its worker died and
   the claim expired after ``claim_ttl``) claims it and does the work.  The
   same holds in Socket Mode, which has no retry header: the keys are in the
   payload.
3. The listener acknowledges (events: Bolt's auto-ack; ``/coach``: ``ack()``)
   and hands the work to the bot's own thread pool, so a slow answer never
   holds an ack, and Bolt's listener threads are never all busy.
4. A worker asks the Coach with the thread's memory and posts the reply in
   the thread (``thread_ts`` = the event's thread root).  chat.postMessage
   goes through slack_sdk's RateLimitErrorRetryHandler: a 429 is retried
   once after its Retry-After, so the message arrives exactly once, late.
5. While the worker runs, a heartbeat renews its claims every third of
   ``claim_ttl``, so only a dead worker's claim expires; then the claims are
   marked finished, remembered for ``done_ttl`` (an hour: Slack's retries come
   about 1 and 5 minutes later).

Thread memory and open practice rounds live in the same StateStore, so a
thread can go on at another replica.  Practice: ``/coach practice [A-J]`` posts
a question; the first reply in its thread is graded with the shared Grader (the
round is taken atomically, so one replica grades it) and recorded as that Slack
user's progress.  ``/coach progress`` shows a person their own progress, as an
ephemeral message only they see.
The grade comes with a message of Block Kit controls (a verdict selector per key
point and a "Confirm grade" button, format.confirm_message): the candidate who
answered may correct any verdict, and confirming fixes the score from the confirmed
verdicts; that confirmed grade is what is recorded as the person's progress (and
``on_confirm(user_id, section, grade)`` is called when given).  The grade awaiting
confirmation lives in the shared StateStore, like an open round, so the click may
reach any replica, and taking it is atomic: one confirmation counts.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from ..state import MemoryProgress, MemoryState, ProgressError, ProgressStore, StateStore
from ..text import QueryError
from ..grading import VERDICTS, confirm
from ..grading.verdicts import grade_from_json, grade_to_json
from .format import (CONFIRM_ACTION, POINT_ACTION, answer_messages, confirm_message, escape, grade_messages,
                     practice_messages, progress_mrkdwn, text_messages, with_note)

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_HANDLED_SUBTYPES = (None, "file_share", "thread_broadcast")
USAGE = ("Usage: `/coach practice` (a random question from the bank), `/coach practice D` (category D), or "
         "`/coach progress` (your own progress, shown only to you). "
         "Ask questions by mentioning me in a channel, or in a direct message.")
ROUND_TTL_S = 7 * 86_400  # an unanswered practice round ends after a week
PENDING_WAIT_S = 3.0  # how long a click or a reply waits for its grade or round to be (back) in the store
RECENT_ROOT_S = 60.0  # a thread root younger than this (by its Slack ts; clocks may differ) may still be opening


def _ts_seconds(ts: str) -> float:
    """A Slack ts as epoch seconds (``"1712345678.000100" -> 1712345678.0001``); -inf when it is not one."""
    try:
        return float(ts)
    except (TypeError, ValueError):
        return float("-inf")


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


def contradicted_count(grade) -> int:
    """Key points the answer contradicted (0 when the grade does not say)."""
    value = getattr(grade, "contradicted", 0) or 0
    return value if isinstance(value, int) else len(value)


def strip_mentions(text: str) -> str:
    """``"<@U123> KV Cache?"`` -> ``"KV Cache?"``."""
    return _MENTION.sub(" ", text or "").strip()


def is_from_bot(event: dict, bot_user_id: str | None) -> bool:
    """Messages by any bot or app, including this one: never answered, so no loops form."""
    return bool(event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message"
                or (bot_user_id and event.get("user") == bot_user_id))


def event_kind(event: dict, bot_user_id: str | None) -> str | None:
    """What the bot does with an event: "mention", "dm", "thread" (perhaps a practice answer), or None (nothing).

    A DM's app_mention is None: the same message arrives as message.im, which is answered.  A channel
    thread reply that mentions the bot is None as a message: it arrives as app_mention too.
    """
    if is_from_bot(event, bot_user_id) or not event.get("user"):
        return None
    kind, channel, text = event.get("type"), event.get("channel", ""), event.get("text") or ""
    if kind == "app_mention":
        return None if channel.startswith("D") else "mention"
    if kind == "message" and event.get("subtype") in _HANDLED_SUBTYPES:
        if event.get("channel_type") == "im":
            return "dm"
        if event.get("thread_ts") and not (bot_user_id and f"<@{bot_user_id}" in text):
            return "thread"
    return None


def delivery_keys(body: dict) -> list[str]:
    """``["ev:Ev1", "msg:C1:1700.1"]``: the event id and the message, each claimed once."""
    event = body.get("event") or {}
    keys = [f"ev:{body['event_id']}"] if body.get("event_id") else []
    if event.get("channel") and event.get("ts"):
        keys.append(f"msg:{event['channel']}:{event['ts']}")
    return keys


def create_app(coach, *, token: str | None = None, signing_secret: str | None, client: WebClient | None = None,
               grader=None, workers: int = 4, state: StateStore | None = None, progress: ProgressStore | None = None,
               seed: int | None = None, socket_mode: bool = False, claim_ttl: float = 60.0,
               done_ttl: float = 3600.0, on_confirm=None) -> App:
    """A Bolt App around ``coach``; raises SlackSetupError if the token or signing secret is missing or bad.

    ``state`` (claims, thread memory, rounds) and ``progress`` default to this process's memory; the
    entry point passes the stores the settings name (coach.state.open_state / open_progress).

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
    bot = _Bot(coach, grader, client, bot_user_id, state or MemoryState(), progress or MemoryProgress(), workers,
               seed, done_ttl, claim_ttl, on_confirm)

    @app.middleware
    def _claim_delivery(request, body, next):
        if body.get("type") != "event_callback":
            return next()
        event = body.get("event") or {}
        if event_kind(event, bot_user_id) is None:
            return BoltResponse(status=200, body="")
        claimed: list[str] = []
        for key in delivery_keys(body):
            if not bot.state.claim(key, claim_ttl):
                for done in claimed:  # this delivery does nothing: the other key's owner does the work
                    bot.state.release(done)
                retry = request.headers.get("x-slack-retry-num")
                log.info("event %s already claimed (%s)%s", body.get("event_id"), key,
                         f"; Slack retry {retry[0]}" if retry else "")
                return BoltResponse(status=200, body="")
            claimed.append(key)
        request.context["coach_claims"] = tuple(claimed)
        return next()

    @app.event("app_mention")
    def _on_mention(event, context):
        bot.submit(bot.on_user_text, event, True, claims=context.get("coach_claims", ()))

    @app.event("message")
    def _on_message(event, context):
        bot.submit(bot.on_user_text, event, False, claims=context.get("coach_claims", ()))

    @app.command("/coach")
    def _on_command(ack, command):
        words = (command.get("text") or "").split()
        verb = words[0].lower() if words else ""
        if verb == "progress" and len(words) == 1:
            if not command.get("user_id"):
                ack("I can't tell who you are, so I can't show your progress.")
                return
            ack()
            bot.submit(bot.show_progress, command.get("channel_id", ""), command["user_id"])
            return
        if verb != "practice" or len(words) > 2:
            ack(USAGE)
            return
        ack("Starting a practice round: the question will appear in this conversation; reply in its thread.")
        bot.submit(bot.start_practice, command.get("channel_id", ""), words[1] if len(words) > 1 else "",
                   command.get("user_id", ""))

    @app.action(re.compile(rf"^{POINT_ACTION}_\d+$"))
    def _on_point(ack, body, action):
        ack()
        bot.submit(bot.change_point, body, action)

    @app.action(CONFIRM_ACTION)
    def _on_confirm(ack, body):
        ack()
        bot.submit(bot.confirm_grade, body)

    @app.action(re.compile(".*"))
    def _on_unknown_action(ack, body):  # registered last: any action no other listener took
        ack()
        log.info("ignoring unknown action %s", [a.get("action_id") for a in body.get("actions") or []])

    app.coach_bot = bot  # for shutdown (app.coach_bot.close()) and inspection
    return app


class _Bot:
    """The work done after the ack, on the bot's own thread pool."""

    def __init__(self, coach, grader, client: WebClient, bot_user_id, state: StateStore, progress: ProgressStore,
                 workers: int, seed, done_ttl: float, claim_ttl: float = 60.0, on_confirm=None):
        self.coach, self.grader, self.client, self.bot_user_id = coach, grader, client, bot_user_id
        self.state, self.progress, self.done_ttl, self.claim_ttl = state, progress, done_ttl, claim_ttl
        self.on_confirm = on_confirm
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coach-slack")
        self._rng, self._rng_lock = random.Random(seed), threading.Lock()
        self._held: dict[object, tuple[str, ...]] = {}  # in-flight work -> its claims, renewed by the heartbeat
        self._held_lock, self._stop = threading.Lock(), threading.Event()
        self._heartbeat = threading.Thread(target=self._renew_claims, name="coach-slack-claims", daemon=True)
        self._heartbeat.start()

    def _renew_claims(self) -> None:
        """Every third of ``claim_ttl``, renew the claims of work still running: only a dead worker's expire."""
        while not self._stop.wait(self.claim_ttl / 3):
            with self._held_lock:
                keys = [k for ks in self._held.values() for k in ks]
            for key in keys:
                try:
                    self.state.hold(key, self.claim_ttl)
                except Exception:  # never let the heartbeat die
                    log.exception("renewing the claim %s failed", key)

    def submit(self, fn, *args, claims: tuple[str, ...] = ()) -> None:
        self.pool.submit(self._safely, fn, claims, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self._stop.set()
        self.state.close()

    def _safely(self, fn, claims, *args) -> None:
        token = object()
        if claims:
            with self._held_lock:
                self._held[token] = claims
        try:
            fn(*args)
        except Exception:  # a failure must not vanish silently on a worker thread
            log.exception("the Slack bot failed while handling %s", fn.__name__)
        finally:  # done (or failed after perhaps posting): later deliveries must not answer again
            with self._held_lock:
                self._held.pop(token, None)
            for key in claims:
                self.state.finish(key, self.done_ttl)

    # -- events --------------------------------------------------------------------------------
    def on_user_text(self, event: dict, mentioned: bool) -> None:
        kind = event_kind(event, self.bot_user_id)
        channel, thread = event.get("channel", ""), event.get("thread_ts")
        root = thread or event.get("ts", "")
        text, person = event.get("text") or "", f"slack:{event.get('user')}"
        if kind is None:
            return
        if thread:
            # A round is opened just after its question is posted; a reply to a question only just posted may
            # arrive first.  Only then is it worth waiting (a round's root is the bot's own recent message).
            recent = 0 <= time.time() - _ts_seconds(root) < RECENT_ROOT_S
            section_id = self._take_round(f"{channel}:{root}", PENDING_WAIT_S if recent else 0.0)
            if section_id is not None:
                return self.grade(channel, root, text, section_id, person)
        if kind == "thread":
            return  # channel chatter in a thread (or a reply to a round that has ended): not for the bot
        self.answer(channel, root, text)

    def answer(self, channel: str, root: str, text: str) -> None:
        key = f"{channel}:{root}"
        question = strip_mentions(text)
        try:
            answer = self.coach.ask(question, self.state.history(key))
        except QueryError as err:
            self.post(channel, root, text_messages(f"I couldn't search that: {escape(str(err))}"))
            return
        except Exception:
            log.exception("the coach failed on a question in %s", channel)
            self.post(channel, root, text_messages(_SORRY))
            return
        self.state.remember(key, "user", answer.question)
        self.state.remember(key, "assistant", answer.text)
        self.post(channel, root, answer_messages(answer))

    # -- practice ------------------------------------------------------------------------------
    def start_practice(self, channel: str, category: str, user: str = "") -> None:
        from ..practice import pick_question

        sections = sorted(self.coach.retriever.index.sections.values(), key=lambda s: s.id)
        due: list[str] = []
        if user:
            try:
                due = self.progress.due(f"slack:{user}")  # this person's due questions come first
            except ProgressError as err:
                log.error("%s", err)
        try:
            with self._rng_lock:
                section = pick_question(sections, category or None, self._rng, due=due)
        except ValueError:
            letters = "".join(sorted({s.category_letter for s in sections if s.category_letter and
                                      s.category_letter != "J"}))
            self.post(channel, None, text_messages(f"There is no category {escape(category)}: use one of {letters}."))
            return
        posted = self.post(channel, None, practice_messages(section))
        if posted:
            self.state.open_round(f"{channel}:{posted}", section.id, ROUND_TTL_S)

    def grade(self, channel: str, root: str, text: str, section_id: str, person: str) -> None:
        reply = strip_mentions(text)
        key = f"{channel}:{root}"
        if not reply:
            self.state.open_round(key, section_id, ROUND_TTL_S)
            self.post(channel, root, text_messages("Write your answer in this thread and I'll grade it."))
            return
        section = self.coach.retriever.index.sections.get(section_id)
        if section is None:  # the bank changed since the round opened
            self.post(channel, root, text_messages(f"Question {escape(section_id)} is no longer in the bank; "
                                                   "type `/coach practice` for another one."))
            return
        try:
            grade = self.grader.grade(section, reply)
        except Exception:
            log.exception("the grader failed on %s", section_id)
            self.state.open_round(key, section_id, ROUND_TTL_S)  # the user may try again
            self.post(channel, root, text_messages(_SORRY))
            return
        if grade.points and grade.answer:  # the candidate confirms or corrects it; that grade is recorded
            verdicts = [v.verdict for v in grade.points]
            self.post(channel, root, grade_messages(grade, section))
            user = person[6:] if person.startswith("slack:") else person
            ts = self.post(channel, root, [confirm_message(grade, verdicts)])
            if ts:
                self._keep_pending(f"grade:{channel}:{ts}", grade, verdicts, user)
                return
        note = self.record(person, section, grade.score, contradicted_count(grade))  # nothing to confirm
        self.post(channel, root, text_messages(note) if grade.points and grade.answer else
                  with_note(grade_messages(grade, section), note))

    def record(self, person: str, section, score: float, contradicted: int) -> str:
        """Save a confirmed grade as ``person``'s progress; the line that says so (or why not)."""
        try:
            entry = self.progress.record(person, section, score, contradicted)
        except ProgressError as err:
            log.error("%s", err)
            return f":warning: Progress is not saved: {err}"
        return f"Progress saved: next review of {section.id} <!date^{int(entry.due)}^{{date_short_pretty}} {{time}}|soon>."

    def show_progress(self, channel: str, user: str) -> None:
        """``/coach progress``: the person's own categories, weak questions and what is due, only to them."""
        person = f"slack:{user}"
        try:
            body = progress_mrkdwn(self.progress.category_stats(person), self.progress.schedule(person),
                                   self.coach.retriever.index.sections, time.time())
        except ProgressError as err:
            body = f":warning: Progress is not saved, so I can't show it: {escape(str(err))}"
        message = text_messages(body)[0]
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=message["text"], blocks=message["blocks"])
        except SlackApiError as err:
            log.error("chat.postEphemeral to %s failed: %s", channel,
                      err.response.get("error") if err.response is not None else "?")

    def _take_round(self, key: str, wait: float) -> str | None:
        """``state.take_round(key)``, retried for up to ``wait`` seconds while nothing is stored under the key: what
        is stored under a message's ts can only be stored once that message is posted, so a quick reply or click
        can arrive first."""
        stored = self.state.take_round(key)
        deadline = time.monotonic() + wait
        while stored is None and time.monotonic() < deadline:
            time.sleep(0.05)
            stored = self.state.take_round(key)
        return stored

    def _take_pending(self, body: dict):
        """The grade awaiting confirmation under the clicked message, taken from the shared store (so the click
        may reach any replica, and two clicks cannot both confirm it); None, with a word to the user, if gone."""
        channel = (body.get("channel") or {}).get("id", "")
        ts = (body.get("message") or {}).get("ts", "")
        user = (body.get("user") or {}).get("id", "")
        key = f"grade:{channel}:{ts}"
        # Each change takes the grade out and puts it back, and it is first stored just after its controls are
        # posted: a click in either gap waits for it.
        stored = self._take_round(key, PENDING_WAIT_S)
        try:
            entry = json.loads(stored) if stored else None
            grade = grade_from_json(entry["grade"]) if entry else None
        except (ValueError, KeyError, TypeError):
            log.warning("the stored grade under %s is unreadable; dropped", key)
            entry = grade = None
        if entry is None:
            self._ephemeral(channel, user, "This grade was already confirmed, or is too old to change.")
            return None
        if entry["user"] and user != entry["user"]:
            self.state.open_round(key, stored, ROUND_TTL_S)  # not theirs: put it back untouched
            self._ephemeral(channel, user, f"Only <@{entry['user']}>, who answered, can confirm or correct this grade.")
            return None
        return channel, ts, user, key, grade, list(entry["verdicts"])

    def _keep_pending(self, key: str, grade, verdicts: list[str], user: str) -> None:
        self.state.open_round(key, json.dumps({"grade": grade_to_json(grade), "verdicts": verdicts, "user": user},
                                              ensure_ascii=False), ROUND_TTL_S)

    def change_point(self, body: dict, action: dict) -> None:
        """One verdict changed by the candidate: the controls message shows the new score."""
        found = self._take_pending(body)
        if found is None:
            return
        channel, ts, user, key, grade, verdicts = found
        i = int(action["action_id"].rsplit("_", 1)[1])
        value = (action.get("selected_option") or {}).get("value")
        if value in VERDICTS and 0 <= i < len(verdicts):
            verdicts[i] = value
        else:
            log.warning("ignoring verdict %r for point %s", value, i)
        self._keep_pending(key, grade, verdicts, user)
        self._update(channel, ts, confirm_message(grade, verdicts))

    def confirm_grade(self, body: dict) -> None:
        """The candidate's last word: the score of the confirmed verdicts is the one that counts."""
        found = self._take_pending(body)
        if found is None:
            return
        channel, ts, user, _, grade, verdicts = found
        confirmed = confirm(grade, verdicts)
        section = self.coach.retriever.index.sections.get(grade.section_id)
        if section is None:  # the bank changed since the grade was given
            self._update(channel, ts, text_messages(f"Question {escape(grade.section_id)} is no longer in the bank; "
                                                    "the grade was not saved.")[0])
            return
        note = self.record(f"slack:{user}", section, confirmed.score, contradicted_count(confirmed))
        self._update(channel, ts, with_note([confirm_message(grade, verdicts, confirmed_by=user)], note)[0])
        if self.on_confirm is not None:
            try:
                self.on_confirm(user, section, confirmed)
            except Exception:
                log.exception("storing the confirmed grade of %s failed", grade.section_id)
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
