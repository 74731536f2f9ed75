"""The two interfaces of the shared state, the records they return, and their errors.

``ProgressStore`` has three required methods (``record``, ``schedule``,
``reviews``); ``due``, ``category_stats`` and ``weak`` are built on them.  Every
method takes the person first: a store never answers for "everyone".

``StateStore`` keeps what the Slack bot's replicas share for minutes to hours:

    state.claim("ev:Ev1", ttl=60)   -> True   (first delivery: do the work)
    state.claim("ev:Ev1", ttl=60)   -> False  (a retry or the other replica: drop it)
    state.finish("ev:Ev1", ttl=3600)          (done: remembered past Slack's retries)
    state.release("ev:Ev1")                   (gave up: a retry may do it again)

A claim that is neither finished nor released expires after ``ttl`` seconds, so
the work of a process that died is redone by a later retry; a live worker renews
it (``hold``) while it works, so a slow answer is not redone alongside.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass


class ProgressError(RuntimeError):
    """Progress cannot be read or saved; the message says where and what to do.  Answers still work."""


class StateError(RuntimeError):
    """The shared state store failed (unreachable, refused); the message names it."""


@dataclass(frozen=True)
class ScheduleEntry:
    person: str
    section_id: str
    category: str  # the ``##`` heading
    due: float  # unix time of the next review (FSRS)
    last_score: float
    attempts: int
    card: str  # fsrs.Card as JSON


@dataclass(frozen=True)
class Review:
    person: str
    section_id: str
    category: str
    score: float  # 0-100
    contradicted: int  # key points the answer contradicted
    rating: int  # fsrs.Rating value: 1 Again, 2 Hard, 3 Good
    at: float  # unix time


@dataclass(frozen=True)
class CategoryStat:
    category: str
    attempts: int
    average: float  # mean score 0-100 over every attempt
    last: float  # most recent score


def person_label(person: str) -> str:
    """What the page shows: ``"slack:U1" -> "Slack user U1"``, ``"ana" -> "ana"``."""
    return f"Slack user {person[6:]}" if person.startswith("slack:") else person


def check_person(person: str) -> str:
    if not isinstance(person, str) or not person.strip() or len(person) > 200:
        raise ValueError(f"person must be a non-empty name of at most 200 characters, got {person!r}")
    return person


class ProgressStore(abc.ABC):
    """A person's FSRS cards and reviews."""

    where = ""  # for messages: the file or server

    @abc.abstractmethod
    def record(self, person: str, section, score: float, contradicted: int = 0,
               now: float | None = None) -> ScheduleEntry:
        """One confirmed grade of ``section`` (id and category) -> a review; returns the new schedule entry."""

    @abc.abstractmethod
    def schedule(self, person: str) -> list[ScheduleEntry]:
        """This person's cards, earliest due first."""

    @abc.abstractmethod
    def reviews(self, person: str) -> list[Review]:
        """This person's reviews, oldest first."""

    def due(self, person: str, now: float | None = None) -> list[str]:
        """Section ids due now, longest overdue first."""
        now = time.time() if now is None else now
        return [e.section_id for e in self.schedule(person) if e.due <= now]

    def category_stats(self, person: str) -> list[CategoryStat]:
        return category_stats(self.reviews(person))

    def weak(self, person: str, below: float = 80.0) -> list[ScheduleEntry]:
        """Questions whose last score is under ``below``, weakest first."""
        return sorted((e for e in self.schedule(person) if e.last_score < below),
                      key=lambda e: (e.last_score, e.section_id))


def category_stats(reviews: list[Review]) -> list[CategoryStat]:
    """Attempts, mean and latest score per category, in category order (pure)."""
    by: dict[str, list[Review]] = {}
    for r in reviews:
        by.setdefault(r.category, []).append(r)
    out = []
    for cat in sorted(by):
        rs = by[cat]
        out.append(CategoryStat(cat, len(rs), round(sum(r.score for r in rs) / len(rs), 1),
                                max(rs, key=lambda r: r.at).score))
    return out


class StateStore(abc.ABC):
    """Event claims, thread memory and open practice rounds, shared by the bot's replicas."""

    where = ""

    @abc.abstractmethod
    def claim(self, key: str, ttl: float) -> bool:
        """True for the first caller while the key is unclaimed (or its claim expired)."""

    @abc.abstractmethod
    def finish(self, key: str, ttl: float) -> None:
        """The claimed work is done: keep the key ``ttl`` seconds so later deliveries are dropped."""

    def hold(self, key: str, ttl: float) -> None:
        """A live worker keeps its claim ``ttl`` more seconds (the bot renews it while an answer takes long)."""
        self.finish(key, ttl)

    @abc.abstractmethod
    def release(self, key: str) -> None:
        """Forget a claim (the work was not done; a later delivery may claim it)."""

    @abc.abstractmethod
    def history(self, thread: str) -> list[tuple[str, str]]:
        """The thread's recent (role, text) turns, oldest first."""

    @abc.abstractmethod
    def remember(self, thread: str, role: str, text: str) -> None:
        """Append a turn (bounded: the adapter keeps the last ``max_turns``, each cut to ``max_chars``)."""

    @abc.abstractmethod
    def open_round(self, key: str, section_id: str, ttl: float) -> None:
        """A practice question was posted; its thread's first answer is graded."""

    @abc.abstractmethod
    def take_round(self, key: str) -> str | None:
        """The round's section id, removing the round (atomic: only one caller gets it), or None."""

    def close(self) -> None:
        pass
