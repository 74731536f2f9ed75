"""coach.bank.corpus: the seed bank's shape, prefixed ids for extra banks, and errors that name file and line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from coach.bank.corpus import PRIMARY_BANK, CorpusError, corpus_fingerprint, load_corpus, parse_bank

SEED_DIR = Path(__file__).resolve().parents[1] / "corpus"

SMALL_BANK = """\
# 小题库

## A. 推理
**1. KV Cache 原理？**
缓存历史 token 的 Key 和 Value。

**2. 为什么要 warmup？**
学习率从小逐步升高，避免训练初期发散。

## I. 代码
**1) 打印**

```python
print("hi")
```

## J. 追问
- **Q：LoRA 目标层怎么选？**
   A：优先 q_proj 和 v_proj。
"""


@pytest.fixture(scope="module")
def seed() -> dict:
    if not (SEED_DIR / PRIMARY_BANK).is_file():
        pytest.fail(f"the seed bank {SEED_DIR / PRIMARY_BANK} is missing; these tests check its shape")
    return {s.id: s for s in load_corpus(SEED_DIR)}


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# -- the seed ---------------------------------------------------------------------------------------
def test_seed_has_78_questions_6_snippets_6_drills(seed):
    assert Counter(sid[0] for sid in seed) == {"Q": 78, "I": 6, "J": 6}
    assert set(seed) == {f"Q{i}" for i in range(1, 79)} | {f"I{i}" for i in range(1, 7)} | {f"J{i}" for i in range(1, 7)}


def test_seed_titles_and_categories(seed):
    q13 = seed["Q13"]
    assert q13.title == "KV Cache 原理？"
    assert q13.category == "A. 架构基础（Transformer）"
    assert q13.category_letter == "A"
    assert q13.body.startswith("推理时缓存历史 K/V")
    assert q13.source == PRIMARY_BANK
    assert q13.line == 45
    assert seed["Q53"].title == "什么是 RAG？" and seed["Q53"].category_letter == "E"
    assert seed["I1"].category == "I. 关键代码片段（最小可背）"
    assert seed["J2"].title == "RoPE 与 ALiBi 何时选？"
    assert seed["J2"].category_letter == "J"
    assert all(s.title and s.body and s.category for s in seed.values())


def test_seed_snippet_keeps_its_code_block_intact(seed):
    body = seed["I1"].body
    assert body.startswith("```python\nimport torch, math\n\ndef attention(Q, K, V, mask=None):\n")
    assert body.endswith("    return attn @ V  # [B,h,L,d]\n```")
    assert body.count("```") == 2
    assert '        scores = scores.masked_fill(mask == 0, float("-inf"))\n' in body  # indentation kept


def test_seed_drill_body_drops_the_answer_prefix(seed):
    body = seed["J2"].body
    assert body.startswith("RoPE 适合")
    assert not body.startswith("A：") and not body.startswith("A:")


# -- several banks ----------------------------------------------------------------------------------
def test_second_bank_gets_prefixed_ids(tmp_path):
    write(tmp_path, PRIMARY_BANK, SMALL_BANK)
    write(tmp_path, "extra.md", "## X. 其他\n**1. 什么是 BM25？**\n词频和逆文档频率打分。\n")
    write(tmp_path, "my bank.md", "## Y. 更多\n**1. 什么是 RRF？**\n按名次倒数融合。\n")
    sections = load_corpus(tmp_path)
    ids = [s.id for s in sections]
    assert ids == ["Q1", "Q2", "I1", "J1", "extra:Q1", "my_bank:Q1"]
    assert len(set(ids)) == len(ids)
    by_id = {s.id: s for s in sections}
    assert by_id["extra:Q1"].source == "extra.md" and by_id["extra:Q1"].line == 2
    assert by_id["J1"].body == "优先 q_proj 和 v_proj。"
    assert by_id["I1"].body == '```python\nprint("hi")\n```'


def test_without_the_primary_every_bank_is_prefixed(tmp_path):
    write(tmp_path, "a.md", SMALL_BANK)
    write(tmp_path, "b.md", SMALL_BANK)
    ids = [s.id for s in load_corpus(tmp_path)]
    assert ids == ["a:Q1", "a:Q2", "a:I1", "a:J1", "b:Q1", "b:Q2", "b:I1", "b:J1"]


# -- malformed banks: the message names file and line -----------------------------------------------
MALFORMED = {
    "no_answer": ("## A. x\n**1. 第一问？**\n**2. 第二问？**\n答案。\n", "bank.md:2:", "no answer"),
    "unclosed_fence": ("## I. code\n**1) 片段**\n```python\nx = 1\n", "bank.md:3:", "never closed"),
    "before_heading": ("**1. 第一问？**\n答案。\n", "bank.md:1:", "before any '## '"),
    "duplicate_number": ("## A. x\n**1. 第一问？**\n答案。\n**1. 又是第一问？**\n答案。\n", "bank.md:4:", "line 2"),
    "empty": ("  \n\n", "bank.md:1:", "empty"),
    "non_utf8": (b"## A. x\n**1. q?**\nbad \xff\xfe bytes\n", "bank.md:3:", "UTF-8"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_bank_names_file_and_line(tmp_path, case):
    text, where, what = MALFORMED[case]
    write(tmp_path, "bank.md", text)
    with pytest.raises(CorpusError) as err:
        load_corpus(tmp_path)
    assert where in str(err.value)
    assert what in str(err.value)


def test_duplicate_id_error_points_at_both_lines():
    with pytest.raises(CorpusError, match=r"bank\.md:4: Q1 repeats the id first used on line 2"):
        parse_bank(MALFORMED["duplicate_number"][0], "bank.md")


def test_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CorpusError, match="does not exist") as err:
        load_corpus(missing)
    assert str(missing) in str(err.value)


def test_folder_without_markdown(tmp_path):
    write(tmp_path, "notes.txt", SMALL_BANK)
    with pytest.raises(CorpusError, match=r"holds no \.md bank") as err:
        load_corpus(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_utf8_bom_is_accepted(tmp_path):
    write(tmp_path, PRIMARY_BANK, b"\xef\xbb\xbf" + SMALL_BANK.encode("utf-8"))
    assert [s.id for s in load_corpus(tmp_path)][:2] == ["Q1", "Q2"]


# -- fingerprint ------------------------------------------------------------------------------------
def test_fingerprint_changes_when_a_file_changes(tmp_path):
    path = write(tmp_path, PRIMARY_BANK, SMALL_BANK)
    first = corpus_fingerprint(tmp_path)
    assert corpus_fingerprint(tmp_path) == first  # stable
    path.write_text(SMALL_BANK.replace("发散", "爆炸"), encoding="utf-8")
    second = corpus_fingerprint(tmp_path)
    assert second != first
    write(tmp_path, "extra.md", "## X. 其他\n**1. q？**\na\n")
    third = corpus_fingerprint(tmp_path)
    assert third not in (first, second)
    (tmp_path / "extra.md").rename(tmp_path / "extra2.md")  # same bytes, other name
    assert corpus_fingerprint(tmp_path) not in (first, second, third)


def test_text_after_a_rule_is_an_error_not_silently_dropped():
    with pytest.raises(CorpusError) as err:
        parse_bank("## A. x\n**1. q**\n a\n\n------\nlost text\n", "b.md")
    assert "b.md:6" in str(err.value) and "outside any question" in str(err.value)
