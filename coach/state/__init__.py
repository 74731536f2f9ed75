"""Shared state: what several app and bot processes must agree on.

Owns two small interfaces and their adapters:

- ``ProgressStore`` (base.py): a person's practice progress, one FSRS card per
  (person, question) plus every review.  Adapters: ``MemoryProgress`` (fake),
  ``SQLiteProgress`` (WAL, one machine, the default), ``PostgresProgress``
  (several replicas).  ``record(person, section, score, contradicted)`` is the
  one write; a grade's confirmed result arrives as exactly those four values.
- ``StateStore`` (base.py): short-lived shared state of the Slack bot: event
  claims (``claim``/``finish``/``release``, expiring), thread memory, open
  practice rounds.  Adapters: ``MemoryState`` (fake, also the fallback when the
  configured store cannot be reached), ``SQLiteState``, ``RedisState``.
- schedule.py: the FSRS scheduling (pure; the ``fsrs`` package) and the
  Leitner -> FSRS migration of the old single-person progress file.
- open.py: settings URLs (``sqlite:///…``, ``redis://…``, ``postgresql://…``)
  -> stores; a bad or unreachable URL gives a store that says so instead of
  stopping the app.

May import: the standard library, ``fsrs``, ``coach.types``; ``redis`` and
``psycopg`` only inside their adapters.  Nothing here reads the environment.
"""

from .base import (CategoryStat, ProgressError, ProgressStore, Review, ScheduleEntry, StateError, StateStore,
                   person_label)
from .memory import MemoryProgress, MemoryState
from .open import StoreProblem, open_progress, open_state, redact
from .sqlite import SQLiteProgress, SQLiteState

__all__ = ["CategoryStat", "ProgressError", "ProgressStore", "Review", "ScheduleEntry", "StateError", "StateStore",
           "MemoryProgress", "MemoryState", "SQLiteProgress", "SQLiteState", "open_progress", "open_state",
           "StoreProblem", "redact", "person_label"]
