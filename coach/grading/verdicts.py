"""Verdicts on key points, the Grade they make, and the evidence check every verdict passes.

    PointVerdict("推理时缓存历史 K/V", CONTRADICTED, "不缓存历史 K/V")
    check_evidence(verdicts, "KV Cache 不缓存历史 K/V。")  -> (verdicts, [])          # the span is in the answer
    check_evidence(verdicts, "KV Cache 很快。")             -> (missing ..., [note])   # it is not: downgraded

A verdict is one of ``covered``, ``partial``, ``contradicted``, ``missing``; all but
``missing`` must name a span of the candidate's answer.  The span is checked like a
citation: it must be a substring of the answer once both are normalised (NFKC,
markup and whitespace dropped, lower-cased); a verdict whose span is not there becomes
``missing`` and a note says so.  The score is ``100 * (covered + 0.5 * partial) / points``;
a contradicted point counts as missed, and is shown as wrong.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Sequence

from .keypoints import flat

COVERED, PARTIAL, CONTRADICTED, MISSING = "covered", "partial", "contradicted", "missing"
VERDICTS = (COVERED, PARTIAL, CONTRADICTED, MISSING)
CREDIT = {COVERED: 1.0, PARTIAL: 0.5, CONTRADICTED: 0.0, MISSING: 0.0}


@dataclass(frozen=True)
class KeyPoint:
    """One clause or term of a reference answer."""

    text: str


@dataclass(frozen=True)
class PointVerdict:
    """The judge's call on one key point, the span of the answer it rests on ("" for missing), and why, when the
    judge can say it in a line (the cue the offline judge read, or the claim a clause reads like; "" otherwise)."""

    point: str
    verdict: str
    evidence: str = ""
    why: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")


@dataclass(frozen=True)
class Grade:
    """The result of grading one answer.

    ``points`` holds a verdict per key point in reference order; ``covered``, ``missed``
    (everything not covered, contradicted included) and ``contradicted`` are key point
    texts in reference order.  ``judge`` is ``"offline"`` or ``"llm:<model>"``.
    """

    section_id: str
    score: float  # 0-100, from the verdicts (see score_of)
    covered: tuple[str, ...]
    missed: tuple[str, ...]
    reference: str
    feedback: str = ""
    notes: tuple[str, ...] = ()  # e.g. "answer cut to 3,000 characters", "LLM judge unavailable: ..."
    points: tuple[PointVerdict, ...] = ()
    judge: str = "offline"
    contradicted: tuple[str, ...] = ()
    answer: str = ""  # the answer as graded (normalised, cut): where the evidence spans are found

    @property
    def partial(self) -> tuple[str, ...]:
        return tuple(v.point for v in self.points if v.verdict == PARTIAL)


def score_of(verdicts: Sequence[PointVerdict]) -> float:
    """``100 * (covered + 0.5 * partial) / len(verdicts)``, rounded to 0.1; 0 without points."""
    if not verdicts:
        return 0.0
    return round(100.0 * sum(CREDIT[v.verdict] for v in verdicts) / len(verdicts), 1)


def evidence_in(span: str, answer: str) -> bool:
    """Whether ``span`` is a (normalised) substring of ``answer``; an empty span never is."""
    needle = flat(span)
    return bool(needle) and needle in flat(answer)


def check_evidence(verdicts: Sequence[PointVerdict], answer: str) -> tuple[list[PointVerdict], list[str]]:
    """Verdicts whose evidence is not in the answer become ``missing``; one note per downgrade."""
    out, notes = [], []
    haystack = flat(answer)
    for i, v in enumerate(verdicts, start=1):
        if v.verdict != MISSING:
            needle = flat(v.evidence)
            if not needle or needle not in haystack:
                notes.append(f"point {i} ({v.point[:30]}) was called {v.verdict} on evidence that is not in the "
                             f"answer ({v.evidence[:40]!r}); counted as missing")
                v = replace(v, verdict=MISSING, evidence="", why="")
        out.append(v)
    return out, notes


def make_grade(section_id: str, reference: str, verdicts: Sequence[PointVerdict], *, judge: str, answer: str,
               feedback: str = "", notes: Sequence[str] = ()) -> Grade:
    """A Grade whose score and point lists all come from ``verdicts``."""
    by = lambda kind: tuple(v.point for v in verdicts if v.verdict == kind)  # noqa: E731
    return Grade(section_id, score_of(verdicts), by(COVERED), tuple(v.point for v in verdicts if v.verdict != COVERED),
                 reference, feedback, tuple(notes), tuple(verdicts), judge, by(CONTRADICTED), answer)


def confirm(grade: Grade, verdicts: Sequence[str], by: str = "candidate") -> Grade:
    """The grade with the candidate's verdicts (one per point, in order); evidence is kept, score recomputed, the
    judge's ``why`` dropped where the candidate changed the verdict.

    ``confirm(g, ["covered", "missing", "missing"])``: a verdict the candidate changes keeps
    the judge's evidence when it had one, and a note records each change.
    """
    if len(verdicts) != len(grade.points):
        raise ValueError(f"{len(verdicts)} verdicts for {len(grade.points)} key points: give one per point")
    changed, notes = [], list(grade.notes)
    for i, (old, new) in enumerate(zip(grade.points, verdicts), start=1):
        if new not in VERDICTS:
            raise ValueError(f"verdict {new!r} for point {i} is not one of {', '.join(VERDICTS)}")
        if new != old.verdict:
            notes.append(f"point {i} changed by the {by}: {old.verdict} -> {new}")
        changed.append(replace(old, verdict=new, why=old.why if new == old.verdict else ""))
    return make_grade(grade.section_id, grade.reference, changed, judge=grade.judge, answer=grade.answer,
                      feedback=grade.feedback, notes=notes)


def grade_to_json(grade: Grade) -> str:
    """A Grade as JSON text (for a shared store: a grade awaiting confirmation); ``grade_from_json`` reads it back."""
    return json.dumps(asdict(grade), ensure_ascii=False)


def grade_from_json(text: str) -> Grade:
    """``grade_from_json(grade_to_json(g)) == g``; ValueError for text that is not such a grade."""
    try:
        data = json.loads(text)
        points = tuple(PointVerdict(**p) for p in data.pop("points", ()))
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return Grade(**fields, points=points)
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"not a stored grade ({err})") from None


__all__ = ["COVERED", "PARTIAL", "CONTRADICTED", "MISSING", "VERDICTS", "KeyPoint", "PointVerdict", "Grade",
           "score_of", "evidence_in", "check_evidence", "make_grade", "confirm", "grade_to_json", "grade_from_json"]
