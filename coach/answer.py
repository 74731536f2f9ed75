"""The Coach: question + history -> Answer, the one entry point of every front end.

    coach.ask("KV Cache 的原理是什么？", history=[...]) -> Answer
    for piece in coach.ask_stream(...):  # str pieces as they arrive, then the Answer

Steps: clean -> trim history to the context budget (oldest first) -> standalone
query (LLM condense prompt, else the deterministic rewrite) -> retrieve ->
decline without calling the LLM, or answer:

- no LLM configured: an extractive answer quoting the bank's reference text;
- with an LLM: a grounded answer whose citation markers are checked against
  the sections it was shown (others are scrubbed, also while streaming); if it
  cites nothing valid, the shown sections are attached and the answer says so.

Any LLM failure falls back to the extractive answer with a visible notice;
a stream cut mid-way keeps the partial text, marked as partial.
"""

from __future__ import annotations

import re
import time
from typing import Iterator, Sequence

from .citations import check_citations
from .llm import LLM, LLMConfigError, LLMError, LLMUnavailable
from .prompts import answer_messages, condense_messages, language_of
from .retrieve import Retriever
from .text import QueryError, clean_query
from .types import Answer, Citation, Retrieval, Section

# An unfinished citation marker at the end of the stream: a bracket followed only by characters a
# marker can hold (ids, separators, spaces), of any length, so that "[Q1, Q2, ..., Q99" is held back
# until its closing bracket arrives and it can be checked as a whole.
_OPENER = re.compile(r"[\[【][A-Za-z0-9_:\-\s,，、;；]*$")
_HAS_ID = re.compile(r"[QIJ]\d")


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
    """Retrieval + (optional) LLM; thread-safe as long as its retriever and LLM are."""

    def __init__(self, retriever: Retriever, llm: LLM | None = None, *, context_sections: int = 4,
                 extractive_sections: int = 2, context_tokens: int = 4096, answer_tokens: int = 512):
        if context_sections < 1 or extractive_sections < 1:
            raise ValueError("context_sections and extractive_sections must be at least 1")
        self.retriever, self.llm = retriever, llm
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
        if retrieval.declined:
            text, suggestions = decline_text(query, sections)
            yield text
            timings["total"] = _ms(t0)
            yield Answer(text=text, citations=(), declined=True, mode=self.mode, suggestions=suggestions,
                         notices=tuple(notices), timings_ms={**retrieval.timings_ms, **timings}, **base)
            return
        if self.llm is None or llm_error is not None:
            yield from self._extractive(query, sections, base, notices, retrieval, timings, t0, llm_error)
            return

        shown, turns, more = self._fit_prompt(query, sections[: self.context_sections], turns)
        if more:
            trimmed += more
            base["history_trimmed"] = trimmed
            notices[:] = [n for n in notices if not n.startswith("history trimmed")]
            notices.append(f"history trimmed: the {trimmed} oldest turn(s) did not fit the model's context "
                           f"({self.context_tokens} tokens, {self.answer_tokens} kept for the answer)")
        messages = answer_messages(query, shown, turns)
        allowed = {s.id for s in shown}
        raw, done, emitted, partial = "", 0, "", False
        kept: list[str] = []
        dropped: list[str] = []
        t_llm = time.perf_counter()
        try:
            for piece in self.llm.chat(messages, stream=True):
                if not raw and piece:
                    timings["llm_first_token"] = _ms(t_llm)
                raw += piece
                # Check only the new text up to an unfinished marker: a marker never spans `done`.
                end = done + len(_safe_prefix(raw[done:]))
                if end > done:
                    clean = _check_into(raw[done:end], allowed, kept, dropped)
                    done = end
                    if clean:
                        emitted += clean
                        yield clean
        except LLMError as err:
            timings["llm"] = _ms(t_llm)
            if not raw.strip():
                yield from self._extractive(query, sections, base, notices, retrieval, timings, t0, err)
                return
            partial = True
            notices.append(f"answer cut short: {err}")
        timings.setdefault("llm", _ms(t_llm))
        if not raw.strip():
            why = f"the LLM {self.llm.name} returned an empty answer"
            yield from self._extractive(query, sections, base, notices, retrieval, timings, t0, why)
            return
        tail = raw[done:]
        cut = _OPENER.search(tail)
        if cut and _HAS_ID.search(cut.group(0)):  # a marker cut off (max_tokens, a broken stream): never shown
            tail = tail[: cut.start()]
        clean = _check_into(tail, allowed, kept, dropped)
        if clean:
            emitted += clean
            yield clean
        text = emitted.strip()
        if kept:
            cited = [next(s for s in shown if s.id == i) for i in kept]
        else:
            cited = shown
            notices.append("the model cited no section it was shown; the sections it was given are attached")
        timings["total"] = _ms(t0)
        timings["overhead"] = round(timings["total"] - timings["llm"] - timings.get("condense", 0.0), 3)
        yield Answer(
            text=text, citations=tuple(Citation(s.id, s.title, s.body) for s in cited), declined=False,
            mode=self.llm.name, notices=tuple(notices), dropped_citations=tuple(dropped),
            citations_attached=not kept, partial=partial,
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

    def _fit_prompt(self, query: str, shown: list[Section], turns) -> tuple[list[Section], list, int]:
        """Make the answer prompt fit the context: drop the oldest turns down to the last exchange, then the
        lowest-ranked sections down to one, then the last exchange.  Returns (sections, turns, turns dropped)."""
        room = self.context_tokens - self.answer_tokens
        shown, turns = list(shown), list(turns)
        turn_cost = [prompt_tokens([{"content": t}]) for _, t in turns]
        fixed = prompt_tokens(answer_messages(query, shown, ()))
        dropped = 0
        while fixed + sum(turn_cost) > room:
            if len(turns) > 2 or (turns and len(shown) == 1):
                turns.pop(0)
                turn_cost.pop(0)
                dropped += 1
            elif len(shown) > 1:
                shown.pop()
                fixed = prompt_tokens(answer_messages(query, shown, ()))
            else:
                break  # one section and no history: send it; a server that refuses it gets its error shown
        return shown, turns, dropped

    def _extractive(self, query, sections: list[Section], base: dict, notices, retrieval, timings, t0, why=None):
        """The extractive answer; ``why`` (an LLM failure) becomes the visible fallback notice."""
        if why is not None:
            notices.append(f"{why} — showing the bank's reference answer instead")
        t = time.perf_counter()
        chosen = pick_extractive(retrieval, sections, self.extractive_sections)
        text = extractive_text(query, chosen)
        timings["compose"] = _ms(t)
        yield text
        timings["total"] = _ms(t0)
        yield Answer(text=text, citations=tuple(Citation(s.id, s.title, s.body) for s in chosen), declined=False,
                     mode="extractive", notices=tuple(notices), timings_ms={**retrieval.timings_ms, **timings}, **base)


def pick_extractive(retrieval: Retrieval, sections: list[Section], limit: int) -> list[Section]:
    """The top section, plus runners-up that score within 10% of it (up to ``limit``)."""
    top = retrieval.hits[0].score
    return [s for h, s in zip(retrieval.hits, sections) if h.score >= 0.9 * top][:limit] or sections[:1]


def extractive_text(question: str, sections: Sequence[Section]) -> str:
    """The reference answers quoted verbatim, each headed by its citation."""
    zh = language_of(question) == "Chinese"
    head = "题库中的参考答案（原文引用）：" if zh else "From the question bank (quoted verbatim, in the bank's language):"
    parts = [head]
    for s in sections:
        quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in s.body.splitlines())
        parts.append(f"**[{s.id}] {s.title}**\n{quoted}")
    return "\n\n".join(parts)


def decline_text(question: str, nearby: Sequence[Section], n: int = 3) -> tuple[str, tuple[str, ...]]:
    """A plain decline in the question's language, plus nearby bank questions to try instead."""
    suggestions = tuple(s.title for s in nearby[:n])
    if language_of(question) == "Chinese":
        text = "题库里没有能回答这个问题的内容，我不做猜测。"
        if suggestions:
            text += "题库涵盖的相近题目：\n" + "\n".join(f"- {t}" for t in suggestions)
    else:
        text = "The question bank has nothing that answers this, so I won't guess."
        if suggestions:
            text += " Nearby topics it does cover:\n" + "\n".join(f"- {t}" for t in suggestions)
    return text, suggestions


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


__all__ = ["Coach", "normalise_history", "decline_text", "extractive_text", "approx_tokens", "prompt_tokens"]
