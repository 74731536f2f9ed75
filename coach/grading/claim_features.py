"""How a clause of the answer compares with a key point's right and wrong claims (coach.bank.claims), as numbers.

    claim_cosines(window_vec, right_vecs, wrong_vecs)
    -> [max right, max wrong, mean right, mean wrong, max right - max wrong, mean right - mean wrong]
    claim_overlap("kv cache 不缓存历史 k/v", right, wrong)
    -> [best share of a right claim's character pairs in the text, the same for wrong, their difference]

Raw cosine between a point and a clause does not tell right from reversed (issue 11: 0.92 against 0.95),
but a clause that states a misconception sits nearer the misconception's own wording than the right
statements' (the same negation, the same swapped side), and a clause in the candidate's own words sits
nearer a right claim in other words than the reference's terms.  On split=tune of eval/grader_set.jsonl,
grouped CV: these took the second look's negated false-covered 0.200 -> 0.169 and mixed precision 0.886 ->
0.896, and crediting by them (second_look.point_features) took reworded recall 0.814 -> 0.847.  All pure.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

N_COSINES, N_OVERLAP, N_ASSERTION = 6, 3, 5
N_CREDIT = N_COSINES + 2 + N_OVERLAP  # the credit's own features (second_look.point_features), after the judge's head


def claim_cosines(window: np.ndarray | None, right: np.ndarray, wrong: np.ndarray) -> list[float]:
    """Cosines of ``window`` (unit vector, or None: zeros) with the right and wrong claims (rows of unit vectors)."""
    if window is None or not len(right) or not len(wrong):
        return [0.0] * N_COSINES
    r, w = right @ window, wrong @ window
    return [float(r.max()), float(w.max()), float(r.mean()), float(w.mean()), float(r.max() - w.max()),
            float(r.mean() - w.mean())]


def pairs_of(text: str) -> set[str]:
    """The character pairs of ``text`` lower-cased without spaces (the text itself when shorter than two)."""
    t = text.lower().replace(" ", "")
    return {t[i:i + 2] for i in range(len(t) - 1)} or {t}


def words_pairs(text: str) -> set[str]:
    """``pairs_of`` without the pairs that hold punctuation or a symbol ("，减", "k/"): what the words say."""
    return {p for p in pairs_of(text) if p.isalnum()}


def claim_overlap(text: str, right: Sequence[str], wrong: Sequence[str]) -> list[float]:
    """How much of the best right and best wrong claim's character pairs ``text`` holds, and the difference.
    Written by hand: a set intersection, which no library call makes shorter."""
    if not text or not right or not wrong:
        return [0.0] * N_OVERLAP
    have = pairs_of(text)
    share = lambda claim: len(pairs_of(claim) & have) / len(pairs_of(claim))  # noqa: E731
    a, b = max(map(share, right)), max(map(share, wrong))
    return [a, b, a - b]


# What a confident misconception in the reference's own terms adds (eval/README.md, session 10): a restriction
# ("只在训练阶段用"), a stage ("主要是推理阶段用的") or a purpose ("目的是减少 token 消耗") the section never states.
_RESTRICT = re.compile(r"只|仅|才|必须|一定要|唯一|完全|\b(?:only|must|solely|always|exclusively)\b", re.I)
_STAGE = re.compile(r"预训练|训练|推理|部署|微调|解码|检索|评估|评测|上线|离线|在线|prefill|decode|pretrain\w*|train\w*|"
                    r"inference|fine-?tun\w*|serving|deploy\w*", re.I)
_PURPOSE = re.compile(r"为了|目的是|目的在于|作用是|原因是|是因为|因为|用来|用于|主要是|在于|so that|because|in order to|"
                      r"the point is|is to|meant to|so the", re.I)


def novelty(window: str, point: str, stated: set[str], wrong: Sequence[str]) -> list[float]:
    """What ``window`` says beyond the point's own words: the share of its other character pairs that nothing
    right in the section holds (``stated``: the pairs of every key point and right claim of the section), and the
    share that only this point's ``wrong`` claims hold.  A right clause in other words reuses the section's
    words; a wrong attribute ("--dtype auto 会把权重量化成 INT8") brings words of its own."""
    own = words_pairs(window) - pairs_of(point)
    if not own:
        return [0.0, 0.0]
    wrong_pairs = set().union(*map(pairs_of, wrong)) if wrong else set()
    new = own - stated
    return [len(new) / len(own), len(new & wrong_pairs) / len(own)]


def assertion(sentence: str, reference: str, stated: set[str]) -> list[float]:
    """Whether ``sentence`` (the window and the clause after it) restricts (只/必须/only) or names a stage
    (训练/推理/inference) in words ``reference`` (the section's key points and right claims) never uses, and
    the share of what follows a purpose or cause (为了/因为/because) that ``stated`` does not hold."""
    low = reference.lower()
    restrict = any(m.group(0).lower() not in low for m in _RESTRICT.finditer(sentence))
    stage = any(m.group(0).lower() not in low for m in _STAGE.finditer(sentence))
    m = _PURPOSE.search(sentence)
    tail = words_pairs(sentence[m.end():]) if m else set()
    return [float(restrict), float(stage), len(tail - stated) / len(tail) if tail else 0.0]


def best_clause(point: np.ndarray, clauses: np.ndarray, right: np.ndarray, wrong: np.ndarray) -> tuple[int, list[float]]:
    """The clause (row of ``clauses``) nearest the point or a right claim, and its ``claim_cosines`` followed by
    its cosine with the point and that nearness; (-1, zeros) without clauses or claims."""
    if not len(clauses) or not len(right) or not len(wrong):
        return -1, [0.0] * (N_COSINES + 2)
    to_point = clauses @ point
    near = np.maximum((clauses @ right.T).max(axis=1), to_point)
    i = int(np.argmax(near))
    return i, claim_cosines(clauses[i], right, wrong) + [float(to_point[i]), float(near[i])]


__all__ = ["N_ASSERTION", "N_COSINES", "N_OVERLAP", "N_CREDIT", "assertion", "best_clause", "claim_cosines",
           "claim_overlap", "novelty", "pairs_of", "words_pairs"]
