"""eval.grader_eval on a tiny hand-labelled set: any kind name, the split rule and its override, the figures
as printed and as --json, and malformed rows named by file and line."""

from __future__ import annotations

import json

import pytest

from coach.bank.corpus import load_corpus
from coach.settings import Settings
from eval import grader_eval

BANK = {s.id: s for s in load_corpus(Settings().corpus_dir)}


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [  # Q13: 推理时缓存历史 K/V | 后续步只计算新 token 与缓存交互 | 减少重复计算与显存拷贝
    {"id": "Q13", "kind": "verbatim", "answer": "推理时缓存历史 K/V；后续步只计算新 token 与缓存交互；减少重复计算与显存拷贝。",
     "covered": [0, 1, 2]},
    {"id": "Q13", "kind": "chat", "answer": "我周末一般去爬山。", "covered": []},
    {"id": "Q6", "kind": "verbatim", "answer": "Pre-LN（子层前归一化）更易训练深层，收敛稳；Post-LN 原版较难训深层。",
     "covered": [0, 1, 2]},
    {"id": "Q6", "kind": "chat", "answer": "今天天气不错。", "covered": []},
]


def test_splits_alternate_by_section_and_a_row_may_name_its_own(tmp_path):
    items = grader_eval.load_set(write(tmp_path / "s.jsonl", ROWS), BANK)
    assert [(i.section_id, i.split) for i in items] == [("Q13", "tune"), ("Q13", "tune"), ("Q6", "held-out"),
                                                        ("Q6", "held-out")]
    items = grader_eval.load_set(write(tmp_path / "s.jsonl", [{**r, "split": "held-out"} for r in ROWS]), BANK)
    assert {i.split for i in items} == {"held-out"}
    assert items[0].score == 100.0 and items[1].score == 0.0  # the labelled score defaults to the covered share


@pytest.mark.parametrize("bad, message", [
    ({"id": "Q999", "kind": "x", "answer": "a"}, "s.jsonl:2: section Q999 is not in the bank"),
    ({"id": "Q13", "kind": "x", "answer": "a", "covered": [3]}, "s.jsonl:2: point indices [3] out of range"),
    ({"id": "Q13", "kind": "x", "answer": "a", "covered": [1], "contradicted": [1]}, "labelled both"),
    ({"id": "Q13", "kind": "x", "answer": "a", "split": "dev"}, "s.jsonl:2: split 'dev' is not one of tune"),
])
def test_malformed_rows_name_file_and_line(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        grader_eval.load_set(write(tmp_path / "s.jsonl", [ROWS[0], bad]), BANK)


def test_main_prints_and_writes_the_figures_of_any_kind(tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert grader_eval.main(["--set", str(write(tmp_path / "s.jsonl", ROWS)), "--json", str(out), "--cues-only"]) == 0
    printed = capsys.readouterr().out
    assert "grading second look: off (no embedder)" in printed and "kind=verbatim" in printed
    figures = json.loads(out.read_text(encoding="utf-8"))
    for split in ("tune", "held-out"):
        verbatim, chat = figures[split]["kind=verbatim"], figures[split]["kind=chat"]
        assert (verbatim["precision"], verbatim["recall"], verbatim["score"]) == (1.0, 1.0, 100.0)
        assert (chat["called"], chat["false-cov"], chat["score"]) == (0, 0.0, 0.0)
    assert figures["all"]["answers"] == 4 and figures["all"]["points"] == 12
