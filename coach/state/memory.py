"""Deterministic in-memory fakes of both interfaces (tests; and the bot's fallback state).

``clock`` is injectable: ``MemoryState(clock=lambda: t[0])`` lets a test expire a
claim by moving ``t[0]`` forward instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .base import ProgressStore, Review, ScheduleEntry, StateStore
from .schedule import next_entry


class MemoryProgress(ProgressStore):
    where = "memory (not saved across restarts)"

    def __init__(self):
        self._cards: dict[tuple[str, str], ScheduleEntry] = {}
        self._reviews: list[Review] = []
        self._lock = threading.Lock()

    def record(self, person, section, score, contradicted=0, now=None):
        now = time.time() if now is None else now
        with self._lock:
            old = self._cards.get((person, section.id))
            entry, rev = next_entry(person, section, score, contradicted, now, old.card if old else None,
                                    old.attempts if old else 0)
            self._cards[(person, section.id)] = entry
            self._reviews.append(rev)
        return entry

    def schedule(self, person):
        with self._lock:
            rows = [e for (p, _), e in self._cards.items() if p == person]
        return sorted(rows, key=lambda e: (e.due, e.section_id))

    def reviews(self, person):
        with self._lock:
            return [r for r in self._reviews if r.person == person]


class MemoryState(StateStore):
    where = "process memory"

    def __init__(self, max_turns: int = 12, max_chars: int = 1500, max_threads: int = 1000,
                 clock: Callable[[], float] = time.monotonic):
        if max_turns < 1 or max_chars < 1:
            raise ValueError(f"max_turns ({max_turns}) and max_chars ({max_chars}) must be at least 1")
        self.max_turns, self.max_chars, self.max_threads, self.clock = max_turns, max_chars, max_threads, clock
        self._claims: dict[str, float] = {}  # key -> expiry
        self._threads: dict[str, list[tuple[str, str]]] = {}  # insertion order = LRU order
        self._rounds: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def claim(self, key, ttl):
        with self._lock:
            now = self.clock()
            if self._claims.get(key, -1.0) > now:
                return False
            self._claims[key] = now + ttl
            if len(self._claims) > 50_000:  # bounded: drop what has expired
                self._claims = {k: t for k, t in self._claims.items() if t > now}
            return True

    def finish(self, key, ttl):
        with self._lock:
            self._claims[key] = self.clock() + ttl

    def release(self, key):
        with self._lock:
            self._claims.pop(key, None)

    def history(self, thread):
        with self._lock:
            return list(self._threads.get(thread, ()))

    def remember(self, thread, role, text):
        with self._lock:
            turns = self._threads.pop(thread, []) + [(role, text[: self.max_chars])]
            self._threads[thread] = turns[-self.max_turns:]
            while len(self._threads) > self.max_threads:
                self._threads.pop(next(iter(self._threads)))

    def open_round(self, key, section_id, ttl):
        with self._lock:
            self._rounds[key] = (section_id, self.clock() + ttl)

    def take_round(self, key):
        with self._lock:
            section_id, expires = self._rounds.pop(key, (None, 0.0))
            return section_id if section_id is not None and expires > self.clock() else None
