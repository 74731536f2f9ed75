"""Practice mode: which question to ask next and which follow-up drill fits.

- ``pick_question(sections, category="D", rng=random.Random(7), due=[...])``:
  a bank question (Q and I sections; J sections are follow-up drills), due ones first.
- ``DrillMatcher(embedder, sections).for_section(q12)`` -> J1: the J drill closest to a
  question by standardised embedding similarity, or None below a minimum.

Progress (who practised what, FSRS schedules, per person) lives in coach.state.
"""

from __future__ import annotations

import random
from typing import Iterable, Sequence

import numpy as np

from .types import Section


def practice_pool(sections: Iterable[Section], category: str | None = None) -> list[Section]:
    """Askable sections (not J drills), optionally of one category letter."""
    letter = (category or "").strip().upper()[:1]
    return [s for s in sections if not _is_drill(s) and (not letter or s.category_letter == letter)]


def pick_question(sections: Sequence[Section], category: str | None = None, rng: random.Random | None = None,
                  due: Sequence[str] = (), exclude: Sequence[str] = ()) -> Section:
    """A due question of the pool if any (earliest first), else a random one; ``exclude`` avoids repeats."""
    pool = practice_pool(sections, category)
    if not pool:
        letters = sorted({s.category_letter for s in sections if s.category_letter and not _is_drill(s)})
        raise ValueError(f"no practice questions in category {category!r}; choose one of {', '.join(letters)}")
    fresh = [s for s in pool if s.id not in set(exclude)] or pool
    by_id = {s.id: s for s in fresh}
    for sid in due:
        if sid in by_id:
            return by_id[sid]
    return (rng or random.Random()).choice(fresh)


def _is_drill(section: Section) -> bool:
    return section.id.rsplit(":", 1)[-1].startswith("J")


class DrillMatcher:
    """The follow-up drill (J section) that fits a question.

    Raw cosines say little here (e5 puts every pair of this bank's sections at
    0.88-0.96), so each drill's cosine to a question is standardised against that
    drill's cosines to every askable question of the bank: a z-score.  On the seed
    the natural pairs score 2.0-4.7 (Q12->J1 4.7, Q17->J6 3.5, Q32->J4 2.9) and the
    first wrong ones 1.8 and below, hence ``min_z=1.9``.
    """

    def __init__(self, embedder, sections: Sequence[Section], min_z: float = 1.9):
        self.embedder, self.min_z = embedder, min_z
        self.drills = [s for s in sections if _is_drill(s)]
        pool = practice_pool(sections)
        self.vectors = embedder.embed([_text(s) for s in self.drills]) if self.drills else None
        if self.vectors is not None and len(pool) >= 2:
            sims = embedder.embed([_text(s) for s in pool]) @ self.vectors.T
            self.mean, self.std = sims.mean(axis=0), np.maximum(sims.std(axis=0), 1e-6)
        else:
            self.vectors = None

    def ranked(self, section: Section) -> list[tuple[Section, float]]:
        """Every drill with its z-score for this question, best first (empty for a drill itself)."""
        if self.vectors is None or _is_drill(section):
            return []
        z = (self.vectors @ self.embedder.embed([_text(section)])[0] - self.mean) / self.std
        order = np.argsort(-z, kind="stable")
        return [(self.drills[i], float(z[i])) for i in order]

    def for_section(self, section: Section) -> Section | None:
        """The best drill if it clears ``min_z``, else None."""
        ranked = self.ranked(section)
        return ranked[0][0] if ranked and ranked[0][1] >= self.min_z else None


def _text(section: Section) -> str:
    return f"{section.title}\n{section.body[:300]}"  # long code sections: the head says what they are


__all__ = ["pick_question", "practice_pool", "DrillMatcher"]
