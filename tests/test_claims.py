"""Point claims (coach/bank/claims.py): each key point stated right and wrong, read from the corpus folder."""

from __future__ import annotations

import json

import pytest

from coach.bank.claims import PointClaims, claims_coverage, load_claims, parse_claims
from coach.bank.corpus import CorpusError, load_corpus
from coach.grading import key_points
from coach.settings import Settings

SEED = Settings().corpus_dir
LINE = {"id": "Q13", "point": 0, "key_point": "推理时缓存历史 K/V", "right": ["缓存  K/V", "KV cache keeps K/V"],
        "wrong": ["不缓存 K/V"]}


def test_seed_claims_cover_every_key_point_with_four_right_and_four_wrong():
    bank = load_corpus(SEED)
    claims = load_claims(SEED, {s.id for s in bank})
    points = {s.id: key_points(s.body) for s in bank}
    assert claims_coverage(claims, points) == (379, 379)
    assert all(len(c.right) == 4 and len(c.wrong) == 4 and not set(c.right) & set(c.wrong) for c in claims.values())


def test_a_line_is_read_by_section_and_point_text_whitespace_folded():
    ((key, claims),) = parse_claims(json.dumps(LINE, ensure_ascii=False), "x.jsonl", {"Q13"})
    assert key == ("Q13", "推理时缓存历史 K/V")
    assert claims == PointClaims(("缓存 K/V", "KV cache keeps K/V"), ("不缓存 K/V",))


@pytest.mark.parametrize("line, message", [
    ("{not json", "x.jsonl:2: not a point-claims line (not valid JSON"),
    (json.dumps({**LINE, "wrong": []}), "x.jsonl:2: 'right' and 'wrong' must each be a list of at least one"),
    (json.dumps({**LINE, "right": "缓存"}), "x.jsonl:2: 'right' and 'wrong' must each be a list"),
    (json.dumps({**LINE, "key_point": " "}), "x.jsonl:2: 'id' and 'key_point' must be non-empty strings"),
    (json.dumps({k: v for k, v in LINE.items() if k != "right"}), "x.jsonl:2: not a point-claims line (missing 'right')"),
    (json.dumps({**LINE, "id": "Q99"}), "x.jsonl:2: section 'Q99' is in no bank"),
])
def test_malformed_lines_name_file_and_line(line, message):
    with pytest.raises(CorpusError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_claims(json.dumps(LINE) + "\n" + line, "x.jsonl", {"Q13"})


def test_files_of_a_folder_merge_and_a_changed_point_simply_has_no_claims(tmp_path):
    (tmp_path / "a_point_claims.jsonl").write_text(json.dumps(LINE, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "b_point_claims.jsonl").write_text(
        json.dumps({**LINE, "right": ["缓存 K/V", "存下历史 K/V"], "wrong": ["每步重算"]}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    claims = load_claims(tmp_path, {"Q13"})
    assert claims[("Q13", "推理时缓存历史 K/V")] == PointClaims(("缓存 K/V", "KV cache keeps K/V", "存下历史 K/V"),
                                                              ("不缓存 K/V", "每步重算"))
    # the reference was edited: its new first point has no claims, and coverage says so
    assert claims_coverage(claims, {"Q13": ["推理时缓存历史的 K 与 V", "后续步只计算新 token"]}) == (0, 2)
