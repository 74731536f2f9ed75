"""PostgreSQL adapter of ProgressStore (several replicas; progress survives restarts): ``psycopg`` 3.

One connection per thread, opened on first use and reopened after a failure.
``record`` runs in one transaction: insert the card row if missing, lock it
(``SELECT … FOR UPDATE``), apply the FSRS review, append the review row, so two
replicas grading the same person's same question at once both count.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from .base import ProgressError, ProgressStore, Review, ScheduleEntry
from .schedule import next_entry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS coach_cards (
    person TEXT NOT NULL, section_id TEXT NOT NULL, category TEXT NOT NULL, due DOUBLE PRECISION NOT NULL,
    last_score DOUBLE PRECISION NOT NULL, attempts INTEGER NOT NULL, card TEXT, PRIMARY KEY (person, section_id)
);
CREATE TABLE IF NOT EXISTS coach_reviews (
    id BIGSERIAL PRIMARY KEY, person TEXT NOT NULL, section_id TEXT NOT NULL, category TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL, contradicted INTEGER NOT NULL, rating INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS coach_reviews_person ON coach_reviews (person, at);
"""


class PostgresProgress(ProgressStore):
    def __init__(self, url: str, connect_timeout: int = 3, where: str = ""):
        import psycopg

        self._psycopg, self.url, self.connect_timeout = psycopg, url, connect_timeout
        self.where = where or url
        self._local = threading.local()
        for attempt in range(3):  # two replicas creating the tables at once: one may lose the race
            try:
                with self._tx() as conn:
                    conn.execute(_SCHEMA)
                break
            except ProgressError as err:
                if "already exists" not in str(err) or attempt == 2:
                    raise
                time.sleep(0.1)

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._psycopg.connect(self.url, connect_timeout=self.connect_timeout, autocommit=True,
                                         options="-c statement_timeout=5000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self):
        try:
            conn = self._conn()
            with conn.transaction():
                yield conn
        except self._psycopg.Error as err:
            conn = getattr(self._local, "conn", None)
            if conn is not None and (conn.broken or isinstance(err, self._psycopg.OperationalError)):
                conn.close()
                self._local.conn = None
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ProgressError(f"PostgreSQL at {self.where} failed ({type(err).__name__}: {first}); check that "
                                "it runs and COACH_PROGRESS_URL") from None

    def record(self, person, section, score, contradicted=0, now=None):
        now = time.time() if now is None else now
        if not 0.0 <= score <= 100.0:
            raise ValueError(f"score {score} is outside 0..100")
        with self._tx() as conn:
            conn.execute("INSERT INTO coach_cards VALUES (%s, %s, %s, 0, 0, 0, NULL) ON CONFLICT DO NOTHING",
                         (person, section.id, section.category))
            card, attempts = conn.execute("SELECT card, attempts FROM coach_cards WHERE person = %s AND "
                                          "section_id = %s FOR UPDATE", (person, section.id)).fetchone()
            entry, rev = next_entry(person, section, score, contradicted, now, card, attempts)
            conn.execute("UPDATE coach_cards SET category = %s, due = %s, last_score = %s, attempts = %s, card = %s "
                         "WHERE person = %s AND section_id = %s",
                         (entry.category, entry.due, entry.last_score, entry.attempts, entry.card, person,
                          section.id))
            conn.execute("INSERT INTO coach_reviews (person, section_id, category, score, contradicted, rating, at) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)", (person, rev.section_id, rev.category, rev.score,
                                                                 rev.contradicted, rev.rating, rev.at))
        return entry

    def schedule(self, person):
        with self._tx() as conn:
            rows = conn.execute("SELECT person, section_id, category, due, last_score, attempts, card FROM "
                                "coach_cards WHERE person = %s AND card IS NOT NULL ORDER BY due, section_id",
                                (person,)).fetchall()
        return [ScheduleEntry(*r) for r in rows]

    def reviews(self, person):
        with self._tx() as conn:
            rows = conn.execute("SELECT person, section_id, category, score, contradicted, rating, at FROM "
                                "coach_reviews WHERE person = %s ORDER BY at, id", (person,)).fetchall()
        return [Review(*r) for r in rows]

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
