"""coach.state: both interfaces' contracts over the fake and every real adapter (SQLite, Redis, PostgreSQL),
the FSRS rating and the Leitner migration, and what happens with bad, locked or unreachable stores."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fsrs import Rating

from coach.bank.corpus import parse_bank
from coach.state import (MemoryProgress, MemoryState, ProgressError, SQLiteProgress, SQLiteState, open_progress,
                         open_state, redact)
from coach.state.schedule import BOX_INTERVALS_S, leitner_history, migrated_card, rating_for, replay, review

BANK = """\
## A. 架构
**1. KV Cache 原理？**
推理时缓存历史 K/V，减少重复计算。

**2. 残差连接的作用？**
缓解梯度消失，稳定深层训练。

## B. 训练
**3. 为什么要 warmup？**
初期梯度不稳定，学习率从小升高。
"""
SECTIONS = parse_bank(BANK, "bank.md")
Q1, Q2, Q3 = SECTIONS
DAY = 86_400.0
T0 = 1_700_000_000.0
REAL = pytest.mark.integration


# -- adapters ------------------------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=REAL)])
def progress(request, tmp_path):
    if request.param == "memory":
        return MemoryProgress()
    if request.param == "sqlite":
        return SQLiteProgress(tmp_path / "progress.sqlite3")
    from coach.state.postgres import PostgresProgress

    return PostgresProgress(request.getfixturevalue("postgres_server").url)


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=REAL)])
def state_pair(request, tmp_path):
    """Two handles on one store, as two processes have (memory: one object, it has no second handle)."""
    if request.param == "memory":
        s = MemoryState(max_turns=3, max_chars=10)
        return s, s
    if request.param == "sqlite":
        return (SQLiteState(tmp_path / "state.sqlite3", max_turns=3, max_chars=10),
                SQLiteState(tmp_path / "state.sqlite3", max_turns=3, max_chars=10))
    from coach.state.redis_state import RedisState

    url, prefix = request.getfixturevalue("redis_server").url, f"t{uuid.uuid4().hex[:8]}:"
    return (RedisState(url, max_turns=3, max_chars=10, prefix=prefix),
            RedisState(url, max_turns=3, max_chars=10, prefix=prefix))


def who() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"  # PostgreSQL is shared by the session: a fresh person per test


# -- progress contract ---------------------------------------------------------------------------------------
def test_progress_belongs_to_a_person(progress):
    ana, bo = who(), who()
    progress.record(ana, Q1, 90.0, now=T0)
    progress.record(ana, Q2, 20.0, now=T0)
    progress.record(bo, Q3, 95.0, now=T0)
    assert {e.section_id for e in progress.schedule(ana)} == {"Q1", "Q2"}
    assert [e.section_id for e in progress.schedule(bo)] == ["Q3"]
    assert progress.schedule(who()) == [] and progress.reviews(who()) == []
    assert [r.section_id for r in progress.reviews(ana)] == ["Q1", "Q2"]
    stats = {s.category: s for s in progress.category_stats(ana)}
    assert set(stats) == {"A. 架构"} and (stats["A. 架构"].attempts, stats["A. 架构"].average) == (2, 55.0)


def test_weak_answers_come_back_sooner_and_a_contradiction_counts_as_again(progress):
    p = who()
    good = progress.record(p, Q1, 90.0, now=T0)
    weak = progress.record(p, Q2, 20.0, now=T0)
    wrong = progress.record(p, Q3, 95.0, contradicted=1, now=T0)
    assert weak.due < good.due and wrong.due == weak.due
    assert progress.due(p, now=T0 + 1) == [] or set(progress.due(p, now=T0 + 1)) <= {"Q2", "Q3"}
    assert set(progress.due(p, now=weak.due)) == {"Q2", "Q3"}
    assert [r.rating for r in progress.reviews(p)] == [Rating.Good, Rating.Again, Rating.Again]
    assert [e.section_id for e in progress.weak(p)] == ["Q2"]  # Q3 scored 95 (but was contradicted)
    again = progress.record(p, Q1, 95.0, now=good.due)
    assert again.attempts == 2 and again.due - good.due > DAY, "a second good review: days, not minutes"


def test_concurrent_writes_all_count(progress):
    p = who()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: progress.record(p, SECTIONS[i % 3], float(i % 101), now=T0 + i), range(240)))
    assert sum(e.attempts for e in progress.schedule(p)) == 240
    assert len(progress.reviews(p)) == 240


def test_bad_values_are_refused(progress):
    with pytest.raises(ValueError, match="outside 0..100"):
        progress.record(who(), Q1, 130.0)
    with pytest.raises(ValueError, match="person"):
        progress.record("", Q1, 50.0)


# -- state contract ------------------------------------------------------------------------------------------
def test_a_claim_is_won_once_expires_and_finish_outlives_it(state_pair):
    a, b = state_pair
    key = f"ev:{uuid.uuid4().hex}"
    assert a.claim(key, ttl=0.5) and not b.claim(key, ttl=0.5) and not a.claim(key, ttl=0.5)
    time.sleep(0.7)
    assert b.claim(key, ttl=0.5), "the claim of a worker that died expires"
    b.finish(key, ttl=60)
    time.sleep(0.7)
    assert not a.claim(key, ttl=0.5), "a finished event stays remembered"
    b.release(key)
    assert a.claim(key, ttl=0.5)


def test_concurrent_claims_have_one_winner(state_pair):
    a, b = state_pair
    key = f"ev:{uuid.uuid4().hex}"
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda i: (a if i % 2 else b).claim(key, 30), range(16)))
    assert wins.count(True) == 1


def test_thread_memory_is_shared_and_bounded(state_pair):
    a, b = state_pair
    thread = f"C1:{uuid.uuid4().hex}"
    for i in range(5):
        a.remember(thread, "user", f"turn {i} " + "x" * 20)
    assert b.history(thread) == [("user", "turn 2 xxx"), ("user", "turn 3 xxx"), ("user", "turn 4 xxx")]
    assert b.history(thread + "other") == []


def test_a_round_is_taken_by_one_caller_and_expires(state_pair):
    a, b = state_pair
    key = f"C1:{uuid.uuid4().hex}"
    a.open_round(key, "Q7", ttl=30)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: (a if i % 2 else b).take_round(key), range(8)))
    assert got.count("Q7") == 1 and got.count(None) == 7
    a.open_round(key, "Q8", ttl=0.3)
    time.sleep(0.5)
    assert b.take_round(key) is None, "a round that ended is not graded"


# -- FSRS ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("score, contradicted, rating", [
    (100, 0, Rating.Good), (80, 0, Rating.Good), (79.9, 0, Rating.Hard), (50, 0, Rating.Hard),
    (49.9, 0, Rating.Again), (0, 0, Rating.Again), (100, 1, Rating.Again), (60, 2, Rating.Again),
])
def test_rating_for(score, contradicted, rating):
    assert rating_for(score, contradicted) == rating


def test_rating_refuses_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        rating_for(101)
    with pytest.raises(ValueError, match="contradicted"):
        rating_for(50, -1)


def test_review_matches_the_fsrs_scheduler_oracle():
    from datetime import datetime, timezone

    from fsrs import Card, Scheduler

    when = datetime.fromtimestamp(T0, tz=timezone.utc)
    ref = Scheduler(enable_fuzzing=False)
    ref_card, _ = ref.review_card(Card(card_id=1, due=when), Rating.Good, review_datetime=when)
    ref_card, _ = ref.review_card(ref_card, Rating.Hard, review_datetime=ref_card.due)
    card, due = review(None, Rating.Good, T0)
    assert abs(due - T0 - 600) < 1, "fsrs's second learning step: 10 minutes"
    card, due = review(card, Rating.Hard, due)
    assert abs(due - ref_card.due.timestamp()) < 1e-6
    assert replay([(T0, Rating.Good), (T0 + 600, Rating.Hard)])[1] == due


def test_leitner_boxes_become_review_histories():
    assert leitner_history(1, T0, 30.0) == [(T0, Rating.Again)]
    assert leitner_history(1, T0, 60.0) == [(T0, Rating.Hard)]
    hist = leitner_history(3, T0 + BOX_INTERVALS_S[2], 90.0)
    assert [r for _, r in hist] == [Rating.Good, Rating.Good] and hist[-1][0] == T0
    assert hist[0][0] == T0 - BOX_INTERVALS_S[1]
    with pytest.raises(ValueError, match="outside 1..5"):
        leitner_history(6, T0, 50)
    from fsrs import Card

    high, low = Card.from_json(migrated_card(5, T0, 90)), Card.from_json(migrated_card(2, T0, 90))
    assert high.stability > low.stability, "a higher box means a better-known card"
    assert high.due.timestamp() == T0, "the old due date is kept"


def _legacy_file(path):
    """A progress file as the single-person Leitner version wrote it."""
    db = sqlite3.connect(path)
    db.executescript("""
    CREATE TABLE schedule (section_id TEXT PRIMARY KEY, category TEXT NOT NULL, box INTEGER NOT NULL,
        due REAL NOT NULL, last_score REAL NOT NULL, attempts INTEGER NOT NULL);
    CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, section_id TEXT NOT NULL, category TEXT NOT NULL,
        score REAL NOT NULL, at REAL NOT NULL);""")
    db.executemany("INSERT INTO schedule VALUES (?, ?, ?, ?, ?, ?)", [
        ("Q1", "A. 架构", 3, T0 + 3 * DAY, 90.0, 2), ("Q2", "A. 架构", 1, T0, 20.0, 1),
        ("Q3", "B. 训练", 2, T0 + DAY, 85.0, 1)])
    db.executemany("INSERT INTO attempts (section_id, category, score, at) VALUES (?, ?, ?, ?)", [
        ("Q1", "A. 架构", 85.0, T0 - DAY), ("Q1", "A. 架构", 90.0, T0), ("Q2", "A. 架构", 20.0, T0),
        ("Q3", "B. 训练", 85.0, T0)])
    db.commit()
    db.close()


def test_the_old_progress_file_migrates_into_local_losing_nothing(tmp_path):
    path = tmp_path / "progress.sqlite3"
    _legacy_file(path)
    store = SQLiteProgress(path)
    assert store.migrated == 3
    cards = {e.section_id: e for e in store.schedule("local")}
    assert {k: (e.due, e.last_score, e.attempts, e.category) for k, e in cards.items()} == {
        "Q1": (T0 + 3 * DAY, 90.0, 2, "A. 架构"), "Q2": (T0, 20.0, 1, "A. 架构"), "Q3": (T0 + DAY, 85.0, 1, "B. 训练")}
    assert [(r.section_id, r.score, r.at) for r in store.reviews("local")] == [
        ("Q1", 85.0, T0 - DAY), ("Q1", 90.0, T0), ("Q2", 20.0, T0), ("Q3", 85.0, T0)]
    assert store.due("local", now=T0 + 1) == ["Q2"]
    assert store.schedule("someone-else") == []
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM leitner_schedule").fetchone()[0] == 3, "the old tables are kept"
    assert db.execute("SELECT COUNT(*) FROM leitner_attempts").fetchone()[0] == 4
    db.close()
    again = SQLiteProgress(path)  # a second open migrates nothing twice
    assert again.migrated == 0 and len(again.reviews("local")) == 4
    nxt = again.record("local", Q1, 90.0, now=T0 + 3 * DAY)
    assert nxt.attempts == 3 and nxt.due > T0 + 3 * DAY + 3 * DAY, "the migrated card goes on from box 3"


# -- SQLite: WAL, corrupt and locked files -------------------------------------------------------------------
def test_sqlite_runs_in_wal_mode_and_survives_restarts(tmp_path):
    path = tmp_path / "progress.sqlite3"
    SQLiteProgress(path).record("ana", Q1, 90.0, now=T0)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [e.section_id for e in SQLiteProgress(path).schedule("ana")] == ["Q1"]


def test_corrupt_database_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "progress.sqlite3"
    garbage = b"this is not sqlite \x00\xff\xfe" * 200
    path.write_bytes(garbage)
    with pytest.raises(ProgressError) as info:
        SQLiteProgress(path)
    message = str(info.value)
    assert str(path) in message and "untouched" in message and "rename" in message
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.sqlite3"]  # no journal, no replacement


def test_database_corrupted_after_opening_is_reported_on_use(tmp_path):
    path = tmp_path / "progress.sqlite3"
    store = SQLiteProgress(path)
    for extra in tmp_path.glob("progress.sqlite3-*"):
        extra.unlink()
    path.write_bytes(b"\x00garbage" * 600)
    before = path.read_bytes()
    with pytest.raises(ProgressError, match="not a readable SQLite file"):
        store.record("ana", Q1, 90.0)
    with pytest.raises(ProgressError, match="not a readable SQLite file"):
        store.category_stats("ana")
    assert path.read_bytes() == before


def test_locked_database_gets_a_clear_message(tmp_path):
    path = tmp_path / "progress.sqlite3"
    store = SQLiteProgress(path, timeout=0.2)
    store.record("ana", Q1, 90.0, now=T0)
    other = sqlite3.connect(path)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(ProgressError) as info:
            store.record("ana", Q2, 30.0, now=T0 + 1)
        assert "locked" in str(info.value) and str(path) in str(info.value) and "close other" in str(info.value)
    finally:
        other.rollback()
        other.close()
    assert [e.section_id for e in store.schedule("ana")] == ["Q1"]  # nothing half-written, nothing wiped
    store.record("ana", Q2, 30.0, now=T0 + 1)  # works again once the lock is gone
    assert len(store.reviews("ana")) == 2


def test_corrupt_state_file_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"junk" * 500)
    store, problem = open_state(f"sqlite://{path}", tmp_path)
    assert isinstance(store, MemoryState) and str(path) in problem and "COACH_STATE_URL" in problem
    assert path.read_bytes() == b"junk" * 500
    assert store.claim("k", 5) and not store.claim("k", 5), "the fallback still dedupes in this process"


# -- settings URLs -------------------------------------------------------------------------------------------
def test_default_urls_are_sqlite_files_in_the_data_dir(tmp_path):
    progress, problem = open_progress("", tmp_path)
    assert problem == "" and isinstance(progress, SQLiteProgress) and progress.path == tmp_path / "progress.sqlite3"
    state, problem = open_state("", tmp_path)
    assert problem == "" and state.primary.path == tmp_path / "state.sqlite3"
    progress, _ = open_progress(f"sqlite://{tmp_path}/elsewhere.db", tmp_path)
    assert progress.path == tmp_path / "elsewhere.db"


@pytest.mark.parametrize("url, words", [
    ("mysql://u:hunter2@db/x", ["COACH_PROGRESS_URL", "postgresql://", "not saved"]),
    ("redis://127.0.0.1:6379/0", ["COACH_PROGRESS_URL", "not redis"]),
    ("sqlite:relative", ["COACH_PROGRESS_URL", "sqlite:///"]),
    ("postgresql://u:hunter2@127.0.0.1:1/x", ["COACH_PROGRESS_URL", "PostgreSQL at", "not saved"]),
])
def test_bad_progress_urls_say_which_setting_and_keep_going(tmp_path, url, words):
    store, problem = open_progress(url, tmp_path)
    assert all(w in problem for w in words), problem
    assert "hunter2" not in problem, "a password never reaches a message"
    with pytest.raises(ProgressError, match="not saved"):
        store.record("ana", Q1, 50.0)
    with pytest.raises(ProgressError, match="COACH_PROGRESS_URL"):
        store.schedule("ana")


def test_unreachable_redis_falls_back_to_memory(tmp_path):
    store, problem = open_state("redis://:hunter2@127.0.0.1:1/0", tmp_path)
    assert "COACH_STATE_URL" in problem and "memory" in problem and "hunter2" not in problem
    assert store.claim("a", 5) and not store.claim("a", 5)
    assert redact("postgresql://coach:s3cret@h:5432/db") == "postgresql://coach:***@h:5432/db"


@REAL
def test_redis_killed_mid_run_falls_back_and_comes_back(tmp_path):
    from tests.servers import start_redis

    server = start_redis(tmp_path / "redis")
    try:
        store, problem = open_state(server.url, tmp_path)
        assert problem == "" and store.claim("ev:1", 30)
        server.kill()
        assert store.claim("ev:2", 30) and not store.claim("ev:2", 30), "this process's memory dedupes meanwhile"
        assert "Redis at" in store.last_error and server.url in store.last_error
    finally:
        server.stop()


@REAL
def test_postgres_killed_mid_run_says_progress_is_not_saved(tmp_path):
    from coach.state.postgres import PostgresProgress
    from tests.servers import start_postgres

    server = start_postgres(tmp_path / "pg")
    try:
        store = PostgresProgress(server.url)
        store.record("ana", Q1, 90.0, now=T0)
        server.kill()
        with pytest.raises(ProgressError, match="PostgreSQL at .*COACH_PROGRESS_URL"):
            store.record("ana", Q2, 50.0, now=T0)
    finally:
        server.stop()
