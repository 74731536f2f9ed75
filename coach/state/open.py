"""Store URLs -> stores, never stopping the app: a bad or unreachable URL becomes a store that says so.

    open_progress("", data_dir)                        -> SQLiteProgress(data_dir / "progress.sqlite3"), ""
    open_progress("postgresql://coach@db/coach", d)    -> PostgresProgress(...), ""
    open_progress("mysql://x", d)                      -> UnavailableProgress, "COACH_PROGRESS_URL=... progress
                                                          is not saved ..."
    open_state("redis://cache:6379/0", d)              -> FallbackState(RedisState(...)), ""

``setting`` names the variable in every message; passwords in URLs are hidden.
The state store falls back to this process's memory (answers go on; replicas
stop sharing claims and thread memory), and ``FallbackState`` does the same when
the store fails later, mid-run.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .base import ProgressError, ProgressStore, StateError, StateStore
from .memory import MemoryProgress, MemoryState
from .sqlite import SQLiteProgress, SQLiteState

log = logging.getLogger(__name__)

PROGRESS_FILE, STATE_FILE = "progress.sqlite3", "state.sqlite3"


@dataclass(frozen=True)
class StoreProblem:
    setting: str
    message: str


def redact(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", url)


def _sqlite_path(url: str, default: Path) -> Path:
    rest = url[len("sqlite://"):]
    if not rest.strip("/"):
        return default
    return Path(rest)


class UnavailableProgress(ProgressStore):
    """Progress that cannot be saved: every call raises ProgressError with the reason."""

    def __init__(self, message: str):
        self.where, self.message = "nowhere", message

    def _fail(self, *args, **kwargs):
        raise ProgressError(self.message)

    record = schedule = reviews = _fail


def open_progress(url: str, data_dir: Path, setting: str = "COACH_PROGRESS_URL") -> tuple[ProgressStore, str]:
    """(store, problem); ``problem`` is "" when the store works, else the message to show."""
    url = (url or "").strip()
    shown = redact(url)
    try:
        if not url or url.startswith("sqlite:"):
            if url and not url.startswith("sqlite://"):
                raise ValueError("a SQLite URL looks like sqlite:///absolute/path/progress.sqlite3")
            return SQLiteProgress(_sqlite_path(url, Path(data_dir) / PROGRESS_FILE)), ""
        if url.startswith(("postgresql://", "postgres://")):
            from .postgres import PostgresProgress

            return PostgresProgress(url, where=shown), ""
        if url == "memory://":
            return MemoryProgress(), ""
        raise ValueError("use sqlite:///path, postgresql://user@host:port/db (progress must survive restarts, "
                         "so not redis://)")
    except (ProgressError, ValueError, OSError, ImportError) as err:
        message = f"progress is not saved: {setting}={shown!r} cannot be used ({err}); answers still work"
        log.warning(message)
        return UnavailableProgress(message), message


def open_state(url: str, data_dir: Path, max_turns: int = 12, max_chars: int = 1500,
               setting: str = "COACH_STATE_URL") -> tuple[StateStore, str]:
    """(store, problem): the configured store wrapped in FallbackState, or process memory with the reason."""
    url = (url or "").strip()
    shown = redact(url)
    try:
        if not url or url.startswith("sqlite:"):
            if url and not url.startswith("sqlite://"):
                raise ValueError("a SQLite URL looks like sqlite:///absolute/path/state.sqlite3")
            store = SQLiteState(_sqlite_path(url, Path(data_dir) / STATE_FILE), max_turns, max_chars)
        elif url.startswith(("redis://", "rediss://", "unix://")):
            from .redis_state import RedisState

            store = RedisState(url, max_turns, max_chars, where=shown)
        elif url == "memory://":
            store = MemoryState(max_turns, max_chars)
        else:
            raise ValueError("use sqlite:///path or redis://host:port/db")
    except (StateError, ValueError, OSError, ImportError) as err:
        message = (f"{setting}={shown!r} cannot be used ({err}); using this process's memory: replicas do not "
                   "share event claims, thread memory or practice rounds, and a restart forgets them")
        log.warning(message)
        return MemoryState(max_turns, max_chars), message
    return FallbackState(store, MemoryState(max_turns, max_chars)), ""


class FallbackState(StateStore):
    """``primary`` while it works; on a StateError, this process's memory for that call (logged once a minute)."""

    def __init__(self, primary: StateStore, fallback: StateStore):
        self.primary, self.fallback = primary, fallback
        self.where = primary.where
        self.last_error = ""
        self._lock = threading.Lock()

    def _try(self, name, *args):
        try:
            result = getattr(self.primary, name)(*args)
            self.last_error = ""
            return result
        except StateError as err:
            with self._lock:
                if str(err) != self.last_error:
                    log.error("%s; using this process's memory until it is back", err)
                self.last_error = str(err)
            return getattr(self.fallback, name)(*args)

    def claim(self, key, ttl):
        return self._try("claim", key, ttl)

    def finish(self, key, ttl):
        return self._try("finish", key, ttl)

    def release(self, key):
        return self._try("release", key)

    def history(self, thread):
        return self._try("history", thread)

    def remember(self, thread, role, text):
        return self._try("remember", thread, role, text)

    def open_round(self, key, section_id, ttl):
        return self._try("open_round", key, section_id, ttl)

    def take_round(self, key):
        return self._try("take_round", key)

    def close(self):
        self.primary.close()
