"""SQLite adapters (one machine, the default): progress and the bot's shared state, WAL mode.

Each call opens its own connection (the app's handlers and the bot's workers run
on many threads) and writes in ``BEGIN IMMEDIATE`` transactions, so concurrent
writers never fail on a lock upgrade.  Writers of one process also queue on a
lock per file: SQLite's busy handler polls with growing sleeps, and under 8
busy threads one writer could starve past the timeout (seen: 1 of 3,000 writes);
the busy timeout is then left to other processes.  WAL lets readers go on while
one process writes.

A file that is not a readable SQLite database, or one locked by another
process, raises ProgressError / StateError naming the file and what to do; it
is never deleted, replaced or "repaired".

The old single-person progress file (Leitner tables ``schedule`` and
``attempts``) migrates on first open into the person ``"local"``: every box
becomes an FSRS card (schedule.migrated_card, its due date kept) and every
attempt a review; the old tables are kept, renamed ``leitner_schedule`` and
``leitner_attempts``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .base import ProgressError, ProgressStore, Review, ScheduleEntry, StateError, StateStore
from .schedule import migrated_card, next_entry, rating_for

LEGACY_PERSON = "local"
_PROGRESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    person TEXT NOT NULL, section_id TEXT NOT NULL, category TEXT NOT NULL, due REAL NOT NULL,
    last_score REAL NOT NULL, attempts INTEGER NOT NULL, card TEXT NOT NULL, PRIMARY KEY (person, section_id)
);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, person TEXT NOT NULL, section_id TEXT NOT NULL, category TEXT NOT NULL,
    score REAL NOT NULL, contradicted INTEGER NOT NULL, rating INTEGER NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_person ON reviews (person, at);
"""
_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS turns (id INTEGER PRIMARY KEY AUTOINCREMENT, thread TEXT NOT NULL, role TEXT NOT NULL,
                                  text TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS turns_thread ON turns (thread, id);
CREATE TABLE IF NOT EXISTS rounds (key TEXT PRIMARY KEY, section_id TEXT NOT NULL, expires REAL NOT NULL);
"""


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(path.resolve()), threading.Lock())


class _SQLite:
    error_type: type = ProgressError
    what = "progress database"

    def __init__(self, path: str | Path, timeout: float = 5.0):
        self.path = Path(path)
        self.where = str(self.path)
        self.timeout = timeout
        self._write_lock = _write_lock(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise self.error_type(f"{self.what} {self.path}: cannot create its folder ({err.strerror or err}); "
                                  "set COACH_DATA_DIR or the store URL to a writable place") from None

    @contextmanager
    def _db(self, write: bool = False):
        if not write:
            with self._connection(False) as conn:
                yield conn
            return
        if not self._write_lock.acquire(timeout=max(self.timeout, 0.01) * 4):
            raise self.error_type(f"{self.what} {self.path} is busy: writes of this process waited "
                                  f"{max(self.timeout, 0.01) * 4:.0f} s; try again")
        try:
            with self._connection(True) as conn:
                yield conn
        finally:
            self._write_lock.release()

    @contextmanager
    def _connection(self, write: bool):
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as err:
            raise self._error(err) from None
        try:
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL's usual setting: safe from crashes, fsync per checkpoint
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._error(err) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _setup(self, schema: str) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as err:
            raise self._error(err) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)
        except sqlite3.Error as err:
            raise self._error(err) from None
        finally:
            conn.close()

    def _keep_open(self) -> None:
        """One idle connection for the store's lifetime: closing the file's last connection checkpoints and
        removes the WAL, which made every write ~1 ms slower (measured: bench/progress_writes.py)."""
        try:
            self._keeper = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
            self._keeper.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # attach to the WAL
        except sqlite3.Error:
            self._keeper = None

    def _error(self, err: sqlite3.Error) -> RuntimeError:
        text = str(err)
        if "locked" in text or "busy" in text:
            return self.error_type(
                f"{self.what} {self.path} is locked by another process ({text}); close other Interview "
                "Coach windows or processes using it and try again")
        if isinstance(err, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text
                                                       or "corrupt" in text):
            return self.error_type(
                f"{self.what} {self.path} is not a readable SQLite file ({text}); it was left untouched. "
                f"Move it aside (e.g. rename it to {self.path.name}.bad) to start fresh, or restore a backup; "
                "or set COACH_DATA_DIR to another folder")
        return self.error_type(f"{self.what} {self.path} failed ({type(err).__name__}: {text}); "
                               "check the file's permissions and free disk space")


class SQLiteProgress(_SQLite, ProgressStore):
    """FSRS cards and reviews per person in one SQLite file."""

    def __init__(self, path: str | Path, timeout: float = 5.0):
        super().__init__(path, timeout)
        self._setup(_PROGRESS_SCHEMA)
        self._keep_open()
        self.migrated = self._migrate_leitner()

    def _migrate_leitner(self) -> int:
        """Move the old Leitner tables into person "local" (once); the number of questions moved."""
        with self._db(write=True) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "schedule" not in tables:
                return 0
            rows = db.execute("SELECT section_id, category, box, due, last_score, attempts FROM schedule").fetchall()
            for sid, cat, box, due, last, attempts in rows:
                db.execute("INSERT OR REPLACE INTO cards VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (LEGACY_PERSON, sid, cat, due, last, attempts, migrated_card(int(box), due, last)))
            if "attempts" in tables:
                for sid, cat, score, at in db.execute(
                        "SELECT section_id, category, score, at FROM attempts ORDER BY at, id").fetchall():
                    db.execute("INSERT INTO reviews (person, section_id, category, score, contradicted, rating, at) "
                               "VALUES (?, ?, ?, ?, 0, ?, ?)", (LEGACY_PERSON, sid, cat, score,
                                                                int(rating_for(score)), at))
                db.execute("ALTER TABLE attempts RENAME TO leitner_attempts")
            db.execute("ALTER TABLE schedule RENAME TO leitner_schedule")
        return len(rows)

    def record(self, person, section, score, contradicted=0, now=None):
        now = time.time() if now is None else now
        if not 0.0 <= score <= 100.0:
            raise ValueError(f"score {score} is outside 0..100")
        with self._db(write=True) as db:
            row = db.execute("SELECT card, attempts FROM cards WHERE person = ? AND section_id = ?",
                             (person, section.id)).fetchone()
            entry, rev = next_entry(person, section, score, contradicted, now, *(row or (None, 0)))
            db.execute("INSERT OR REPLACE INTO cards VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (person, entry.section_id, entry.category, entry.due, entry.last_score, entry.attempts,
                        entry.card))
            db.execute("INSERT INTO reviews (person, section_id, category, score, contradicted, rating, at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (person, rev.section_id, rev.category, rev.score,
                                                        rev.contradicted, rev.rating, rev.at))
        return entry

    def schedule(self, person):
        with self._db() as db:
            rows = db.execute("SELECT person, section_id, category, due, last_score, attempts, card FROM cards "
                              "WHERE person = ? ORDER BY due, section_id", (person,)).fetchall()
        return [ScheduleEntry(*r) for r in rows]

    def reviews(self, person):
        with self._db() as db:
            rows = db.execute("SELECT person, section_id, category, score, contradicted, rating, at FROM reviews "
                              "WHERE person = ? ORDER BY at, id", (person,)).fetchall()
        return [Review(*r) for r in rows]


class SQLiteState(_SQLite, StateStore):
    """Claims, thread memory and rounds in one SQLite file: shared by processes on one machine."""

    error_type = StateError
    what = "state database"

    def __init__(self, path: str | Path, max_turns: int = 12, max_chars: int = 1500, timeout: float = 5.0,
                 clock=time.time):
        super().__init__(path, timeout)
        self.max_turns, self.max_chars, self.clock = max_turns, max_chars, clock
        self._setup(_STATE_SCHEMA)
        self._keep_open()

    def claim(self, key, ttl):
        now = self.clock()
        with self._db(write=True) as db:
            row = db.execute("SELECT expires FROM claims WHERE key = ?", (key,)).fetchone()
            if row and row[0] > now:
                return False
            db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?)", (key, now + ttl))
            if not row:  # now and then, forget what has expired
                db.execute("DELETE FROM claims WHERE expires < ? AND rowid % 100 = 0", (now,))
            return True

    def finish(self, key, ttl):
        with self._db(write=True) as db:
            db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?)", (key, self.clock() + ttl))

    def release(self, key):
        with self._db(write=True) as db:
            db.execute("DELETE FROM claims WHERE key = ?", (key,))

    def history(self, thread):
        with self._db() as db:
            rows = db.execute("SELECT role, text FROM turns WHERE thread = ? ORDER BY id DESC LIMIT ?",
                              (thread, self.max_turns)).fetchall()
        return [tuple(r) for r in reversed(rows)]

    def remember(self, thread, role, text):
        with self._db(write=True) as db:
            db.execute("INSERT INTO turns (thread, role, text, at) VALUES (?, ?, ?, ?)",
                       (thread, role, text[: self.max_chars], self.clock()))
            db.execute("DELETE FROM turns WHERE thread = ? AND id NOT IN "
                       "(SELECT id FROM turns WHERE thread = ? ORDER BY id DESC LIMIT ?)",
                       (thread, thread, self.max_turns))

    def open_round(self, key, section_id, ttl):
        with self._db(write=True) as db:
            db.execute("INSERT OR REPLACE INTO rounds VALUES (?, ?, ?)", (key, section_id, self.clock() + ttl))

    def take_round(self, key):
        with self._db(write=True) as db:
            row = db.execute("SELECT section_id, expires FROM rounds WHERE key = ?", (key,)).fetchone()
            db.execute("DELETE FROM rounds WHERE key = ?", (key,))
        return row[0] if row and row[1] > self.clock() else None
