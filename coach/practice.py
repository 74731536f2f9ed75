"""Practice mode: which question to ask next, which follow-up drill fits, and progress.

- ``pick_question(sections, category="D", rng=random.Random(7), due=[...])``:
  a bank question (Q and I sections; J sections are follow-up drills), due ones first.
- ``DrillMatcher(embedder, sections).for_section(q12)`` -> J1: the J drill closest to a
  question by standardised embedding similarity, or None below a minimum.
- ``ProgressStore(data_dir / "progress.sqlite3")``: a Leitner schedule.  Box 1 is
  due again at once, box 5 after three weeks: a score >= 80 moves a question up a box,
  < 50 sends it back to box 1, anything between keeps its box.  Per-category
  averages come from every recorded attempt.

The database is opened per call (the app's handlers run on many threads).  A
file that is not a readable SQLite database, or one another process has locked,
raises ProgressError naming the file and what to do; it is never deleted or
overwritten.
"""

from __future__ import annotations

import random
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .types import Section

DB_NAME = "progress.sqlite3"
BOX_INTERVALS_S = (0, 86_400, 3 * 86_400, 7 * 86_400, 21 * 86_400)  # box 1..5
PROMOTE_AT, DEMOTE_BELOW = 80.0, 50.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedule (
    section_id TEXT PRIMARY KEY, category TEXT NOT NULL, box INTEGER NOT NULL,
    due REAL NOT NULL, last_score REAL NOT NULL, attempts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, section_id TEXT NOT NULL, category TEXT NOT NULL,
    score REAL NOT NULL, at REAL NOT NULL
);
"""


class ProgressError(RuntimeError):
    """The progress database cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class CategoryStat:
    category: str  # the ``##`` heading
    attempts: int
    average: float  # mean score 0-100
    last: float  # most recent score


@dataclass(frozen=True)
class ScheduleEntry:
    section_id: str
    box: int
    due: float  # unix time
    last_score: float


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


class ProgressStore:
    """Leitner boxes and scores in one SQLite file."""

    def __init__(self, path: str | Path, timeout: float = 2.0):
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> "ProgressStore":
        return cls(Path(data_dir) / DB_NAME)

    @contextmanager
    def _db(self):
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout)
        except sqlite3.Error as err:
            raise self._error(err) from None
        try:
            with conn:
                yield conn
        except sqlite3.Error as err:
            raise self._error(err) from None
        finally:
            conn.close()

    def _error(self, err: sqlite3.Error) -> ProgressError:
        text = str(err)
        if "locked" in text or "busy" in text:
            return ProgressError(
                f"progress database {self.path} is locked by another process ({text}); close other Interview "
                "Coach windows or processes using it and try again")
        if isinstance(err, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text
                                                       or "corrupt" in text):
            return ProgressError(
                f"progress database {self.path} is not a readable SQLite file ({text}); it was left untouched. "
                f"Move it aside (e.g. rename it to {self.path.name}.bad) to start fresh, or restore a backup; "
                "or set COACH_DATA_DIR to another folder")
        return ProgressError(f"progress database {self.path} failed ({type(err).__name__}: {text}); "
                             "check the file's permissions and free disk space")

    def record(self, section: Section, score: float, now: float | None = None) -> ScheduleEntry:
        """Store an attempt and move the question between boxes."""
        if not 0.0 <= score <= 100.0:
            raise ValueError(f"score {score} is outside 0..100")
        now = time.time() if now is None else now
        with self._db() as db:
            row = db.execute("SELECT box, attempts FROM schedule WHERE section_id = ?", (section.id,)).fetchone()
            box, attempts = row if row else (1, 0)
            box = next_box(box, score) if row else (2 if score >= PROMOTE_AT else 1)
            due = now + BOX_INTERVALS_S[box - 1]
            db.execute(
                "INSERT INTO schedule VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(section_id) DO UPDATE SET "
                "box = excluded.box, due = excluded.due, last_score = excluded.last_score, attempts = excluded.attempts",
                (section.id, section.category, box, due, score, attempts + 1))
            db.execute("INSERT INTO attempts (section_id, category, score, at) VALUES (?, ?, ?, ?)",
                       (section.id, section.category, score, now))
        return ScheduleEntry(section.id, box, due, score)

    def due(self, now: float | None = None) -> list[str]:
        """Section ids due for review: lowest box first, then the longest overdue."""
        now = time.time() if now is None else now
        with self._db() as db:
            rows = db.execute("SELECT section_id FROM schedule WHERE due <= ? ORDER BY box, due, section_id",
                              (now,)).fetchall()
        return [r[0] for r in rows]

    def schedule(self) -> list[ScheduleEntry]:
        with self._db() as db:
            rows = db.execute("SELECT section_id, box, due, last_score FROM schedule ORDER BY due").fetchall()
        return [ScheduleEntry(*r) for r in rows]

    def category_stats(self) -> list[CategoryStat]:
        """Mean and most recent score per category, in category order."""
        with self._db() as db:
            rows = db.execute(
                "SELECT category, COUNT(*), AVG(score), "
                "(SELECT score FROM attempts b WHERE b.category = a.category ORDER BY at DESC, id DESC LIMIT 1) "
                "FROM attempts a GROUP BY category ORDER BY category").fetchall()
        return [CategoryStat(c, n, round(avg, 1), last) for c, n, avg, last in rows]


def next_box(box: int, score: float) -> int:
    """Leitner move: ``next_box(2, 90) -> 3``, ``next_box(4, 30) -> 1``, ``next_box(3, 60) -> 3``."""
    if score >= PROMOTE_AT:
        return min(box + 1, len(BOX_INTERVALS_S))
    if score < DEMOTE_BELOW:
        return 1
    return box


__all__ = ["pick_question", "practice_pool", "DrillMatcher", "ProgressStore", "ProgressError", "CategoryStat",
           "ScheduleEntry", "next_box", "DB_NAME"]
