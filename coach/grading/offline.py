"""The offline judge: a verdict per key point from the concepts an answer clause names, and its cues.

    OfflineJudge().judge(points, "KV Cache 不缓存历史 K/V，每步都重算全部 token")
    -> [PointVerdict("推理时缓存历史 K/V", "contradicted", "KV Cache 不缓存历史 K/V"), ...]

For each key point and each window of the answer (a clause, or two neighbouring
clauses), ``coverage`` is the weighted share of the point's concepts (terms.py:
glossary and lexicon groups, so English answers find Chinese points, and rare
words weigh more) that the window names.  Concepts the reference's other points
share weigh ``SHARED`` as much, so naming one item of a list does not cover its
siblings.  A window in which a cue fires (cues.py: negation flip, antonym,
swapped comparison) speaks against the point.  Then, with ``best_clean`` and
``best_cue`` the best coverage of a window without and with a cue:

- contradicted  if ``best_cue >= contradict`` and ``best_cue >= best_clean``
- covered       if ``best_clean >= covered``; partial if ``>= partial``; else missing.

The evidence is the window itself: a span of the answer by construction.  The
thresholds were chosen on the tune half of eval/grader_set.jsonl (eval/grader_eval.py
--tune); an answer is read once per concept, so grading costs a few milliseconds.
Raw e5 cosine at this granularity does not separate right from wrong (issue 11),
so this judge uses no embedder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .cues import antonym, negation_flip, swapped
from .keypoints import Clause, clauses, flat
from .terms import Concept, Concepts
from .verdicts import CONTRADICTED, COVERED, MISSING, PARTIAL, PointVerdict

SHARED = 0.3  # weight factor of a concept that the reference's other points also name


@dataclass(frozen=True)
class OfflineParams:
    """Coverage thresholds (0..1) for covered, partial and (with a cue) contradicted."""

    covered: float = 0.6
    partial: float = 0.4
    contradict: float = 0.4

    def __post_init__(self):
        for name in ("covered", "partial", "contradict"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} threshold {value} is outside 0..1; use e.g. {getattr(OfflineParams, name)}")


@dataclass(frozen=True)
class PointScore:
    """What the judge saw for one point: best coverage without and with a cue, and where."""

    point: str
    best_clean: float
    clean_window: Clause | None
    best_cue: float
    cue_window: Clause | None
    cue: str


class OfflineJudge:
    """``OfflineJudge(concepts, params).judge(points, answer) -> list[PointVerdict]`` (pure given its tables)."""

    name = "offline"

    def __init__(self, concepts: Concepts, params: OfflineParams = OfflineParams()):
        self.concepts, self.params = concepts, params

    def scores(self, points: Sequence[str], answer: str) -> list[PointScore]:
        """Per point, the best clean and cued coverage over the answer's windows (for eval and display)."""
        windows = _windows(clauses(answer), answer)
        answer_flat_by_window = [flat(w.text) for w in windows]
        per_point = [self.concepts.of(p) for p in points]
        counts: dict[str, int] = {}
        for cs in per_point:
            for c in {c.key for c in cs}:
                counts[c] = counts.get(c, 0) + 1
        found: dict[str, list[tuple[int, int]]] = {}  # concept key -> spans in the answer
        longest = self.concepts.longest(answer)
        out = []
        for point, cs in zip(points, per_point):
            for c in cs:
                if c.key not in found:
                    found[c.key] = Concepts.find(c, answer, longest)
            weights = [c.weight * (SHARED if counts[c.key] > 1 and len(cs) > 1 else 1.0) for c in cs]
            total = sum(weights)
            point_spans = {c.key: (Concepts.find(c, point) or [(0, 0)])[0] for c in cs}
            verbatim = flat(point)
            best = [0.0, None, 0.0, None, ""]
            for w, wflat in zip(windows, answer_flat_by_window):
                inside = [(c, wt, [s for s in found[c.key] if w.start <= s[0] and s[1] <= w.end])
                          for c, wt in zip(cs, weights)]
                matched = [(c, wt, sp) for c, wt, sp in inside if sp]
                cover = 1.0 if verbatim and verbatim in wflat else (
                    sum(wt for _, wt, _ in matched) / total if total else 0.0)
                if cover <= 0.0:
                    continue
                cue = _cue(point, cs, point_spans, answer, w, matched) if cover >= min(self.params.contradict, 1) else ""
                if cue and cover > best[2]:
                    best[2:] = [cover, w, cue]
                elif not cue and cover > best[0]:
                    best[:2] = [cover, w]
            out.append(PointScore(point, best[0], best[1], best[2], best[3], best[4]))
        return out

    def judge(self, points: Sequence[str], answer: str) -> list[PointVerdict]:
        return [self.verdict(s) for s in self.scores(points, answer)]

    def verdict(self, s: PointScore) -> PointVerdict:
        p = self.params
        if s.cue_window is not None and s.best_cue >= p.contradict and s.best_cue >= s.best_clean:
            return PointVerdict(s.point, CONTRADICTED, s.cue_window.text)
        if s.clean_window is not None and s.best_clean >= p.covered:
            return PointVerdict(s.point, COVERED, s.clean_window.text)
        if s.clean_window is not None and s.best_clean >= p.partial:
            return PointVerdict(s.point, PARTIAL, s.clean_window.text)
        return PointVerdict(s.point, MISSING, "")


def _windows(cls: list[Clause], answer: str) -> list[Clause]:
    """Each clause and each pair of neighbouring clauses, as spans of the answer."""
    return cls + [Clause(answer[a.start : b.end], a.start, b.end) for a, b in zip(cls, cls[1:])]


def _cue(point: str, cs: Sequence[Concept], point_spans: dict, answer: str, w: Clause,
         matched: list[tuple[Concept, float, list[tuple[int, int]]]]) -> str:
    text = answer[w.start : w.end]
    pairs = [(point_spans[c.key], (sp[0][0] - w.start, sp[0][1] - w.start)) for c, _, sp in matched]
    reason = negation_flip(point, [p for p, _ in pairs], text, [q for _, q in pairs])
    if not reason:
        reason = antonym(point, text)
    if not reason and matched:
        first = min(matched, key=lambda m: point_spans[m[0].key][0])
        subject = point_spans[first[0].key]
        reason = swapped(point, subject, text, [(a - w.start, b - w.start) for a, b in first[2]])
    return reason


__all__ = ["OfflineJudge", "OfflineParams", "PointScore", "SHARED"]
