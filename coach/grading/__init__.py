"""Practice grading: a verdict per key point with the span of the answer it rests on.

    from coach.grading import Grader
    grade = Grader(embedder).grade(section, answer)
    grade = Grader.for_corpus(corpus_dir, embedder).grade(section, answer)   # with the corpus's glossary and claims
    grade.points   # (PointVerdict(point, "covered" | "partial" | "contradicted" | "missing", evidence), ...)

Modules, in data-flow order (each imports only those before it, plus coach.text,
coach.bank.glossary, coach.bank.claims, coach.indexing.vector_cache, coach.llm, coach.answering.prompts and
coach.types):

- keypoints.py  the reference's key points (pinned for the seed bank) and the answer's clauses
- verdicts.py   PointVerdict, Grade, the evidence check, the score, the candidate's confirmation
- terms.py      concepts a point needs (glossary + lexicon.json groups, token weights)
- cues.py       contradiction cues: negation flip, antonym pair, swapped comparison
- offline.py    the offline judge (default)
- claim_features.py  how a clause compares with a point's right and wrong claims (coach.bank.claims)
- second_look.py  a learned check of the offline verdicts: doubt a "covered", credit a point said in other
                  words (per embedder, fitted on split=tune)
- llm_judge.py  the LLM judge (structured output), checked verdict by verdict
- grader.py     Grader: picks the judge, falls back, handles bad input

``coach.grader`` re-exports this package for older imports.
"""

from .grader import MAX_ANSWER_CHARS, Grader, input_notes
from .keypoints import Clause, clauses, flat, key_points
from .llm_judge import JudgeError, LLMJudge
from .offline import OfflineJudge, OfflineParams, PointScore
from .second_look import SecondLook, load_second_look
from .terms import Concept, Concepts
from .verdicts import (CONTRADICTED, COVERED, MISSING, PARTIAL, VERDICTS, Grade, KeyPoint, PointVerdict,
                       check_evidence, confirm, evidence_in, make_grade, score_of)

__all__ = ["Grader", "MAX_ANSWER_CHARS", "input_notes", "key_points", "clauses", "Clause", "flat", "LLMJudge",
           "JudgeError", "OfflineJudge", "OfflineParams", "PointScore", "SecondLook", "load_second_look", "Concept", "Concepts", "Grade", "KeyPoint",
           "PointVerdict", "check_evidence", "confirm", "evidence_in", "make_grade", "score_of", "COVERED", "PARTIAL",
           "CONTRADICTED", "MISSING", "VERDICTS"]
