"""Bounded, thread-safe state of the Slack bot: thread memory, seen events, practice rounds.

Everything the bot remembers is capped, so a busy workspace cannot grow it
without limit:

- ``LRU``: a dict that forgets its least recently used key past ``capacity``.
- ``ThreadMemory``: conversation turns per (channel, thread root), at most
  ``max_threads`` threads (LRU) and ``max_turns`` turns each, each turn cut to
  ``max_chars`` (an extractive answer quotes whole sections; the memory only
  needs enough of it to follow the thread).
- ``SeenEvents``: event ids already accepted; ``add`` is the atomic
  check-and-mark that keeps two concurrent deliveries of one event from both
  being answered.

    >>> m = ThreadMemory(max_threads=2, max_turns=2)
    >>> m.add(("C1", "1.0"), "user", "KV Cache 的原理是什么？"); m.history(("C1", "1.0"))
    [('user', 'KV Cache 的原理是什么？')]
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable


class LRU:
    """``get``/``put``/``pop`` with least-recently-used eviction past ``capacity``."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default=None):
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def pop(self, key: Hashable, default=None):
        with self._lock:
            return self._data.pop(key, default)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class ThreadMemory:
    """(channel, thread root) -> recent (role, text) turns, oldest first."""

    def __init__(self, max_threads: int = 1000, max_turns: int = 12, max_chars: int = 1500):
        if max_turns < 1 or max_chars < 1:
            raise ValueError(f"max_turns ({max_turns}) and max_chars ({max_chars}) must be at least 1")
        self.max_turns, self.max_chars = max_turns, max_chars
        self._threads = LRU(max_threads)
        self._lock = threading.Lock()

    def history(self, key: Hashable) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._threads.get(key, ()))

    def add(self, key: Hashable, role: str, text: str) -> None:
        with self._lock:
            turns = list(self._threads.get(key, ())) + [(role, text[: self.max_chars])]
            self._threads.put(key, tuple(turns[-self.max_turns:]))

    def __len__(self) -> int:
        return len(self._threads)


class SeenEvents:
    """A bounded set of event ids; ``add`` returns False when the id was already there."""

    def __init__(self, capacity: int = 10000):
        self._ids = LRU(capacity)
        self._lock = threading.Lock()

    def add(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids.put(event_id, True)
            return True

    def __len__(self) -> int:
        return len(self._ids)
