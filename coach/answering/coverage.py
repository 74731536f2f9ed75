"""The model's coverage judgement: does what it was shown answer the question fully, partly or not at all?

In LLM mode the answer call asks for JSON under a schema (``response_format`` json_schema, which
vLLM's OpenAI-compatible server enforces by guided decoding), its fields in this order:

    {"coverage": "partly", "sections": ["Q32"], "not_covered": "秩 r 的选法", "answer": "LoRA 冻结 W ... [Q32]"}

- ``coverage``     "full" | "partly" | "none"
- ``sections``     the shown sections the answer rests on (the evidence; ids limited by the schema to those shown)
- ``not_covered``  what part of the question the sections do not answer ("" when full)
- ``answer``       for full/partly the answer; for none only what the sections do cover

The judgement comes first so that a stream can be read as it arrives: ``CoverageStream.feed`` parses
the partial JSON after every piece (jiter's partial mode; a reply is at most a few KB, so parsing it
again each time costs nothing worth a hand-written incremental parser) and hands out the answer text
only once every field before it is complete.  ``CoverageStream.finish`` checks the whole reply;
anything off (not JSON, a field missing or mistyped, an unknown level, a section it was not shown, a
"full"/"partly" claim naming no section) raises CoverageError and the caller keeps the offline outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import jiter

FULL, PARTLY, NONE = "full", "partly", "none"
LEVELS = (FULL, PARTLY, NONE)
FIELDS = ("coverage", "sections", "not_covered", "answer")  # the order the schema asks for
NOT_COVERED_MAX = 300  # characters; a note, not an essay


class CoverageError(ValueError):
    """The model's structured reply cannot be used; the message says what was wrong with it."""


@dataclass(frozen=True)
class Coverage:
    level: str  # FULL | PARTLY | NONE
    sections: tuple[str, ...]
    not_covered: str
    answer: str


def coverage_schema(shown_ids: Collection[str]) -> dict:
    """The ``response_format`` for an answer call over the sections ``shown_ids``."""
    ids = sorted(shown_ids)
    schema = {
        "type": "object",
        "properties": {
            "coverage": {"type": "string", "enum": list(LEVELS)},
            "sections": {"type": "array", "items": {"type": "string", "enum": ids}, "maxItems": len(ids)},
            "not_covered": {"type": "string", "maxLength": NOT_COVERED_MAX},
            "answer": {"type": "string"},
        },
        "required": list(FIELDS),
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "coverage_answer", "schema": schema, "strict": True}}


def check_coverage(data, shown_ids: Collection[str]) -> Coverage:
    """A parsed reply -> Coverage, or CoverageError naming the first problem.
    Hand-written: four fields; the jsonschema package would not check the evidence rule below anyway."""
    if not isinstance(data, dict):
        raise CoverageError(f"the reply is a JSON {type(data).__name__}, not an object with {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if f not in data]
    if missing:
        raise CoverageError(f"the reply lacks the field(s) {', '.join(missing)}")
    extra = sorted(set(data) - set(FIELDS))
    if extra:
        raise CoverageError(f"the reply has unexpected field(s) {', '.join(extra)}")
    level, sections, not_covered, answer = (data[f] for f in FIELDS)
    if level not in LEVELS:
        raise CoverageError(f"coverage {level!r} is not one of {', '.join(LEVELS)}")
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise CoverageError("sections is not a list of section ids")
    if not isinstance(not_covered, str) or not isinstance(answer, str):
        raise CoverageError("not_covered and answer must be strings")
    unknown = [s for s in sections if s not in shown_ids]
    if unknown:
        raise CoverageError(f"the judgement names section(s) it was not shown: {', '.join(unknown)}")
    if level != NONE and not sections:
        raise CoverageError(f"coverage {level!r} names no section it rests on")
    return Coverage(level, tuple(dict.fromkeys(sections)), not_covered.strip(), answer)


class CoverageStream:
    """Read a streamed structured reply: ``feed(piece)`` returns the answer text that became final."""

    def __init__(self, shown_ids: Collection[str]):
        self.shown_ids = set(shown_ids)
        self.raw = ""
        self.head: dict | None = None  # coverage, sections, not_covered once all three are complete
        self._answer = ""  # the answer text handed out so far

    def feed(self, piece: str) -> str:
        self.raw += piece
        try:
            partial = jiter.from_json(self.raw.encode("utf-8"), partial_mode="trailing-strings")
        except ValueError:
            return ""  # not (yet) JSON: finish() will say so
        if not isinstance(partial, dict) or "answer" not in partial:
            return ""
        keys = list(partial)
        if self.head is None:
            if keys.index("answer") != len(FIELDS) - 1 or keys[:3] != list(FIELDS[:3]):
                return ""  # fields in another order: nothing is shown before the whole reply is checked
            self.head = {k: partial[k] for k in FIELDS[:3]}
        text = partial["answer"] if isinstance(partial["answer"], str) else ""
        if not text.startswith(self._answer):
            return ""  # never take back text that was handed out
        new, self._answer = text[len(self._answer):], text
        return new

    @property
    def level(self) -> str | None:
        """The coverage level once the fields before the answer are complete (not yet checked)."""
        return self.head.get("coverage") if self.head else None

    @property
    def handed_out(self) -> str:
        return self._answer

    def finish(self) -> Coverage:
        """The whole reply, checked; CoverageError if it is not a complete, valid judgement."""
        if not self.raw.strip():
            raise CoverageError("the reply is empty")
        try:
            data = jiter.from_json(self.raw.encode("utf-8"))
        except ValueError as err:
            raise CoverageError(f"the reply is not complete JSON ({err})") from None
        return check_coverage(data, self.shown_ids)
