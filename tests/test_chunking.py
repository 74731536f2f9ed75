"""coach.bank.chunking: chunks point back into their section, start with its title, overlap, keep code lines whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from coach.bank.chunking import ChunkSettings, chunk_sections
from coach.bank.corpus import PRIMARY_BANK, load_corpus
from coach.types import Section

SEED_DIR = Path(__file__).resolve().parents[1] / "corpus"

# 40 sentences of 15 characters ("第07句话讲分块重叠怎样测试。"): 600 characters.
# size 320 holds 21 sentences (315 chars); overlap 64 carries the last 4 sentences (60 chars) over.
LONG_BODY = "".join(f"第{i:02d}句话讲分块重叠怎样测试。" for i in range(40))


def section(sid: str, body: str, title: str = "长问题？") -> Section:
    return Section(sid, title, "A. 测试", body, "bank.md", 1)


@pytest.fixture(scope="module")
def seed_sections() -> list[Section]:
    if not (SEED_DIR / PRIMARY_BANK).is_file():
        pytest.fail(f"the seed bank {SEED_DIR / PRIMARY_BANK} is missing; these tests chunk it")
    return load_corpus(SEED_DIR)


def test_short_section_is_one_chunk_with_the_title_first():
    [chunk] = chunk_sections([Section("Q13", "KV Cache 原理？", "A. 架构", "推理时缓存历史 K/V。", "b.md", 3)])
    assert chunk.section_id == "Q13" and chunk.title == "KV Cache 原理？" and chunk.category == "A. 架构"
    assert chunk.text == "KV Cache 原理？\n推理时缓存历史 K/V。"
    assert (chunk.start, chunk.end) == (0, len("推理时缓存历史 K/V。"))
    assert chunk.search_text == "架构\nKV Cache 原理？\n推理时缓存历史 K/V。"


@pytest.mark.parametrize("settings", [ChunkSettings(), ChunkSettings(100, 20), ChunkSettings(50, 0)])
def test_every_chunk_body_is_a_slice_of_its_section(seed_sections, settings):
    by_id = {s.id: s for s in seed_sections}
    chunks = chunk_sections(seed_sections, settings)
    assert {c.section_id for c in chunks} == set(by_id)  # every section is searchable
    assert [c.section_id for c in chunks] == sorted((c.section_id for c in chunks), key=list(by_id).index)
    for c in chunks:
        sec = by_id[c.section_id]
        assert c.text == f"{sec.title}\n{sec.body[c.start:c.end]}"
        assert c.text.startswith(sec.title)
        assert 0 <= c.start < c.end <= len(sec.body)
        assert c.end - c.start <= settings.size


def test_long_section_chunks_overlap():
    chunks = chunk_sections([section("Q1", LONG_BODY)], ChunkSettings(320, 64))
    assert [(c.start, c.end) for c in chunks] == [(0, 315), (255, 570), (510, 600)]
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks must share text"
        shared = LONG_BODY[b.start : a.end]
        assert len(shared) == 60  # four whole sentences are repeated
        assert a.text.endswith(shared) and b.text.startswith(f"长问题？\n{shared}")


def test_without_overlap_chunks_tile_the_body():
    chunks = chunk_sections([section("Q1", LONG_BODY)], ChunkSettings(320, 0))
    assert [(c.start, c.end) for c in chunks] == [(0, 315), (315, 600)]
    assert "".join(LONG_BODY[c.start : c.end] for c in chunks) == LONG_BODY
    for a, b in zip(chunks, chunks[1:]):
        assert b.start == a.end


def test_chunks_end_at_sentence_ends():
    for c in chunk_sections([section("Q1", LONG_BODY)], ChunkSettings(320, 64)):
        assert LONG_BODY[c.start : c.end].endswith("。")


def _line_bounds(body: str, pos: int) -> tuple[int, int]:
    start = body.rfind("\n", 0, pos) + 1
    end = body.find("\n", pos)
    return start, len(body) if end < 0 else end


@pytest.mark.parametrize("sid", ["I1", "I2", "I3", "I4", "I5", "I6"])
def test_seed_code_is_not_split_mid_line(seed_sections, sid):
    sec = next(s for s in seed_sections if s.id == sid)
    lines = sec.body.splitlines()
    assert max(map(len, lines)) < ChunkSettings().size  # every line fits a chunk
    chunks = [c for c in chunk_sections([sec]) if c.section_id == sid]
    assert len(chunks) >= 1
    for c in chunks:
        line_start, _ = _line_bounds(sec.body, c.start)
        _, line_end = _line_bounds(sec.body, c.end - 1)
        assert sec.body[line_start : c.start].strip() == "", f"{sid} chunk starts mid-line at {c.start}"
        assert sec.body[c.end : line_end].strip() == "", f"{sid} chunk ends mid-line at {c.end}: {sec.body[c.end:line_end]!r}"


def test_a_code_block_that_fits_stays_whole():
    body = "先看代码：\n\n```python\ndef f(x):\n    return x + 1\n```\n\n之后的解释文字。" + "补充说明。" * 30
    chunks = chunk_sections([section("I1", body)], ChunkSettings(120, 0))
    block = body[body.index("```python") : body.index("```\n\n之后") + 3]
    assert any(block in c.text for c in chunks)


@pytest.mark.parametrize(
    "size, overlap, message",
    [
        (49, 0, "chunk size 49 is too small; use at least 50 characters"),
        (0, 0, "chunk size 0 is too small"),
        (100, -1, "chunk overlap -1 must be >= 0 and smaller than the size 100"),
        (100, 100, "chunk overlap 100 must be >= 0 and smaller than the size 100"),
        (100, 150, "chunk overlap 150"),
    ],
)
def test_chunk_settings_validation(size, overlap, message):
    with pytest.raises(ValueError, match=message):
        ChunkSettings(size, overlap)


def test_chunk_settings_edges_are_valid():
    assert ChunkSettings(50, 0) == ChunkSettings(size=50, overlap=0)
    assert ChunkSettings(50, 49).overlap == 49
