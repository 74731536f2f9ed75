"""The offline judge's contradiction cues added in session 6, one hand-checkable case each.

Thresholds are round (as in tests/test_grader.py) so every verdict below can be worked out by hand from
coach/grading/offline.py's rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coach.bank.glossary import load_glossary
from coach.grader import CONTRADICTED, COVERED, Grader, OfflineParams
from coach.grading.cues import antonym, hedged_sentences, is_hedge, negations, negative_sense, polar_flip
from coach.types import Section

SEED = Path(__file__).resolve().parents[1] / "corpus"
HAND = OfflineParams(covered=0.6, partial=0.4, contradict=0.4)
SERVE = Section("Q45", "vLLM 优势？", "G. 部署", "PagedAttention；低时延高吞吐。", "bank.md", 1)


@pytest.fixture(scope="module")
def grader() -> Grader:
    return Grader(None, glossary=load_glossary(SEED).groups, params=HAND)


def test_polar_adjective_next_to_a_term_flips_against_the_other_side_of_its_scale():
    # 时延 (1, 3) has 低 right before it in the point; the answer puts 高 right after it
    assert polar_flip("低时延高吞吐", [(1, 3)], "时延高、吞吐低", [[(0, 2)]])
    # degree words and a coordination may stand between ("并发和吞吐都偏低" says both are low)
    assert polar_flip("高并发", [(1, 3)], "所以并发和吞吐都偏低", [[(2, 4)]])
    # the same side in other words, or a negated other side, agrees
    assert not polar_flip("低时延", [(1, 3)], "时延很低", [[(0, 2)]])
    assert not polar_flip("高吞吐", [(1, 3)], "吞吐不低", [[(0, 2)]])
    # English, and across languages: "high latency" against 低时延
    assert polar_flip("低时延", [(1, 3)], "high latency", [[(5, 12)]])
    # a word that only starts with a polar character is not a degree: 上下文长度 is not "long context"
    assert not polar_flip("短上下文", [(1, 4)], "上下文长度", [[(0, 3)]])


def test_polar_flip_contradicts_a_point_and_its_own_words_cover_it(grader):
    wrong = grader.grade(SERVE, "用 PagedAttention，时延高、吞吐低。")
    assert [v.verdict for v in wrong.points] == [COVERED, CONTRADICTED]
    assert wrong.points[1].evidence == "时延高、吞吐低"
    right = grader.grade(SERVE, "用 PagedAttention，时延低、吞吐高。")
    assert [v.verdict for v in right.points] == [COVERED, COVERED]


def test_a_negative_point_said_negatively_in_other_words_is_not_reversed():
    # the point says 无需/避免/去掉; the answer says skip/without/去掉了 in its own place: agreement
    assert negative_sense("so you skip the reward model") and negative_sense("Transformer 把递归去掉了")
    # a dismissal holds a negation but is not the point's "not": "也无所谓" reverses 避免
    assert not negative_sense("tokenizer 跟 LLM 冲突也无所谓") and not negative_sense("it doesn't really matter")
    # code's None is a value
    assert negations("def f(mask=None): if mask is not None: pass") == 0


def test_not_keeping_agrees_with_a_point_that_says_reduce(grader):
    ckpt = Section("Q23", "梯度检查点？", "D. 训练", "减少中间激活保存；换算力为显存。", "bank.md", 1)
    grade = grader.grade(ckpt, "前向时不保存全部中间激活，反向时再重算。")
    assert grade.points[0].verdict == COVERED
    # but a negation of the reduce verb itself still reverses it, and "no effect on it" is no reduction
    assert grader.grade(ckpt, "它并不会减少中间激活保存。").points[0].verdict == CONTRADICTED
    kv = Section("Q14", "MQA？", "A. 架构基础", "显著减少 KV Cache 体积。", "bank.md", 1)
    assert grader.grade(kv, "对 KV Cache 的体积基本没影响。").points[0].verdict == CONTRADICTED


def test_a_cue_in_a_neighbouring_clause_about_something_else_does_not_count(grader):
    norm = Section("Q7", "LN 与 RMSNorm？", "A. 架构基础", "LN 归一化均值+方差。", "bank.md", 1)
    # the second clause names only 均值, which the first already says: it is RMSNorm's negation, not LN's
    assert grader.grade(norm, "LN 同时对均值和方差做归一化；RMSNorm 不减均值。").points[0].verdict == COVERED
    # a second clause that adds a term of the point (均值) carries its negation into the pair
    assert grader.grade(norm, "LN 只做方差归一化、不减均值。").points[0].verdict == CONTRADICTED


def test_a_cued_clause_that_names_clearly_more_of_the_point_than_any_clean_one_contradicts():
    # shipped rule: cue coverage >= dominate (0.4) and >= best clean coverage + margin (0.2), below the older
    # rule's contradict (0.8): "DPO 也需要 RM" names DPO and RM (0.59 of the point) without its 无需
    dpo = Section("J3", "DPO 与 PPO？", "J. 对比", "DPO 无需 RM 与在线 RL。", "bank.md", 1)
    shipped = Grader(None, glossary=load_glossary(SEED).groups)
    s = shipped.offline.scores(["DPO 无需 RM 与在线 RL"], "DPO 也需要 RM")[0]
    assert 0.4 <= s.best_cue < 0.8 and s.best_clean == 0.0, s
    assert shipped.grade(dpo, "DPO 也需要 RM。").points[0].verdict == CONTRADICTED
    lax = Grader(None, glossary=load_glossary(SEED).groups, params=OfflineParams(margin=1.0))
    assert lax.grade(dpo, "DPO 也需要 RM。").points[0].verdict != CONTRADICTED
    with pytest.raises(ValueError, match="margin"):
        OfflineParams(margin=1.5)


def test_antonyms_of_order_exactness_quantity_and_english_direction():
    assert antonym("在生成前检索外部知识", "生成完之后再去检索") and not antonym("在不改动训练的前提下量化", "训练之后量化")
    assert antonym("访存优化且精确", "是一种近似注意力") and antonym("选择少量专家", "都会过所有专家")
    assert antonym("提高并发吞吐", "throughput goes down") and antonym("显著减少 KV Cache 体积", "the KV cache grows")


def test_an_antonym_counts_only_next_to_the_term_it_governs():
    # "reduces" governs hallucinations; 时效性 ("up to date") stands four words further on
    clause = "it reduces hallucinations and keeps answers up to date"
    assert antonym("增强时效性", clause) and not antonym("增强时效性", clause, [(clause.index("up to date"), len(clause))])
    assert antonym("提高吞吐", "吞吐反而下降", [(0, 2)])  # the term as the subject, right before


def test_a_comparative_opposite_is_no_antonym_when_the_point_says_its_base_too():
    # Q24: 小 is about 显存, and the point's own 大 batch is what the answer's 更大 batch agrees with
    point = "小显存下用 gradient_accumulation_steps 以等效大 batch 训练"
    assert not antonym(point, "效果相当于用了更大的 batch")
    assert antonym("小显存下训练", "显存要更大") and antonym("小 batch 训练", "batch 更大")  # no 大 in the point: still one


def test_polar_adjective_across_a_comparison_and_a_hedge():
    assert polar_flip("小 LR 微调", [(2, 4)], "学习率一般要比预训练时更大", [[(0, 3)]])
    assert polar_flip("实现简洁", [(0, 2)], "实现比 PPO 更复杂", [[(0, 2)]])
    assert polar_flip("小 LR 微调", [(2, 4)], "学习率这块一般给得比较大", [[(0, 3)]])  # filler words between


def test_talk_about_the_words_is_name_dropping_and_an_english_sentence_ends_at_its_full_stop():
    for hedge in ("DDP、TP、PP 这几个词面试里经常会问到", "MQA 跟 KV 有点关系", "看情况吧", "these buzzwords come up a lot"):
        assert is_hedge(hedge), hedge
    assert not is_hedge("DPO is stable, but it depends on the quality of the preference data")  # content
    text = "KV caching saves compute. Something like that is common."
    spans = hedged_sentences(text)  # the first sentence is a claim; only the second hedges
    assert len(spans) == 1 and spans[0][0] > text.index(". ") and text[spans[0][0]:spans[0][1]].strip().startswith("Some")


def test_a_list_closed_by_these_or_a_just_do_it_is_name_dropping_but_these_inside_a_claim_is_not():
    for hedge in ("就是 AutoTokenizer、generate 这些。", "参数里设一下 top_p、temperature 这些，最后 decode 一下就行",
                  "这个要看具体场景来选", "大家综合考虑一下", "you just call generate and stuff"):
        assert is_hedge(hedge), hedge
    for claim in ("把这些 K/V 存起来，新 token 只算自己的", "这些方法都不改训练", "It depends on batch size and model size"):
        assert not is_hedge(claim), claim


def test_words_inside_a_name_earn_part_of_it_and_carry_its_negation():
    from coach.grading.offline import PART, OfflineJudge
    from coach.grading.terms import Concepts

    concepts = Concepts([("专家正则", "专家正则化")])
    reg = concepts.of("专家正则")[0]
    # jieba's words of the names, 专家 left out as too common (weight 1.2 < PART_WEIGHT 2.0)
    assert concepts.parts(reg) == ("正则", "正则化") and concepts.part_share(reg, {"正则"}) == 0.5
    judge = OfflineJudge(concepts)  # shipped thresholds: covered at 0.2
    own = judge.scores(["专家正则"], "再对专家参数加点正则")[0]
    assert own.best_clean == pytest.approx(PART * 0.5)  # half of its parts, at half weight: 0.25
    assert judge.judge(["专家正则"], "再对专家参数加点正则")[0].verdict == COVERED
    negated = judge.scores(["专家正则"], "专家参数不用加正则")[0]
    assert negated.cue and negated.clean_window is None  # the negation before 正则 still counts


def test_an_english_full_stop_ends_a_clause_but_a_decimal_point_does_not():
    from coach.grading.keypoints import clauses

    assert [c.text for c in clauses("It caches K and V. Weight decay 0.1 is common.")] == \
        ["It caches K and V", "Weight decay 0.1 is common"]


def test_a_list_closed_by_a_collective_or_the_details_left_to_others_is_name_dropping():
    for hedge in ("并行主要就是 DDP、ZeRO、TP、PP 这几类，实际一般组合着用", "RoPE 插值、ALiBi、滑窗这几条路",
                  "从划分、测试重合、哈希去重这几个角度下手", "AdamW、warmup、梯度裁剪几个方面，参数看规模",
                  "QLoRA 就是 4bit、NF4、double quant 这一整套。", "具体以文档为准", "细节各家实现略有差别",
                  "一般按经验调", "实际效果要看具体负载"):
        assert is_hedge(hedge), hedge
    for claim in ("整句都走这几个专家", "拼 system、user、assistant 这几个角色，不然效果会掉",
                  "主要分这几步：先算 QK^T，再 softmax", "训练分三步，先 SFT 再 RM 再 PPO"):
        assert not is_hedge(claim), claim


QLORA = Section("I9", "QLoRA 加载", "I. 代码", '```python\nm = AutoModelForCausalLM.from_pretrained(m_id, load_in_4bit=True, '
                'bnb_4bit_quant_type="nf4", device_map="auto", api_key="EMPTY", labels=t["input_ids"])\n```\n'
                '```bash\nserve --dtype auto --max-model-len 4096\n```', "bank.md", 1)


def test_code_values_are_the_literals_the_reference_code_sets():
    from coach.grading.keypoints import code_values

    assert code_values(QLORA.body) == {"load_in_4bit": "true", "bnb_4bit_quant_type": "nf4", "device_map": "auto",
                                       "--dtype": "auto", "--max-model-len": "4096"}  # no free choice, no expression
    assert code_values("用 KV Cache。") == {}
    assert code_values('```python\nf(x, dim=-1)\ng(y, dim=0)\n```') == {}  # two values: neither is "the" value


def test_a_code_setting_given_another_literal_is_a_wrong_value():
    from coach.grading.cues import wrong_value

    assert wrong_value("bnb_4bit_quant_type", "bnb_4bit_quant_type 要设成 int4", "nf4") == \
        "the answer sets “bnb_4bit_quant_type” to “int4”, the reference to “nf4”"
    assert wrong_value("load_in_4bit", "load_in_4bit=False 就行", "true")
    assert wrong_value("--dtype", "--dtype bfloat16", "auto") and wrong_value("return_tensors", "return_tensors='np'", "pt")
    assert not wrong_value("--dtype", "--dtype sets the precision", "auto")  # an English word, not a value
    assert not wrong_value("--max-model-len", "--max-model-len 8192", "4096")  # a number is a choice
    assert not wrong_value("lora_alpha", "lora_alpha=16", "32")
    assert not wrong_value("do_sample", "要 greedy 就 do_sample=False", "true")  # an alternative, not the claim
    assert not wrong_value("do_sample", "for greedy set do_sample=False", "true")
    assert not wrong_value("do_sample", "do_sample=True 才采样，False 是贪心", "true")  # names the reference's too
    assert not wrong_value("device_map", "device_map 一般是 accelerate 管的", "auto")  # 是 is no setting
    assert not wrong_value("device_map", "device_map='auto'", "auto") and not wrong_value("x", "x=1", None)


def test_a_wrong_value_in_code_contradicts_the_point_and_the_right_one_covers_it(grader):
    wrong = grader.grade(QLORA, 'from_pretrained 时 load_in_4bit=True，bnb_4bit_quant_type="fp4"。')
    verdicts = {v.point: v for v in wrong.points}
    assert verdicts["bnb_4bit_quant_type"].verdict == CONTRADICTED
    assert "“fp4”" in verdicts["bnb_4bit_quant_type"].why and verdicts["load_in_4bit"].verdict == COVERED
    right = grader.grade(QLORA, 'from_pretrained 时 load_in_4bit=True，bnb_4bit_quant_type="nf4"。')
    assert {v.point: v.verdict for v in right.points}["bnb_4bit_quant_type"] == COVERED


def test_otherwise_and_compatible_are_no_negation_and_a_negative_point_may_keep_its_not_in_the_next_clause():
    from coach.grading.cues import negations

    assert negations("按官方模板来，不然模型容易格式跑偏") == 0 and negations("再不行就用约束解码") == 0
    assert negations("它和量化也不冲突") == 0 and negations("不用重新训练") == 1
    ptq = Section("Q90", "PTQ？", "F. 量化", "在不改动训练的前提下量化权重（INT8/4）。", "bank.md", 1)
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    right = grader.grade(ptq, "不改动训练，直接把训练好的权重量化成 INT8 或 INT4。")
    assert right.points[0].verdict == COVERED, right.points
    wrong = grader.grade(ptq, "PTQ 要改动训练流程，边训边把权重量化成 INT8。")
    assert wrong.points[0].verdict == CONTRADICTED, wrong.points


def test_a_point_said_of_the_other_method_of_its_reference_contradicts_it():
    # "DPO 无需 RM" said of PPO, the point of the reference's other method: wrong, however well the rest matches
    pick = Section("J9", "DPO 与 PPO？", "J. 追问", "DPO 无需 RM 与在线 RL；PPO 可控性强但复杂昂贵。", "bank.md", 1)
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    wrong = grader.grade(pick, "PPO 无需 RM 与在线 RL；DPO 可控性强但复杂昂贵。")
    assert [v.verdict for v in wrong.points] == [CONTRADICTED, CONTRADICTED], wrong.points
    assert "“PPO”" in wrong.points[0].why and "PPO 无需 RM 与在线 RL" in wrong.points[0].evidence
    right = grader.grade(pick, "DPO 不需要 RM 和在线 RL；PPO 可控性强，但复杂、昂贵。")
    assert [v.verdict for v in right.points] == [COVERED, COVERED], right.points
    # both named in one clause, or the subject named once for the two clauses: no rival
    both = grader.grade(pick, "和 PPO 不同，DPO 无需 RM 与在线 RL")
    assert both.points[0].verdict == COVERED, both.points
    # a point that is only names has no predicate to say of a rival: "MQA/GQA" against "KV Cache 和 GQA"
    names = Section("Q98", "优化？", "A. 基础", "KV Cache；MQA/GQA。", "bank.md", 1)
    listed = grader.grade(names, "推理时加上 KV Cache 和 GQA")
    assert [v.verdict for v in listed.points] == [COVERED, COVERED], listed.points


def test_a_negation_reaches_only_its_own_clause_and_not_past_a_consequence_word():
    from coach.grading.cues import negated_at, scoped_negations

    # the 不 of "不需要参数" ends its clause: it does not negate 可 in the next one
    assert negated_at("正弦编码不需要参数,可以插值", 11) == "" and negated_at("正弦编码不需要参数", 7) == "不需要"
    # "召回不到就拒答": the 不 is the condition's; 就 opens what follows, and that is not negated
    assert negated_at("召回不到就拒答", 5) == "" and negated_at("不拒答", 1) == "不"
    # a negation after "so"/"since" is the purpose's or the reason's, not the term's
    assert scoped_negations("a KV cache so past keys aren't recomputed", [(2, 10)]) == 0
    assert scoped_negations("a KV cache isn't used", [(2, 10)]) == 1
    # 就是 ("simply") and the 则 inside 规则 are no such word
    assert scoped_negations("KV Cache 就是没用", [(0, 8)]) == 1 and scoped_negations("KV Cache 所以没用", [(0, 8)]) == 0
    assert negated_at("不按规则解码", 4) == "不"
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    norm = Section("Q91", "LN 与 RMSNorm？", "A. 基础", "LN 归一化均值+方差；RMSNorm 去均值只保留方差缩放。", "bank.md", 1)
    right = grader.grade(norm, "LN 对均值和方差都做归一化；RMSNorm 不减均值，只用均方根做缩放")
    assert [v.verdict for v in right.points] == [COVERED, COVERED], right.points
    guard = Section("Q92", "兜底？", "E. RAG", "失败时拒答/追问。", "bank.md", 1)
    assert grader.grade(guard, "召回不到证据就拒答或者追问").points[0].verdict == COVERED
    assert grader.grade(guard, "检索失败时也不拒答，直接让模型编").points[0].verdict == CONTRADICTED


def test_a_privative_point_agrees_with_a_negation_and_prevent_says_avoid():
    # 零参数 and 去均值 say "no X": the candidate's "不需要参数" and "去掉了减均值这一步" agree with them
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    pos = Section("Q93", "正弦位置编码？", "A. 基础", "绝对正弦（可插值、零参数）。", "bank.md", 1)
    assert grader.grade(pos, "正弦位置编码不需要参数，可以插值").points[0].verdict == COVERED
    alibi = Section("Q94", "ALiBi？", "A. 基础", "ALiBi 零改权重外推友好。", "bank.md", 1)
    assert grader.grade(alibi, "ALiBi 不用改权重就能外推，很友好").points[0].verdict == COVERED
    norm = Section("Q95", "RMSNorm？", "A. 基础", "RMSNorm 去均值只保留方差缩放。", "bank.md", 1)
    assert grader.grade(norm, "RMSNorm 去掉了减均值这一步，只保留方差缩放").points[0].verdict == COVERED
    # only that way round: a privative point does not ask for a negation, and a non-privative one still flips
    lora = Section("Q96", "LoRA 初始化？", "C. 微调", "B 矩阵零初始化。", "bank.md", 1)
    assert grader.grade(lora, "B 矩阵初始化为零").points[0].verdict == COVERED
    kv = Section("Q97", "KV Cache？", "D. 推理", "KV Cache 缓存历史 K/V。", "bank.md", 1)
    assert grader.grade(kv, "KV Cache 不缓存历史 K/V").points[0].verdict == CONTRADICTED
    # 防止 X says 避免 X; a clause that says neither reverses it
    moe = Section("Q98", "负载均衡？", "F. MoE", "加均衡损失；避免专家失衡。", "bank.md", 1)
    assert grader.grade(moe, "加均衡损失，防止专家负载失衡").points[1].verdict == COVERED
    assert grader.grade(moe, "加均衡损失，以免专家失衡").points[1].verdict == COVERED
    assert grader.grade(moe, "加均衡损失，会让专家失衡").points[1].verdict == CONTRADICTED


def test_a_trailing_negation_of_another_thing_is_no_contradiction():
    from coach.grading.cues import polarity_flip

    # "不需要成对数据" denies a thing the point does not name; the point says something of KTO besides its name
    assert polarity_flip("KTO 使用已标注偏好", "KTO 不需要成对数据", [(0, 3)], [(0, 3)]) == ""
    assert polarity_flip("客户端(OpenAI 兼容)", "客户端不需要专门 SDK", [(0, 3)], [(0, 3)]) == ""
    # ... but a denial of the point's own thing, a dismissal, or a negated predicate still reverses it
    assert polarity_flip("KTO 使用已标注偏好", "KTO 不需要偏好标签", [(0, 3)], [(0, 3)])
    assert polarity_flip("增强时效性", "但对时效性没有帮助", [(2, 5)], [(2, 5)])
    assert polarity_flip("重排序准确率", "rerank 不需要单独评", [(0, 3)], [(0, 6)])
    # a point that only names its term: any denial of the term is against it
    assert polarity_flip("drop tokens", "drop tokens 没有任何作用", [(0, 11)], [(0, 11)])
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    kto = Section("Q91", "KTO？", "C. 对齐", "KTO 使用已标注偏好。", "bank.md", 1)
    assert grader.grade(kto, "KTO 不需要成对数据，用已标注偏好就能训").points[0].verdict == COVERED
    assert grader.grade(kto, "KTO 不需要已标注偏好").points[0].verdict == CONTRADICTED


def test_instead_of_before_a_term_and_a_point_setting_and_illegal_tokens():
    from coach.grading.cues import negated_at, polarity_flip

    assert negated_at("Instead of storing all activations", 11) == "Instead of"
    # the point's "not" is its setting (在不改动训练的前提下): an answer that leaves the setting out is not reversed
    point = "在不改动训练的前提下量化权重（INT8/4）"
    assert polarity_flip(point, "直接把权重量化成 INT8 或 INT4", [(10, 12), (12, 14), (15, 19)],
                         [(5, 7), (3, 5), (9, 13)]) == ""
    assert polarity_flip("不改动训练而量化权重", "直接把权重量化成 INT8", [(7, 9), (9, 10)], [(5, 7), (3, 5)])
    # 非法 / 不合法 token are adjectives, not a negation of masking them
    assert negations("把非法 token 屏蔽掉") == 0 and negations("把不合法的 token 屏蔽掉") == 0


def test_a_dismissal_reverses_a_point_that_fights_its_term():
    # "专家失衡不用管" and "don't worry about imbalance" hold a "not", as 避免 does, but say the opposite of it
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    moe = Section("Q98", "负载均衡？", "F. MoE", "加均衡损失；避免专家失衡。", "bank.md", 1)
    assert grader.grade(moe, "加均衡损失，别管专家失衡").points[1].verdict == CONTRADICTED
    assert grader.grade(moe, "加均衡损失，专家失衡不用管，训久了自己会好").points[1].verdict == CONTRADICTED
    assert grader.grade(moe, "加均衡损失，避免专家失衡").points[1].verdict == COVERED
    assert negative_sense("专家失衡不用管") is False and negative_sense("不用专家") is True


def test_mean_against_sum_is_an_antonym():
    assert antonym("指数化的平均负 log-likelihood", "负对数似然的总和再取 exp")
    assert not antonym("指数化的平均负 log-likelihood", "平均负对数似然再取 exp")


def test_polar_adjective_past_a_latin_comparison_and_mediocre_at_the_clause_end():
    # "比 HF generate" is a comparison's other side: the adjective after it is still the term's
    assert polar_flip("高并发/高吞吐", [(5, 7)], "高并发场景下吞吐会比 HF generate 更低", [[(6, 8)]])
    assert not polar_flip("高并发/高吞吐", [(5, 7)], "高并发场景下吞吐会比 HF generate 更高", [[(6, 8)]])
    # "吞吐一般" closing the clause says mediocre, the low side; "一般都很高" is "usually"
    assert polar_flip("高并发/高吞吐", [(5, 7)], "高并发下吞吐一般", [[(4, 6)]])
    assert not polar_flip("高并发/高吞吐", [(5, 7)], "高并发下吞吐一般都很高", [[(4, 6)]])


def test_two_names_on_the_other_sides_of_the_points_verb_swap_roles():
    from coach.grading.cues import role_swap

    point = "用 Teacher 预测监督 Student"
    spans = [(2, 9), (12, 14), (15, 22)]  # Teacher, 监督, Student
    swapped_roles = "让 Student 的输出去监督 Teacher"
    assert role_swap(point, spans, swapped_roles, [[(17, 24)], [(14, 16)], [(2, 9)]])
    right = "用 Teacher 的预测去监督 Student"
    assert not role_swap(point, spans, right, [[(2, 9)], [(14, 16)], [(17, 24)]])
    passive = "Student 被 Teacher 监督"  # the verb after both names: no swap
    assert not role_swap(point, spans, passive, [[(10, 17)], [(18, 20)], [(0, 7)]])
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    kd = Section("Q91", "蒸馏？", "G. 压缩", "用 Teacher 预测监督 Student。", "bank.md", 1)
    assert grader.grade(kd, "蒸馏就是让 Student 的输出去监督 Teacher").points[0].verdict == CONTRADICTED
    assert grader.grade(kd, "蒸馏就是用 Teacher 的预测去监督 Student").points[0].verdict == COVERED


def test_double_negation_otherwise_failure_words_but_and_not_all():
    from coach.grading.cues import negated_at, polarity_flip, scoped_negations

    assert negations("PPO 并不是不好") == 0  # a double negation affirms
    assert negative_sense("不然模型会去学 predict prompt") and negative_sense("抛开了 RNN 和 CNN")
    # a negation before a failure word denies the failure: "不容易训崩" says easy to train
    assert negated_at("也不容易训崩", 3) == "" and negated_at("也不容易训练", 3) == "不"
    assert scoped_negations("训练不会发散", [(0, 2)]) == 0 and scoped_negations("训练不稳定", [(0, 2)]) == 1
    # "but not great latency" is latency's, not throughput's
    assert scoped_negations("it's high throughput but not great latency", [(10, 20)]) == 0
    # "不…都" is "not all of it": it says "less of it"
    assert polarity_flip("减少中间激活保存", "前向的时候不把每一层的中间结果都留着", [(2, 6)], [(11, 15)]) == ""
    assert polarity_flip("减少中间激活保存", "前向的时候中间结果一个都不删", [(2, 6)], [(5, 9)])
    # "latency 低 throughput 高": the 低 is latency's
    assert not polar_flip("低时延高吞吐", [(4, 6)], "latency 低 throughput 高", [[(10, 20)]])
    assert polar_flip("低时延高吞吐", [(4, 6)], "latency 高 throughput 低", [[(10, 20)]])
    # 避免 X says what 减少 X does
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    tpl = Section("Q91", "模板？", "D. 推理", "减少越狱与格式偏移。", "bank.md", 1)
    assert grader.grade(tpl, "好处是减少越狱，也能避免输出格式偏移").points[0].verdict == COVERED


def test_recall_against_precision_and_at_once_against_one_by_one():
    assert antonym("Retriever 召回@k", "Retriever 我会看 precision@k")
    # with the matched term's place (as the judge calls it), a precision that governs another term is not it
    assert not antonym("Retriever 召回@k", "Retriever 看 recall@k，rerank 看 precision", [(0, 9)])
    assert antonym("序列位置可同时计算注意力", "注意力仍然按位置依次计算")
    assert not antonym("序列位置可同时计算注意力", "所有位置同时计算注意力")


def test_the_noun_tagger_does_not_depend_on_what_the_process_tokenized_before():
    # coach.text adds the term lexicon to jieba's shared dictionary, where "奖励模型" loses its noun tag
    from coach import text
    from coach.grading import cues

    cues._noun_final.cache_clear()
    before = cues._noun_final("奖励模型")
    text.tokenize("奖励模型和 KV Cache")
    cues._noun_final.cache_clear()
    assert before is True and cues._noun_final("奖励模型") is True


def test_a_skipped_or_dropped_term_is_not_done_and_dropping_agrees_with_reducing():
    from coach.grading.cues import polarity_flip

    grader = Grader(None, glossary=load_glossary(SEED).groups)
    sft = Section("Q92", "SFT 流程？", "B. 训练", "模板构造、仅对答案区计 loss。", "bank.md", 1)
    assert grader.grade(sft, "直接拼接，跳过模板构造").points[0].verdict == CONTRADICTED
    assert grader.grade(sft, "先做模板构造").points[0].verdict == COVERED
    # dropping what a point reduces says the same thing; a point that itself drops agrees with 丢掉
    assert polarity_flip("减少中间激活保存", "其余中间激活丢掉", [(2, 6)], [(2, 6)]) == ""
    assert polarity_flip("drop tokens", "把超出的 token 丢掉", [(5, 11)], [(5, 10)]) == ""
    assert polarity_flip("模板构造", "跳过模板构造", [(0, 4)], [(2, 6)])


def test_a_term_replaced_by_something_else_is_not_kept():
    from coach.grading.cues import replaced

    assert replaced("滑窗注意力", "把滑窗注意力换回全局注意力", [[(1, 6)]])
    assert replaced("滑窗注意力", "sliding window attention replaced with full attention", [[(0, 24)]])
    assert replaced("BF16", "把 FP32 换成 BF16", [[(10, 14)]]) == ""  # the term is what it becomes
    assert replaced("FP16/BF16 混合精度", "把 FP16 换成 BF16", [[(2, 6)], [(10, 14)]]) == ""  # between its own things
    assert replaced("把 FP32 换成 BF16", "把 FP32 换成 BF16", [[(2, 6)]]) == ""  # the point replaces too


def test_a_sibling_called_by_the_points_chinese_name_contradicts_both():
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    par = Section("Q93", "并行？", "B. 训练", "DDP（数据并行）、TP（张量并行）、PP（流水线并行）。", "bank.md", 1)
    swapped_names = grader.grade(par, "TP 是按层切分的流水线并行")
    assert [v.verdict for v in swapped_names.points[1:]] == [CONTRADICTED, CONTRADICTED], swapped_names.points
    assert "calls “TP” “流水线并行”" in swapped_names.points[2].why
    right = grader.grade(par, "DDP 是数据并行；TP 是张量并行；PP 是流水线并行")
    assert [v.verdict for v in right.points] == [COVERED] * 3, right.points
    denied = grader.grade(par, "TP 不是流水线并行")  # a negation between the names: not this cue (the 不是 is read
    assert not any("calls" in v.why for v in denied.points), denied.points  # as a negation of 流水线并行 anyway)
    kind = grader.grade(par, "TP 是流水线并行的一种补充")  # the name does not end the clause
    assert kind.points[2].verdict != CONTRADICTED, kind.points


def test_another_of_the_points_terms_in_its_frame_is_a_swap():
    from coach.grading.cues import slot_swap

    point = "仅对答案区计 loss（prompt label=-100）"
    ans, prompt = [(2, 4), (2, 5)], [(12, 18)]  # every place of 答案(区) and of prompt in the point
    swapped_ = "训练时只对 prompt 区计 loss"
    assert slot_swap(point, [ans, prompt], swapped_, [[], [(6, 12)]]) == "the answer puts “prompt” where the point has “答案”"
    right = "只对答案区计 loss，prompt 的 label 设成 -100"
    assert slot_swap(point, [ans, prompt], right, [[(2, 4)], [(12, 18)]]) == ""
    # alternatives in the point ("schema 约束/正则") and coordinations ("A 与 B 结合") are no frame
    assert slot_swap("使用 schema 约束/正则", [[(3, 9)], [(13, 15)]], "用正则约束输出格式", [[], [(1, 3)]]) == ""
    assert slot_swap("检索与生成结合", [[(0, 2)], [(3, 5)]], "生成与检索结合", [[(3, 5)], [(0, 2)]]) == ""
    grader = Grader(None, glossary=load_glossary(SEED).groups)
    sft = Section("Q94", "SFT？", "B. 训练", "仅对答案区计 loss（prompt label=-100）。", "bank.md", 1)
    assert grader.grade(sft, "只对 prompt 区计 loss，答案区的 label 设为 -100").points[0].verdict == CONTRADICTED
    assert grader.grade(sft, "只对答案区计 loss，prompt 的 label 设成 -100").points[0].verdict == COVERED
