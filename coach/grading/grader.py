"""The Grader: key points, a judge (offline, or the LLM with the offline judge as fallback), a Grade.

    Grader(embedder).grade(section, answer)            # offline judge; Grade.judge == "offline"
    Grader(embedder, llm=llm).grade(section, answer)   # LLM judge; Grade.judge == "llm:<model>"

Bad input never raises past ``TypeError`` for a non-string: an empty answer is
graded with every point missed and a note; a paste longer than MAX_ANSWER_CHARS is
cut, with a note; an answer that is only code, or in a language the grader does not
read, gets a note saying what the grade rests on.  Shared by the Gradio app, the
Slack bot and eval; thread-safe.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..text import normalize
from ..types import Section
from .keypoints import key_points
from .llm_judge import JudgeError, LLMJudge
from .offline import OfflineJudge, OfflineParams
from .second_look import SecondLook, Vectors, load_second_look
from .terms import Concepts, default_groups
from .verdicts import MISSING, Grade, PointVerdict, make_grade

MAX_ANSWER_CHARS = 3000  # longer answers are cut here (a 20,000-character paste stays cheap to grade)
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-z]")


class Grader:
    """``Grader(embedder, llm=None, glossary=(), params=None).grade(section, answer) -> Grade``.

    ``glossary``: the bank's groups of names (coach.bank.glossary.load_glossary(...).groups), added to
    the grader's own lexicon for cross-lingual matching.  ``embedder``: with a second-look model fitted for
    it (second_look.py), the offline judge's "covered" verdicts get a learned check for contradictions;
    ``second_look`` overrides the model loaded for the embedder (tests), ``second_look_state`` says which.
    """

    def __init__(self, embedder=None, threshold: float | None = None, llm=None,
                 glossary: Sequence[Sequence[str]] = (), params: OfflineParams | None = None,
                 second_look: SecondLook | None = None):
        params = params or OfflineParams()
        if threshold is not None:
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold {threshold} is outside 0..1; use e.g. {params.covered}")
            params = OfflineParams(threshold, min(params.partial, threshold), params.contradict)
        self.embedder, self.llm, self.params = embedder, llm, params
        self.concepts = Concepts(list(glossary) + list(default_groups()))
        self.offline = OfflineJudge(self.concepts, params)
        if second_look is not None:
            self.second_look, self.second_look_state = second_look, "grading second look: on (given)"
        elif embedder is not None:
            self.second_look, self.second_look_state = load_second_look(embedder.name)
        else:
            self.second_look, self.second_look_state = None, "grading second look: off (no embedder)"
        self._vectors = Vectors(embedder) if embedder is not None else None

    def offline_verdicts(self, points: Sequence[str], text: str) -> tuple[list[PointVerdict], list[str]]:
        """The offline judge's verdicts, with the second look when there is one, and notes on what it did."""
        scores = self.offline.scores(points, text)
        verdicts = [self.offline.verdict(s) for s in scores]
        if self.second_look is None or self._vectors is None:
            return verdicts, []
        try:
            revised = self.second_look.revise(verdicts, scores, self._vectors)
        except Exception as err:  # the embedder failed: the cue-based verdicts stand, and the grade says so
            return verdicts, [f"second look skipped ({type(err).__name__}: {err}): contradictions are read from "
                              "cue words only"]
        doubted = sum(a.verdict != b.verdict for a, b in zip(revised, verdicts))
        if not doubted:
            return revised, []
        return revised, [f"{doubted} point{'s' if doubted > 1 else ''} use{'' if doubted > 1 else 's'} the "
                         "reference's words, but the automatic check doubts the claim is stated right: marked "
                         "partial; confirm or correct"]

    def grade(self, section: Section, answer: str, llm=None) -> Grade:
        """A verdict per key point, the score they make, and (with an LLM) feedback grounded in them."""
        if not isinstance(answer, str):
            raise TypeError(f"answer must be text, not {type(answer).__name__}")
        notes: list[str] = []
        if len(answer) > MAX_ANSWER_CHARS:
            notes.append(f"answer cut to its first {MAX_ANSWER_CHARS:,} of {len(answer):,} characters for grading")
        text = normalize(answer[:MAX_ANSWER_CHARS])
        points = key_points(section.body)
        if not text:
            notes.append("empty answer: nothing to grade, every point is missed")
            return make_grade(section.id, section.body, [PointVerdict(p, MISSING) for p in points],
                              judge="offline", answer="", notes=notes)
        notes += input_notes(text)
        llm = llm if llm is not None else self.llm
        feedback, judge = "", "offline"
        if llm is not None and points:
            llm_judge = LLMJudge(llm, self.concepts)
            try:
                verdicts, feedback, llm_notes = llm_judge.judge(section, points, text)
                notes += llm_notes
                judge = llm_judge.name
            except JudgeError as err:
                notes.append(f"LLM judge unavailable ({err}): graded by the offline check of the reference's "
                             "points instead")
                verdicts, more = self.offline_verdicts(points, text)
                notes += more
        else:
            verdicts, more = self.offline_verdicts(points, text)
            notes += more
        return make_grade(section.id, section.body, verdicts, judge=judge, answer=text, feedback=feedback, notes=notes)


def input_notes(text: str) -> list[str]:
    """Notes for answers the judges read poorly: only code, or in neither Chinese nor English."""
    notes = []
    prose = _FENCE.sub(" ", text)
    if text.count("```") >= 2 and not _LETTER.search(prose):
        notes.append("the answer is only code: graded on the names and comments it uses")
    letters = _LETTER.findall(prose)
    if letters:
        readable = sum(1 for ch in letters if _CJK.match(ch) or _LATIN.match(ch))
        if readable / len(letters) < 0.5:
            notes.append("the answer is mostly in a language other than Chinese or English: the check reads only "
                         "Chinese and English terms, so points may be missed; answer in Chinese or English")
    return notes


__all__ = ["Grader", "MAX_ANSWER_CHARS", "input_notes"]
