"""Chat LLMs: one required method, ``chat(messages, stream=False, response_format=None)``.

``chat(msgs)`` returns the reply text; ``chat(msgs, stream=True)`` returns an
iterator of text pieces.  Structured output: ``response_format`` is passed as is
to the server; ``chat(msgs, response_format=json_schema_format("verdicts", schema))``
asks an OpenAI-compatible server to constrain the reply to that JSON schema (vLLM enforces it); the reply is still
the text, to be parsed and checked by the caller (``parse_json_reply``), since
a server may ignore the format or cut the reply at ``max_tokens``.  Failures are
raised as LLMError subclasses whose messages say what to fix:

- LLMUnavailable  server down, unreachable, timed out, or the stream broke
- LLMConfigError  4xx: wrong model name, bad key, context too long (names the setting)
- LLMBadResponse  the server answered something that is not a chat completion

Adapters: FakeLLM (scripted replies, records every call) for tests, and
OpenAIChatLLM for any OpenAI-compatible server such as vLLM.
"""

from __future__ import annotations

import json
import re
import time
from typing import Iterator, Protocol, Sequence


# Every tag a prompt of this project delimits data with (answers: context, question, history, block, system;
# the grading judge: answer).
_DATA_TAG = re.compile(r"</?\s*(context|question|history|block|system|answer)[^>]*>", re.IGNORECASE)


def neutralise(text: str) -> str:
    """Make the prompts' delimiter tags inert inside user-supplied text: ``</answer>`` -> ``‹/answer›``."""
    return _DATA_TAG.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


class LLMError(RuntimeError):
    """Base of every LLM failure the coach recovers from."""


class LLMUnavailable(LLMError):
    """No answer in time: the coach falls back to extractive answers."""


class LLMConfigError(LLMError):
    """The server refused the request; a setting must change."""


class LLMBadResponse(LLMError):
    """The server's reply could not be read as a chat completion."""


class LLM(Protocol):
    name: str

    def chat(self, messages: Sequence[dict], stream: bool = False, response_format: dict | None = None): ...


def json_schema_format(name: str, schema: dict, strict: bool = True) -> dict:
    """The OpenAI ``response_format`` that constrains a reply to ``schema``:
    ``{"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}``."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ValueError(f"schema name {name!r} must be 1-64 letters, digits, _ or -, e.g. 'grade_verdicts'")
    if not isinstance(schema, dict) or "type" not in schema:
        raise ValueError("schema must be a JSON schema dict with a 'type', e.g. {'type': 'object', ...}")
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


def parse_json_reply(text: str, where: str = "the LLM"):
    """The JSON value of a structured reply; LLMBadResponse if it is not JSON (e.g. cut at max_tokens).

    A fenced ```json block is accepted, since servers that ignore response_format often send one."""
    body = text.strip() if isinstance(text, str) else ""
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.S)
    if fence:
        body = fence.group(1)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, TypeError) as err:
        raise LLMBadResponse(f"{where} sent a reply that is not JSON ({err}; {len(body)} characters, "
                             f"starting {body[:60]!r}); raise max_tokens if it was cut") from None


class FakeLLM:
    """Deterministic fake: replies are queued with ``enqueue``; calls are kept in ``history``.

    A queued Exception is raised instead of replying; a queued callable is called
    with the messages and its result returned (e.g. a reply built from the prompt);
    with ``stream=True`` a reply is yielded word by word, and a queued ``(text,
    Exception)`` pair yields ``text`` and then raises (a stream cut mid-way).
    ``formats`` records the ``response_format`` of every call.
    """

    def __init__(self, name: str = "fake-llm", default: str = ""):
        self.name, self.default = name, default
        self.queue: list = []
        self.history: list[list[dict]] = []
        self.formats: list[dict | None] = []  # the response_format of each call, in order

    def enqueue(self, *replies) -> "FakeLLM":
        self.queue.extend(replies)
        return self

    def chat(self, messages: Sequence[dict], stream: bool = False, response_format: dict | None = None):
        self.history.append([dict(m) for m in messages])
        self.formats.append(response_format)
        if callable(self.queue[0] if self.queue else None):  # a function of the messages, e.g. a slow server
            return self.queue.pop(0)(messages)
        reply = self.queue.pop(0) if self.queue else self.default
        if isinstance(reply, Exception):
            raise reply
        if not stream:
            if isinstance(reply, tuple):
                raise reply[1]
            return reply
        return self._stream(reply)

    @staticmethod
    def _stream(reply) -> Iterator[str]:
        text, error = reply if isinstance(reply, tuple) else (reply, None)
        for i, word in enumerate(text.split(" ")):
            yield word if i == 0 else " " + word
        if error is not None:
            raise error


class OpenAIChatLLM:
    """The ``openai`` client against ``base_url`` (vLLM's /v1), no retries, one timeout."""

    def __init__(self, base_url: str, model: str, api_key: str = "EMPTY", timeout: float = 30.0,
                 max_tokens: int = 512, temperature: float = 0.2, deadline: float = 180.0):
        if not base_url:
            raise ValueError("base_url is empty: set COACH_LLM_BASE_URL, e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise ValueError("model is empty: set COACH_LLM_MODEL to the model name the server serves")
        if timeout <= 0 or deadline <= 0:
            raise ValueError(f"timeout and deadline must be positive, got {timeout} and {deadline}")
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=0)
        # timeout: the longest wait for any one read; deadline: the longest a whole streamed answer may take
        # (a server that trickles a token every few seconds never trips the read timeout).
        self.base_url, self.name, self.timeout, self.deadline = base_url, model, timeout, deadline
        self.max_tokens, self.temperature = max_tokens, temperature

    def chat(self, messages: Sequence[dict], stream: bool = False, response_format: dict | None = None):
        started = time.monotonic()
        extra = {"response_format": response_format} if response_format is not None else {}
        try:
            resp = self._client.chat.completions.create(
                model=self.name, messages=list(messages), stream=stream,
                max_tokens=self.max_tokens, temperature=self.temperature, **extra,
            )
        except Exception as err:
            raise self._translate(err) from err
        if not stream:
            try:
                text = resp.choices[0].message.content
            except (AttributeError, IndexError, TypeError) as err:
                raise LLMBadResponse(f"LLM server at {self.base_url} sent no message in its reply ({err})") from err
            if not isinstance(text, str):
                raise LLMBadResponse(f"LLM server at {self.base_url} sent a reply without text")
            return text
        return self._pieces(resp, started + self.deadline)

    def _pieces(self, resp, deadline: float) -> Iterator[str]:
        finished = False
        try:
            for event in resp:
                if time.monotonic() > deadline and not finished:
                    resp.close()
                    raise LLMUnavailable(f"LLM server at {self.base_url} did not finish the answer within "
                                         f"{self.deadline:g} s (COACH_LLM_DEADLINE)")
                if not event.choices:
                    continue
                choice = event.choices[0]
                finished = finished or bool(getattr(choice, "finish_reason", None))
                piece = choice.delta.content if choice.delta is not None else None
                if piece:
                    yield piece
        except LLMError:
            raise
        except Exception as err:
            raise self._translate(err, mid_stream=True) from err
        if not finished:  # the connection closed cleanly, but the answer never said it was done
            raise LLMUnavailable(f"LLM server at {self.base_url} ended the stream before the answer was finished "
                                 "(no finish_reason): the connection was probably cut")

    def _translate(self, err: Exception, mid_stream: bool = False) -> LLMError:
        import openai

        where = f"LLM server at {self.base_url}"
        if isinstance(err, openai.APITimeoutError):
            return LLMUnavailable(f"{where} did not answer within {self.timeout:g} s (COACH_LLM_TIMEOUT)")
        if isinstance(err, openai.APIConnectionError):
            what = "dropped the connection mid-answer" if mid_stream else "is unreachable"
            return LLMUnavailable(f"{where} {what}: {err.__cause__ or err}")
        if isinstance(err, openai.APIStatusError):
            code, body = err.status_code, _short(err)
            if code == 404 or (code == 400 and "model" in body.lower() and "exist" in body.lower()):
                return LLMConfigError(
                    f"{where} has no model {self.name!r} ({code}: {body}); set COACH_LLM_MODEL to a served "
                    f"model (list them with GET {self.base_url.rstrip('/')}/models)")
            if code in (401, 403):
                return LLMConfigError(f"{where} refused the API key ({code}); set COACH_LLM_API_KEY")
            if 400 <= code < 500:
                return LLMConfigError(f"{where} rejected the request ({code}: {body}); check COACH_LLM_MODEL "
                                      "and COACH_LLM_CONTEXT_TOKENS")
            return LLMUnavailable(f"{where} failed ({code}: {body})")
        if isinstance(err, (ValueError, openai.APIResponseValidationError)):
            return LLMBadResponse(f"{where} sent a reply that is not valid chat-completion JSON ({_short(err)})")
        if isinstance(err, openai.APIError) and mid_stream:  # an error event inside the stream
            return LLMUnavailable(f"{where} reported an error mid-answer: {_short(err)}")
        if isinstance(err, openai.APIError):
            return LLMBadResponse(f"{where} answered with an error ({_short(err)})")
        if isinstance(err, (ConnectionError, TimeoutError, OSError)):
            return LLMUnavailable(f"{where} is unreachable: {err}")
        return LLMBadResponse(f"{where} sent an unreadable reply ({type(err).__name__}: {_short(err)})")


def _short(err: Exception, limit: int = 200) -> str:
    text = " ".join(str(getattr(err, "message", None) or err).split())
    return text[:limit] + ("…" if len(text) > limit else "")
