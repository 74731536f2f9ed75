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
from typing import Mapping, Sequence

from ..bank.claims import Claims, PointClaims
from ..indexing.vector_cache import read_vectors
from ..text import CJK as _CJK, normalize
from ..types import Section
from .keypoints import code_values, key_points
from .llm_judge import JudgeError, LLMJudge
from .offline import OfflineJudge, OfflineParams, wrong_values
from .second_look import SecondLook, Vectors, claims_vectors_path, load_second_look, stating_clauses
from .terms import Concepts, default_groups
from .verdicts import COVERED, MISSING, PARTIAL, Grade, PointVerdict, make_grade

MAX_ANSWER_CHARS = 3000  # longer answers are cut here (a 20,000-character paste stays cheap to grade)
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-z]")


class Grader:
    """``Grader(embedder, llm=None, glossary=(), params=None).grade(section, answer) -> Grade``.

    ``glossary``: the bank's groups of names (coach.bank.glossary.load_glossary(...).groups), added to
    the grader's own lexicon for cross-lingual matching.  ``embedder``: with a second-look model fitted for
    it (second_look.py), the offline judge's "covered" verdicts get a learned check for contradictions, and
    with ``claims`` (coach.bank.claims.load_claims(...): each key point stated right and wrong) the check reads
    them and may credit a point said in other words; ``second_look`` overrides the model loaded for the
    embedder (tests), ``second_look_state`` says which.
    """

    def __init__(self, embedder=None, threshold: float | None = None, llm=None,
                 glossary: Sequence[Sequence[str]] = (), params: OfflineParams | None = None,
                 second_look: SecondLook | None = None, claims: Claims | None = None):
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
        # claims normalised as answers are (the windows they are compared with are spans of a normalised answer)
        self.claims = {key: PointClaims(tuple(map(normalize, c.right)), tuple(map(normalize, c.wrong)))
                       for key, c in (claims or {}).items()}
        self._vectors = None
        if embedder is not None:
            seeds = read_vectors(claims_vectors_path(embedder.name), embedder.name, embedder.dim) \
                if self.second_look is not None and self.claims else {}
            self._vectors = Vectors(embedder, seeds=seeds)

    @classmethod
    def for_corpus(cls, corpus_dir, embedder=None, llm=None, **kwargs) -> "Grader":
        """The grader of a corpus folder: its glossary's groups and its point claims (coach.bank.claims), with
        ``second_look_state`` saying how many of its key points have claims.  Bad files raise CorpusError
        naming the file and line."""
        from ..bank.claims import claims_coverage, load_claims
        from ..bank.corpus import load_corpus
        from ..bank.glossary import load_glossary

        sections = load_corpus(corpus_dir)
        claims = load_claims(corpus_dir, {s.id for s in sections})
        grader = cls(embedder, llm=llm, glossary=load_glossary(corpus_dir).groups, claims=claims, **kwargs)
        if grader.second_look is not None:
            have, total = claims_coverage(claims, {s.id: key_points(s.body) for s in sections})
            grader.second_look_state += f"; point claims for {have} of {total} key points"
        return grader

    def offline_verdicts(self, points: Sequence[str], text: str, section_id: str = "",
                         values: Mapping[str, str] | None = None) -> tuple[list[PointVerdict], list[str]]:
        """The offline judge's verdicts, with the second look when there is one, and notes on what it did;
        last, a code point set to another literal than the reference's (``values``: keypoints.code_values) is
        contradicted (offline.wrong_values)."""
        scores = self.offline.scores(points, text)
        verdicts = [self.offline.verdict(s) for s in scores]
        revised, notes = verdicts, []
        if self.second_look is not None and self._vectors is not None:
            claims = [self.claims.get((section_id, p)) for p in points]
            try:
                revised = self.second_look.revise(verdicts, scores, self._vectors, claims,
                                                  stating_clauses(text) if any(claims) else [], text)
                notes = second_look_notes(verdicts, revised)
            except Exception as err:  # the embedder failed: the cue-based verdicts stand, and the grade says so
                notes = [f"second look skipped ({type(err).__name__}: {err}): contradictions are read from cue "
                         "words only"]
        return wrong_values(revised, text, values or {}), notes

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
        feedback, judge, values = "", "offline", code_values(section.body)
        if llm is not None and points:
            llm_judge = LLMJudge(llm, self.concepts)
            try:
                verdicts, feedback, llm_notes = llm_judge.judge(section, points, text)
                notes += llm_notes
                judge = llm_judge.name
            except JudgeError as err:
                notes.append(f"LLM judge unavailable ({err}): graded by the offline check of the reference's "
                             "points instead")
                verdicts, more = self.offline_verdicts(points, text, section.id, values)
                notes += more
        else:
            verdicts, more = self.offline_verdicts(points, text, section.id, values)
            notes += more
        return make_grade(section.id, section.body, verdicts, judge=judge, answer=text, feedback=feedback, notes=notes)


def second_look_notes(before: Sequence[PointVerdict], after: Sequence[PointVerdict]) -> list[str]:
    """What the second look changed, for the candidate to confirm (pure)."""
    rank = {MISSING: 0, PARTIAL: 1, COVERED: 2}
    doubted = sum(a.verdict == COVERED and b.verdict != COVERED for a, b in zip(before, after))
    credited = sum(rank.get(b.verdict, 0) > rank.get(a.verdict, 0) for a, b in zip(before, after))
    plural = lambda n, one, many: one if n == 1 else many  # noqa: E731
    notes = []
    if doubted:
        notes.append(f"{doubted} {plural(doubted, 'point uses', 'points use')} the reference's words, but the "
                     "automatic check doubts the claim is stated right: marked partial; confirm or correct")
    if credited:
        notes.append(f"{credited} {plural(credited, 'point is', 'points are')} credited though the answer uses "
                     "few of the reference's words: the automatic check reads the clause shown as a right statement "
                     "of it; confirm or correct")
    return notes


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


__all__ = ["Grader", "MAX_ANSWER_CHARS", "input_notes", "second_look_notes"]
