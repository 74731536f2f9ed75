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

from typing import Sequence

import numpy as np

N_COSINES, N_OVERLAP = 6, 3
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


def claim_overlap(text: str, right: Sequence[str], wrong: Sequence[str]) -> list[float]:
    """How much of the best right and best wrong claim's character pairs ``text`` holds, and the difference.
    Written by hand: a set intersection, which no library call makes shorter."""
    if not text or not right or not wrong:
        return [0.0] * N_OVERLAP
    have = pairs_of(text)
    share = lambda claim: len(pairs_of(claim) & have) / len(pairs_of(claim))  # noqa: E731
    a, b = max(map(share, right)), max(map(share, wrong))
    return [a, b, a - b]


def best_clause(point: np.ndarray, clauses: np.ndarray, right: np.ndarray, wrong: np.ndarray) -> tuple[int, list[float]]:
    """The clause (row of ``clauses``) nearest the point or a right claim, and its ``claim_cosines`` followed by
    its cosine with the point and that nearness; (-1, zeros) without clauses or claims."""
    if not len(clauses) or not len(right) or not len(wrong):
        return -1, [0.0] * (N_COSINES + 2)
    to_point = clauses @ point
    near = np.maximum((clauses @ right.T).max(axis=1), to_point)
    i = int(np.argmax(near))
    return i, claim_cosines(clauses[i], right, wrong) + [float(to_point[i]), float(near[i])]


__all__ = ["N_COSINES", "N_OVERLAP", "N_CREDIT", "best_clause", "claim_cosines", "claim_overlap", "pairs_of"]
