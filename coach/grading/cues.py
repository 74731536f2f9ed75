"""Contradiction cues: does a clause that talks about a key point say the opposite of it?

Pure functions over text and the spans where the point's concepts were found
(terms.Concepts.find).  The cues, each with a hand-checkable example:

- negation flip: a negation word right before a matched term in one text and not
  in the other.  ``negation_flip("缓存历史 K/V", "不缓存历史 K/V", ...)`` -> "不 before 缓存".
  Fixed words that only look negative (不同, 不断, 非常, 无论, 不仅 ..., code's None) are masked first.
  A negative point (无需 X, 避免 X) is not reversed by a clause that says "not" its own way (skip, 去掉了,
  without; ``negative_sense``), and "不保存 X" agrees with "减少 X 保存" (a reduce verb before the term);
  a dismissal (无所谓, 基本没影响, doesn't matter) is no such "not".
- polar adjective: one side of a scale right next to a matched term in the point, the other side next to
  it in the clause.  ``polar_flip("低时延高吞吐", [(1, 3)], "时延高、吞吐低", [[(0, 2)]])`` -> "“时延” is - ...".
- antonym pair: the point says one side of a pair and the clause the other and not
  the first.  ``antonym("减少显存", "增加显存")`` -> "减少 / 增加".  Pairs of direction (提高/降低 and
  their English forms, across the languages), order (前/之后), exactness (精确/近似) and quantity
  (少量/所有); with the matched terms' spans, the clause's side must govern one of them.
- wrong number: the clause states a quantity of the point's kind (same unit) and none of the point's own,
  nor one inside its range.  ``wrong_number("4bit 量化", "8bit 量化")`` -> "the answer says 8bit ...".
- wrong value: the clause sets a code key point to another boolean or word than the reference's code
  (keypoints.code_values) and does not name the reference's.  ``wrong_value("bnb_4bit_quant_type", "bnb_4bit_quant_type 要设成 int4", "nf4")``
  -> "the answer sets “bnb_4bit_quant_type” to “int4”, the reference to “nf4”".
- swapped comparison: the point's subject stands after the clause's comparison
  word.  ``swapped("Pre-LN 更易训练深层", "Post-LN 比 Pre-LN 更易训深层", ...)`` -> "Pre-LN after 比".
- role swap: two Latin names on the other sides of the point's verb.  ``role_swap("用 Teacher 预测监督 Student",
  ..., "让 Student 的输出去监督 Teacher", ...)`` -> "“Student” and “Teacher” stand on the other sides of “监督” ...".

A negation that only follows the terms and denies another thing ("KTO 不需要成对数据" for "KTO 使用已标注偏好"), one
before a failure word ("不容易训崩"), and a point's "not" that is only its setting ("在不改动训练的前提下") reverse
nothing; a dismissal ("专家失衡不用管") reverses a point that fights its term (避免/降低) although both hold a "not".

Each returns a short reason (for notes and display) or "".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from ..text import CJK

# Words that contain a negation character but do not negate.
_NOT_NEGATION = ("不同", "不断", "不仅", "不过", "不少", "不止", "不只", "非常", "无论", "不管", "不久", "不错", "毫无疑问",
                 "无损", "非线性", "并非只", "不单", "无监督", "非结构化", "未来", "不定长", "无限", "差不多", "差不太多",
                 "不一样", "无关紧要",
                 # general Chinese words that hold 别/无/非/不/没 without negating (hand-listed from common usage):
                 "特别", "分别", "区别", "差别", "类别", "级别", "个别", "识别", "辨别", "判别", "鉴别", "甄别", "告别",
                 "别的", "无穷", "无数", "除非", "莫非", "无非", "非得", "不得不", "不但", "不论", "不妨", "有无",
                 "是非", "淹没", "埋没", "不外乎",
                 # "otherwise", "if that fails", "compatible": the 不 negates none of the clause's terms
                 "要不然", "不然", "再不行", "不行的话", "不冲突", "不矛盾",
                 # "illegal" tokens: an adjective, not a negation of what is done with them ("把非法 token 屏蔽掉")
                 "非法", "不合法",
                 # a double negation affirms ("PPO 并不是不好")
                 "并不是不", "不是不", "并非不")
# Negations, and verbs that say "without" (摒弃 RNN = 不再用 RNN): both sides of a point count them alike.
# Removal verbs: "跳过模板构造", "drop X": X is not done; "其余中间激活丢掉" agrees with "减少中间激活保存" (polarity_flip).
# 省掉/省略 are left out: "省掉重复计算" is a saving, said of a shared term (计算) that another point affirms.
_DROP = re.compile(r"摒弃|抛弃|放弃|去掉|去除|跳过|略过|丢掉|扔掉|砍掉|拿掉|丢弃|舍弃|弃用")
_NEG_CJK = re.compile(r"无需|不需要?|不用|不必|没有|并非|不是|不会|不能|无法|不再|从不|从未|并不|"
                      rf"{_DROP.pattern}|"
                      r"避免|取消|省去|免去|不|没|无|非|未|别|勿")
_NEG_EN = re.compile(r"\b(?:not|no|never|without|cannot|can't|don't|doesn't|isn't|aren't|won't|none|neither|nor|"
                     r"instead of|avoid|avoids|avoided|avoiding)\b|n't\b", re.I)  # avoid: as 避免 above
# Words that say "less of" or "without" in other forms than a negation before the term: "把递归去掉了",
# "you skip the reward model", "drop recurrence".  A point that is negative (无需 X, 避免 X) is reversed
# only by a clause with none of these nor a negation: a correct answer says the negative its own way.
_NEG_SENSE = re.compile(r"去掉|去除|省掉|省去|跳过|丢掉|扔掉|砍掉|拿掉|不要|免掉|没必要|用不着|抛开|抛掉|丢弃|舍弃|弃用|"
                        r"防止|预防|杜绝|以免|以防|免得|"  # "prevent": 防止 X says 避免 X
                        r"\b(?:prevent|prevents|prevented|preventing|skip|skips|skipped|skipping|drop|drops|dropped|dropping|remove|removes|removed|removing|"
                        r"eliminate|eliminates|eliminated|get rid|gets rid|instead|otherwise|rather than|no longer|"
                        r"free of|bypass|bypasses|avoids?|without)\b|-free\b", re.I)
# Verbs that say "less of" the term ("减少中间激活保存"): "不保存全部中间激活" says the same, it does not negate it.
_REDUCE = re.compile(r"减少|减小|降低|防止|抑制|缓解|减轻|少存|\b(?:reduce|reduces|reducing|prevent|prevents|limit|limits|"
                     r"fewer|less)\b", re.I)


# A dismissal ("也无所谓", "基本没影响", "doesn't matter") holds a negation but reverses a point that says
# "avoid X" or "X matters": it is not the point's "not" said another way.
_DISMISS = re.compile(r"无所谓|没关系|不重要|无关紧要|(?:基本|几乎)?没(?:什么|啥)?(?:影响|作用|帮助|用|区别)|不影响|不会变|没变|"
                      # neglect: "专家失衡不用管", "别担心过拟合", "don't worry about imbalance"
                      r"(?:不用|不必|无需|不要|别)(?:去)?(?:管|担心|在意|理会)|"
                      r"\b(?:don't|do not|no need to|needn't)\s+(?:really\s+)?(?:worry|bother|care)\b|"
                      r"\b(?:doesn't|does not|don't|do not)\s+(?:really\s+)?(?:matter|change|help|affect)|"
                      r"\bno\s+(?:real\s+)?(?:effect|difference|impact)|\bno matter\b", re.I)


# Verbs of a point that fights the term ("避免专家失衡", "降低过拟合"): a dismissal of the term reverses it, although
# both hold a "not".
_AVOID = re.compile(r"避免|防止|预防|杜绝|减少|减小|降低|缓解|抑制|减轻|\b(?:avoid|prevent|reduce|mitigate)", re.I)


# A condition that sets a point's scene ("在不改动训练的前提下"): an answer that leaves it out does not reverse the point.
_CONDITION = re.compile(r"在([^，,；;。]{1,12}?)(?:的)?(?:前提下|情况下|条件下)")


def _setting_left_out(point: str, clause: str, spans: Sequence[tuple[int, int]], skip: Sequence[tuple[int, int]]) -> bool:
    """Whether the point's negations near its terms all sit in a setting (_CONDITION) whose words the clause does
    not touch: "直接把权重量化成 INT8" leaves out "在不改动训练的前提下", "边训边量化" does not (训)."""
    settings = list(_CONDITION.finditer(point))
    if not settings or scoped_negations(_CONDITION.sub(lambda m: "□" * len(m.group(0)), point), spans, skip):
        return False
    said = {ch for m in settings for ch in _NEG_CJK.sub("", mask_fixed(m.group(1)))
            if "\u4e00" <= ch <= "\u9fff" and ch not in _OBJECT_STOP}
    return not said & set(clause)


_OTHERWISE = re.compile(r"不然|否则")  # masked as no negation (_NOT_NEGATION); English "otherwise" is in _NEG_SENSE


def negative_sense(text: str) -> bool:
    """Whether ``text`` says "not" or "without" in any form (a negation, or a verb like 去掉/skip), dismissals
    ("无所谓", "doesn't matter") left out."""
    if _OTHERWISE.search(text):  # "不然模型会去学 prompt": what follows "otherwise" is what is avoided
        return True
    text = _DISMISS.sub(lambda m: "□" * len(m.group(0)), mask_fixed(text))
    return negations(text) > 0 or _NEG_SENSE.search(text) is not None


def _reduce_before(point: str, start: int) -> bool:
    """A reduce verb within SCOPE units before ``start`` in the point: "避免格式偏移" says what "减少…格式偏移" does."""
    return any(m.end() <= start and _units(point[m.end():start]) <= SCOPE for m in _REDUCE.finditer(point))


_NOT_ALL = re.compile(r"不[^，,。；;]{0,8}?(?:都|全部|所有|每)")  # "not all of it" says "less of it"


def _reduced(point: str, clause: str, spans: Sequence[tuple[int, int]]) -> bool:
    """The point says "reduce" the term (a reduce verb within SCOPE before one of ``spans``) and the clause
    does not say "reduce" itself (then its negation would govern that verb: "不会减少幻觉")."""
    if _REDUCE.search(clause):
        return False
    return any(_units(point[m.end():a]) <= SCOPE for m in _REDUCE.finditer(point) for a, _ in spans if m.end() <= a)


GAP = 4  # characters allowed between the negation and the term: "不需要额外训练", "并不缓存"

# Pairs of opposite claims, written from the field's usual contrasts (not from any eval answer).
ANTONYMS: tuple[tuple[str, str], ...] = (
    ("增加", "减少"), ("增大", "减小"), ("提高", "降低"), ("提升", "降低"), ("上升", "下降"), ("变大", "变小"),
    ("更多", "更少"), ("更大", "更小"), ("更高", "更低"), ("更长", "更短"), ("更快", "更慢"), ("加快", "减慢"),
    ("更省", "更费"), ("节省", "浪费"), ("更稳定", "更不稳定"), ("稳定", "不稳定"), ("需要", "无需"), ("需要", "不需要"),
    ("并行", "串行"), ("并行", "顺序"), ("全局", "局部"), ("静态", "动态"), ("稀疏", "稠密"), ("稀疏", "密集"),
    ("显式", "隐式"), ("在线", "离线"), ("摒弃", "沿用"), ("摒弃", "仍然使用"), ("更好", "更差"), ("常用", "很少"),
    ("省", "费"), ("小", "更大"), ("大", "更小"), ("少", "更多"), ("多", "更少"), ("快", "更慢"), ("慢", "更快"),
    ("低", "更高"), ("高", "更低"), ("结合", "互斥"), ("兼容", "不兼容"), ("减少", "增大"), ("降低", "增大"), ("降低", "升高"), ("缓解", "加剧"), ("避免", "导致"), ("容易", "困难"), ("更易", "更难"),
    ("简单", "复杂"), ("只", "全部"), ("仅", "全部"), ("只", "所有"), ("一次", "多次"), ("冻结", "全部更新"),
    ("有效", "无效"), ("可以", "不能"), ("单向", "双向"), ("之前", "之后"), ("前面", "后面"),
    ("提高", "下降"), ("提升", "下降"), ("增加", "下降"), ("增强", "削弱"), ("增强", "减弱"), ("加快", "变慢"),
    ("促进", "阻碍"), ("促进", "妨碍"), ("促进", "抑制"),
    ("increase", "decrease"), ("increases", "decreases"), ("more", "less"), ("more", "fewer"),
    ("higher", "lower"), ("larger", "smaller"), ("faster", "slower"), ("stable", "unstable"),
    ("parallel", "sequential"), ("global", "local"), ("static", "dynamic"), ("sparse", "dense"),
    ("reduce", "increase"), ("reduces", "increases"), ("easier", "harder"), ("only", "all"), ("once", "repeatedly"),
    ("help", "hinder"), ("helps", "hinders"),
    # order, exactness and quantity (general words of the field: "生成前检索", "精确注意力", "少量专家")
    ("前", "之后"), ("前", "以后"), ("before", "after"), ("精确", "近似"), ("exact", "approximate"),
    ("少量", "所有"), ("少量", "全部"), ("部分", "全部"), ("部分", "所有"), ("a few", "all"), ("some", "all"),
    # mean against sum (general words: "平均负对数似然" is not "负对数似然的总和")
    ("平均", "总和"), ("平均", "求和"), ("平均", "加总"), ("mean", "sum"), ("average", "sum"),
    # recall against precision (general metric words: "召回@k" is not "precision@k")
    ("召回", "precision"), ("召回", "精确率"), ("召回", "准确率"), ("recall", "precision"),
    # at once against one after another ("序列位置可同时计算" is not "按位置依次计算")
    ("同时", "依次"), ("同时", "逐个"), ("同时", "挨个"), ("并行", "依次"), ("并行", "逐个"), ("一次", "逐个"),
    ("at the same time", "one by one"), ("simultaneously", "sequentially"), ("in parallel", "one by one"),
) + tuple(
    # Direction verbs as two families, every word of one the opposite of every word of the other (general
    # Chinese, not the bank's: the hand-written pairs above missed e.g. 增加 vs 降低).
    (up, down) for up in ("增加", "增大", "提高", "提升", "上升", "升高", "加大", "增强", "加剧")
    for down in ("减少", "减小", "降低", "下降", "削弱", "减弱", "缓解", "减轻")
) + tuple(
    # the same two families in English, and across the languages (a Chinese point, an English answer)
    (up, down) for up in ("increase", "increases", "increased", "raise", "raises", "improve", "improves", "boost",
                          "boosts", "grow", "grows", "rise", "rises", "goes up", "go up", "增加", "增大", "提高", "提升",
                          "上升", "加大", "增强")
    for down in ("decrease", "decreases", "decreased", "reduce", "reduces", "reduced", "lower", "lowers", "drop",
                 "drops", "fall", "falls", "shrink", "shrinks", "goes down", "go down", "减少", "减小", "降低", "下降",
                 "削弱", "减弱")
    if not (up.isascii() is False and down.isascii() is False)  # the Chinese-only pairs are listed above
)
_COMPARE = re.compile(r"比|优于|胜过|好于|强于|不如|than\b|rather than|over\b", re.I)
_MORE = re.compile(r"更|比|优于|胜过|好于|强于|不如|than\b|better|worse|more|less|faster|slower|easier|harder", re.I)


_FIXED = re.compile("|".join(sorted(map(re.escape, _NOT_NEGATION), key=len, reverse=True)))


# An A-not-A question ("准不准", "要不要", "对不对", "有没有", "可以不可以") asks; it does not negate.
_A_NOT_A = re.compile(r"([\u4e00-\u9fff]{1,2})[不没]\1")


# Python's None in code ("mask=None", "if mask is not None") is a value, not a negation.
_CODE_NONE = re.compile(r"(?:=\s*|\bis\s+(?:not\s+)?|\(\s*)None\b")


@lru_cache(maxsize=4096)
def mask_fixed(text: str) -> str:
    """``text`` with the words of _NOT_NEGATION, A-not-A questions and code's None blanked (same length, offsets
    stay valid)."""
    text = _CODE_NONE.sub(lambda m: "□" * len(m.group(0)), text)
    text = _A_NOT_A.sub(lambda m: "□" * len(m.group(0)), text)
    return _FIXED.sub(lambda m: "□" * len(m.group(0)), text)


_CLAUSE_END = re.compile(r"[，,；;。！？!?：:\n]|\.(?=\s)")


def _clause_head(text: str, start: int) -> str:
    """``text`` from the start of ``start``'s clause up to ``start``."""
    head = text[:start]
    ends = list(_CLAUSE_END.finditer(head))
    return head[ends[-1].end():] if ends else head


def _clause_tail(text: str, start: int) -> str:
    """``text`` from ``start`` up to the end of its clause (the counterpart of _clause_head)."""
    return _CLAUSE_END.split(text[start:], 1)[0]


def negated_at(text: str, start: int) -> str:
    """The negation word that ends within GAP characters (or two English words) before ``start`` in its clause, or
    "": the 不 of "不需要参数，可以插值" ends the clause before 可, it does not negate it."""
    full = mask_fixed(text)
    masked = _clause_head(full, start)
    head = masked[max(0, len(masked) - GAP - 3) :]
    last = ""
    for m in _NEG_CJK.finditer(head):
        if len(head) - m.end() <= GAP and not _BREAK.search(head[m.end():]) and \
                not _negates_failure(masked + full[start:], len(masked) - len(head) + m.end()):
            last = m.group(0)
    if last:
        return last
    words = masked.split()[-3:]
    for w in words:
        if _NEG_EN.fullmatch(w.strip(",.;:").lower()) or w.lower().endswith("n't"):
            return w
    m = _NEG_EN.search(" ".join(w.strip(",.;:") for w in words))  # two words: "instead of storing"
    return m.group(0) if m else ""


def _negated_before(text: str, start: int) -> bool:
    """A negation anywhere between the start of ``start``'s clause and ``start`` (within SCOPE units)."""
    head = _clause_head(mask_fixed(text), start)
    for m in list(_NEG_CJK.finditer(head)) + list(_NEG_EN.finditer(head)):
        if _units(head[m.end():]) <= SCOPE:
            return True
    return False


# Privative prefixes: "zero X" (零参数, 零改权重) and "de-X" (去均值, 去重) say "no X", so a clause's negation of X
# agrees with them ("不需要参数", "不减均值").  Only that way round: a point's 零 or 去 never asks the clause for a
# negation (零初始化 is said as 初始化为零; 去 is also "go", as in 去预测).
_PRIVATIVE = re.compile(r"零(?![点一二三四五六七八九十])|去(?=[\u4e00-\u9fff])")


def _privative(point: str, spans: Sequence[tuple[int, int]], after: bool = False) -> bool:
    """A 零 or 去 within GAP characters before one of ``spans`` in the point, in the same clause, or opening it; with
    ``after``, also one within GAP characters after it ("RMSNorm 去均值": what RMSNorm does is a removal)."""
    for a, b in spans:
        head = _clause_head(point, a)[-GAP - 1:]
        if _PRIVATIVE.match(point[a:b]) or any(len(head) - m.end() <= GAP for m in _PRIVATIVE.finditer(head)):
            return True
        tail = _clause_tail(point, b)[:GAP + 1]
        if after and _PRIVATIVE.search(tail):
            return True
    return False


# Words that open a consequence or a reason between a negation and a term: the negation is the condition's or the
# purpose's, not the term's ("召回不到就拒答", "a KV cache so past keys aren't recomputed").
# 就是 ("just", "simply": "X 就是没用") and the 则 of 规则/原则/否则/准则/法则 are no break.
_BREAK = re.compile(r"就(?!是)|(?<![规原否准法细])则|才|从而|所以|因为|以便|\b(?:so|since|because|then|which|but)\b", re.I)


# Words of failure ("训崩", "发散", "diverge"): a negation right before one denies the failure ("也不容易训崩" says
# 易训), not the term it stands next to.
_FAILURE = re.compile(r"崩|发散|炸|失败|出错|报错|震荡|\b(?:diverg\w*|collaps\w*|blow(?:s)? up|crash\w*|explod\w*)", re.I)


def _negates_failure(masked: str, end: int) -> bool:
    """Whether a failure word follows within 8 characters of ``end`` (a negation's end) in its clause."""
    return _FAILURE.search(_clause_tail(masked, end)[:8]) is not None


def negations(text: str) -> int:
    """How many negation words ``text`` has, fixed words like 不同 left out."""
    masked = mask_fixed(text)
    return len(_NEG_CJK.findall(masked)) + len(_NEG_EN.findall(masked))


SCOPE = 8  # units (a CJK character or a Latin word) around a matched term that a negation can reach
_UNIT = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]+")


def _units(text: str) -> int:
    """How far apart two places are: a CJK character is one unit, a Latin word two (about a Chinese word)."""
    return sum(1 if "\u4e00" <= u[0] <= "\u9fff" else 2 for u in _UNIT.findall(text))


def scoped_negations(text: str, spans: Sequence[tuple[int, int]] = (),
                     skip: Sequence[tuple[int, int]] = (), point: str | None = None,
                     point_spans: Sequence[tuple[int, int]] = ()) -> int:
    """The negations of ``text`` within SCOPE units of one of the ``spans`` (matched terms), if any are given,
    and not inside a ``skip`` span: "without retraining" at the far end of "AWQ ... to INT4 without retraining"
    does not negate AWQ, and a matched name that holds a negation its counterpart lacks ("不用等一整批" for
    连续批处理) is the name, not a negation of it.  With the ``point``, a negation that only follows the terms
    (none of them after it) does not count when it denies a thing the point does not name (``_foreign_object``):
    "KTO 不需要成对数据" says nothing against "KTO 使用已标注偏好"."""
    if not spans:
        return negations(text)
    masked = mask_fixed(text)
    n = 0
    for m in list(_NEG_CJK.finditer(masked)) + list(_NEG_EN.finditer(masked)):
        if any(a <= m.start() < b for a, b in skip) or _negates_failure(masked, m.end()):
            continue
        # before a term, or inside it ("不改动训练" matched whole), or after it
        before = any(_units(masked[m.end():a]) <= SCOPE and not _BREAK.search(masked[m.end():a]) if m.end() <= a else
                     m.start() < b for a, b in spans)
        after = any(b <= m.start() and _units(masked[b:m.start()]) <= SCOPE and not _BREAK.search(masked[b:m.start()])
                    for a, b in spans)
        if not before and after and point is not None and _foreign_object(masked, m, point, point_spans):
            continue
        n += before or after
    return n


# Negations that take a thing as their object ("不需要成对数据", "without a reward model"): such a negation after
# the point's terms may deny something else of them, and says nothing against the point then.
_TAKES_OBJECT = re.compile(r"不需要?|无需|不用|不必|不再|没有|不要|\b(?:without|no longer|instead of|rather than|no)\b", re.I)
_CJK_PAIR = re.compile(r"[\u4e00-\u9fff]{2}")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")
_OBJECT_STOP = frozenset("的了是就也都很在把被会要能可还再这那它其实")  # function characters: no content of an object


def _content(text: str) -> set[str]:
    """The content pieces of ``text``: its CJK character pairs without function characters, and Latin words."""
    text = text.lower()
    pairs = {text[i:i + 2] for i in range(len(text) - 1)}
    return {g for g in pairs if _CJK_PAIR.fullmatch(g) and not set(g) & _OBJECT_STOP} | set(_LATIN_WORD.findall(text))


@lru_cache(maxsize=1)
def _tagger():
    """jieba's part-of-speech tagger over a dictionary of its own: the shared one gains the term lexicon when
    retrieval first tokenizes (coach.text), which would make a grade depend on what the process did before."""
    import jieba
    import jieba.posseg  # lazy: the tagger loads its dictionary on first use (about 0.7 s)
    return jieba.posseg.POSTokenizer(jieba.Tokenizer())


@lru_cache(maxsize=4096)
def _noun_final(text: str) -> bool:
    """Whether ``text`` ends in a noun (jieba's part-of-speech tags: n..., eng)."""
    tags = [w.flag for w in _tagger().cut(text) if w.word.strip()]
    return bool(tags) and (tags[-1].startswith("n") and tags[-1] != "vn" or tags[-1] == "eng")


def _foreign_object(masked: str, m: re.Match, point: str, point_spans: Sequence[tuple[int, int]]) -> bool:
    """Whether the clause's negation ``m`` (after its matched terms) denies a thing the point does not name, while
    the point says something of its terms besides naming them: "KTO 不需要成对数据" for "KTO 使用已标注偏好".
    The negation takes an object (_TAKES_OBJECT), its object (the rest of its clause, up to SCOPE units) ends in a
    noun and shares no content piece with the point.  A dismissal ("没有帮助", "没什么用") or a negated predicate
    ("不稳定", "不能一起用", "不需要单独评") still counts."""
    if not _TAKES_OBJECT.match(masked, m.start()):
        return False
    besides = point.lower()
    for a, b in sorted(point_spans, reverse=True):
        besides = besides[:a] + " " + besides[b:]
    if not _content(besides):  # the point only names its terms: any denial of them is against it
        return False
    tail = _clause_tail(masked, m.end())
    units = list(_UNIT.finditer(tail))[:SCOPE]
    obj = tail[:units[-1].end()].strip() if units else ""
    mine = _content(obj)
    return bool(mine) and not mine & _content(point) and _noun_final(obj)


def polarity_flip(point: str, clause: str, point_spans: Sequence[tuple[int, int]] = (),
                  clause_spans: Sequence[tuple[int, int]] = ()) -> str:
    """The clause negates and the point does not, or the reverse: "X 基本没影响" for "减少 X".

    With the matched terms' spans (``point_spans[i]`` and ``clause_spans[i]`` one concept's places), only
    negations near them count, and a name whose negations differ from its counterpart's is skipped."""
    pairs = list(zip(point_spans, clause_spans))
    differ = [(p, c) for p, c in pairs if negations(point[p[0]:p[1]]) != negations(clause[c[0]:c[1]])]
    n_point = scoped_negations(point, point_spans, [p for p, _ in differ])
    n_clause = scoped_negations(clause, clause_spans, [c for _, c in differ], point=point,
                                point_spans=point_spans)
    if n_point and n_clause and _AVOID.search(point) and not scoped_negations(
            _DISMISS.sub(lambda m: "□" * len(m.group(0)), clause), clause_spans, [c for _, c in differ]):
        return f"the answer's clause “{clause[:30]}” dismisses it"  # "专家失衡不用管" for "避免专家失衡"
    # with spans: negated or not (two "no"s in "no RM and no online RL" coordinate, they do not cancel)
    flip = (n_point > 0) != (n_clause > 0) if point_spans else n_point % 2 != n_clause % 2
    if flip and n_point > n_clause and negative_sense(clause):  # the clause says the point's "not" its own way
        return ""
    if flip and n_point > n_clause and _setting_left_out(point, clause, point_spans, [p for p, _ in differ]):
        return ""  # the point's "not" is its setting: "在不改动训练的前提下量化权重" for "直接把权重量化成 INT8"
    if flip and n_clause > n_point and _reduced(point, clause, point_spans) and \
            (any(negated_at(clause, c[0]) for c in clause_spans) or _NOT_ALL.search(mask_fixed(clause))
             or _DROP.search(mask_fixed(clause))):
        return ""  # "不保存中间激活", "不把每一层的中间结果都留着", "其余中间激活丢掉" for "减少中间激活保存"
    if flip and n_clause > n_point and _privative(point, point_spans, after=True):  # "不需要参数" for "零参数"
        return ""
    if flip and n_clause > n_point and _NEG_SENSE.search(point) and _DROP.search(mask_fixed(clause)):
        return ""  # the point's own removal, said in Chinese: "把超出的 token 丢掉" for "drop tokens"
    if flip:
        return f"the answer's clause “{clause[:30]}” negates it" if n_clause > n_point else NOT_NEGATIVE
    return ""


NOT_NEGATIVE = "the point is negative, the answer's clause is not"  # polarity_flip's reason for that side


def negation_flip(point: str, point_spans: Sequence[tuple[int, int]], clause: str,
                  clause_spans: Sequence[tuple[int, int]]) -> str:
    """A term negated in one text and not the other; spans are the matched terms' first occurrences.

    ``point_spans[i]`` and ``clause_spans[i]`` are the same concept's places in each text.
    """
    for (ps, pe), (cs, ce) in zip(point_spans, clause_spans):
        in_point, in_clause = negated_at(point, ps), negated_at(clause, cs)
        # the other side must be plainly positive: no negation earlier in its clause either ("无需 RM 与在线 RL"
        # negates 在线 RL too: a negation's scope runs over a coordination)
        if in_clause and not in_point and not _negated_before(point, ps) and not _reduced(point, clause, [(ps, pe)]) \
                and not _privative(point, [(ps, pe)]) and not (_AVOID.fullmatch(in_clause) and _reduce_before(point, ps)):
            return f"“{in_clause}” before “{clause[cs:ce]}”"
        if in_point and not in_clause and not _negated_before(clause, cs) and not negative_sense(clause):
            return f"the point says “{in_point}”, the answer does not"
    return ""


# Name-dropping: a sentence that only says the terms are related, or common ("跟 X、Y 有关", "这些都很常见").
_HEDGE = re.compile(r"(?:跟|和|与|同)[^。！？；;!?]{0,40}?(?:有关|有关系|相关(?![的地]?[\u4e00-\u9fff]{2}))|这些都|这些名字|之类的?|什么的|"
                    r"等等|(?:很|挺|比较)?常见|经常听到|都在用|都能做|各有优缺点|看场景|得看|面试(?:必|常)问|挺复杂|很火|"
                    # talk about the words rather than the things (session 6, general Chinese and English hedges)
                    r"(?:这|那)(?:些|几个|类|俩|两个)(?:词|名词|概念|名字|术语|缩写|关键词)|大家都(?:知道|熟|会提|在说|听过)|"
                    r"(?:经常|常常|总)(?:会)?(?:被)?(?:问到|提到|看到|听到)|面试(?:里|中)?(?:经常|常|必)|有(?:点|些|一定)关系|"
                    r"(?:注意|小心|留意)一(?:下|点)(?:就好|就行)?|看情况|因情况而异|挺火|"
                    # a list closed by "these", "do it once and it works", "it depends on the case" (session 8)
                    r"(?:这些|这几块|这几样|这些方面|这些东西|这些因素)(?=[，,。！？!?；;]|$)|(?:一下|做好|调好|弄好)就(?:行|好|可以)|"
                    r"(?:要|得)?看具体(?:情况|场景|任务|需求)|综合(?:考虑|评估|权衡)|"
                    # a list closed by a collective ("这几类", "这几个角度下手", "几个方面", "这一整套"), the details left to
                    # others ("具体以文档为准", "各家实现不太一样", "按经验调") (session 9, tune answers of batch s9)
                    r"(?:这|那)几(?:[个类种招条块样步点项套]|大类)(?:方面|角度|环节|技术|手段|方法|方向|招|路|种|类|块|步|点|项)?"
                    r"(?=[，,。！？!?；;]|$|下手|入手)|"
                    r"几个(?:方面|角度|环节)(?=[，,。！？!?；;]|$)|这一(?:整)?套(?=[，,。！？!?；;]|$)|以[^，,。；;]{0,6}为准|"
                    r"(?:不太|不大)一样|略有(?:差别|差异|不同)|有些变化|有所不同|各不相同|按经验(?:调|来|设)|"
                    r"看具体[\u4e00-\u9fff]{1,4}|组合着(?:用|调|来)|照着[^，,。；;]{0,6}就|"
                    r"and (?:stuff|so forth)|you just (?:use|call|add|set)|"
                    r"related to|has to do with|something like|and so on|etc\b|these (?:terms|words|names|buzzwords)|"
                    r"buzzwords?|comes? up a lot|people (?:talk|hear) about|be careful with", re.I)
_SENTENCE = re.compile(r"(?:[^。！？!?；;\n.]|\.(?!\s))+")  # an English ". " ends a sentence too


def is_hedge(text: str) -> bool:
    """Whether ``text`` has a name-dropping phrase (a key point may: "与 batch/模型大小相关")."""
    return _HEDGE.search(text) is not None


def hedged_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text`` that only name-drop (see _HEDGE)."""
    return [m.span() for m in _SENTENCE.finditer(text) if _HEDGE.search(m.group(0))]


_REVERSAL = re.compile(r"反而|恰恰相反|相反地|on the contrary|the opposite", re.I)


def reversal(point: str, clause: str) -> str:
    """The clause says "on the contrary" (反而) and the point does not."""
    m = _REVERSAL.search(clause)
    return f"“{m.group(0)}” in the answer" if m and not _REVERSAL.search(point) else ""


# A quantity: a number with an optional exponent and unit ("1e-4", "3%", "4bit", "4-bit", "0.1", "INT8" -> 8).
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])(?:int|fp|bf)?(\d+(?:\.\d+)?(?:e-?\d+)?)\s*-?\s*(%|bits?|b\b|k\b|x\b|倍|位)?",
                     re.I)


_RANGE = re.compile(r"(\d+(?:\.\d+)?(?:e-?\d+)?)\s*%?\s*(?:-|–|—|~|～|到|至|to)\s*(\d+(?:\.\d+)?(?:e-?\d+)?)")


def _quantities(text: str) -> set[tuple[str, str]]:
    """The (number, unit family) pairs of ``text``: "4bit" and "4 位" are (4, bit); "1e-4" is (1e-4, "")."""
    out = set()
    for m in _NUMBER.finditer(text.lower()):
        unit = (m.group(2) or "").rstrip("s")
        unit = {"位": "bit", "b": "bit", "倍": "x"}.get(unit, unit)
        if m.group(0).startswith(("int", "fp", "bf")):
            unit = "bit"
        out.add((m.group(1), unit))
    return out


def wrong_number(point: str, clause: str) -> str:
    """The clause states a quantity of the same kind (unit) as the point's, and none of the point's own:
    "8bit 量化加载基座" for "4bit 量化加载基座", "1e-2" for "1e-4 ~ 2e-5", "30%" for "1–3%"."""
    said = _quantities(point)
    if not said:
        return ""
    units = {u for _, u in said}
    ranges = [(min(a, b), max(a, b)) for a, b in ((float(m.group(1)), float(m.group(2)))
                                               for m in _RANGE.finditer(point.lower()))]
    stated = {q for q in _quantities(clause) if q[1] in units}
    inside = any(lo <= float(n) <= hi for n, _ in stated for lo, hi in ranges)  # "2%" in "1–3%"
    if stated and not inside and not stated & said and not {n for n, _ in stated} & {n for n, _ in said}:
        n, u = sorted(stated)[0]
        return f"the answer says “{n}{u}”, the point “{'/'.join(sorted(a + b for a, b in said))}”"
    return ""


# How a clause sets a name to a value: "=", ":", a Chinese verb of setting (设成/改为/传...), "set to".
_SETS = r"(?:\s*[:=](?!=)\s*|\s*(?:要|就|一般|通常|默认|应该|得|可以|最好|需要)?\s*(?:设成|设为|设置成|设置为|改成|改为|设|取|填|传入|传)\s*|\s+set\s+to\s+)"
_LITERAL = r"""("[^"\n]{1,20}"|'[^'\n]{1,20}'|[A-Za-z][\w.]*)"""
# Before the name, a condition or an alternative: "要 greedy 就 do_sample=False", "if you want greedy, ...".
_ALTERNATIVE = re.compile(r"如果|若|要是|假如|想要|否则|不然|换成|改用|要[^，,。；;]{1,12}就|(?<!也)就\s*$|"
                          r"\b(?:if|for|when|otherwise|instead)\b", re.I)


def wrong_value(point: str, clause: str, value: str | None) -> str:
    """The clause sets ``point`` (a code name) to another boolean or word than ``value``, the reference's, and
    names ``value`` nowhere ("do_sample=True 才采样，False 是贪心" says both); not after a condition or an
    alternative ("要 greedy 就 do_sample=False").  Numbers are left out: ``max_new_tokens=128`` is a choice, not a
    misconception.  A flag's value after a space counts only quoted or with a digit (``--dtype bfloat16``, not
    "--dtype sets the ...")."""
    if not value or not point or value.replace(".", "", 1).lstrip("-").isdigit():
        return ""
    if re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w.])", clause, re.I):
        return ""
    flag = point.startswith("--")
    sets = r"(?:\s*=\s*|[ \t]+)" if flag else _SETS  # a flag takes its value after a space
    for m in re.finditer(r"(?<![\w-])" + re.escape(point) + r"(?![\w-])" + sets + _LITERAL, clause, re.I):
        if _ALTERNATIVE.search(clause[:m.start()]):
            continue
        raw = m.group(1)
        got = raw.strip("'\"").lower()
        if flag and raw[0] not in "'\"" and "=" not in clause[m.start():m.start(1)] and not re.search(r"\d", got):
            continue
        if (got in ("true", "false")) == (value in ("true", "false")) and got != value:
            return f"the answer sets “{point}” to “{got}”, the reference to “{value}”"
    return ""


# Polar adjectives, each family two sides of one scale (general vocabulary of Chinese and English, not the
# bank's): a point's "低时延" against an answer's "时延高".  Only a word right next to a matched term counts.
POLAR: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("高", "大", "多", "长", "强", "重", "深", "宽", "high", "higher", "large", "larger", "big", "bigger", "many",
      "more", "long", "longer", "strong", "stronger", "heavy", "deep", "wide"),
     ("低", "小", "少", "短", "弱", "轻", "浅", "窄", "low", "lower", "small", "smaller", "few", "fewer", "less",
      "short", "shorter", "weak", "weaker", "light", "shallow", "narrow")),
    (("快", "fast", "faster", "quick", "quicker"), ("慢", "slow", "slower")),
    (("好", "优", "good", "better"), ("差", "坏", "劣", "bad", "worse", "poor")),
    (("易", "容易", "easy", "easier"), ("难", "困难", "hard", "harder", "difficult")),
    (("简单", "简洁", "simple", "simpler"), ("复杂", "繁琐", "complex", "complicated")),
)
_POLAR_SIGN = {w: (f, 1 if side == 0 else -1) for f, fam in enumerate(POLAR) for side in (0, 1) for w in fam[side]}
_MEDIOCRE = {"一般": (0, -1), "平平": (0, -1)}  # said only at a clause's end (_AFTER), never a pole of the point's own
_CJK_POLAR = "|".join(sorted((w for w in _POLAR_SIGN if not w.isascii()), key=len, reverse=True))
_EN_POLAR = "|".join(sorted((w for w in _POLAR_SIGN if w.isascii()), key=len, reverse=True))
# Degree and linking words allowed between a term and its adjective ("时延很高", "吞吐都偏低", "latency is high").
_DEGREE = r"(?:很|较|更|偏|太|过|都|也|会|就|变|得|还|要|非常|相对|比较|明显|显著|更加|特别|极|最|越|用|取|设为|设成|调|一般|通常|往往|总是|一定|其实|反而|基本)"
_NOT = r"(?:不|没|没有|并不|不太|不够|not|never|isn't|aren't)?"
_FILLER = r"(?:这块|这里|方面|这个|给得|设得|取得|调得|定得)"  # "学习率这块一般给得比较大"
_AFTER = re.compile(rf"^\s*(?:的)?\s*(?:{_DEGREE}|{_FILLER}){{0,4}}\s*(?:(?:和|与|及|、|/|比|than)\s*(?:[\u4e00-\u9fff]|[A-Za-z0-9._-]+|\s){{1,8}}?\s*)?({_NOT})\s*{_DEGREE}{{0,3}}\s*({_NOT})\s*({_CJK_POLAR})"
                    # "一般" / "平平" closing the clause right after the term: mediocre, the low side ("高并发下吞吐一般")
                    rf"|^\s*(?:也|都|就|其实|比较|很)?\s*(一般|平平)(?=\s*(?:[，,。；;！？!?]|$))"
                    rf"|^\s*(?:is|are|was|were|gets?|becomes?|stays?|remains?)?\s*(not|never)?\s*"
                    rf"(?:very|much|too|quite|relatively|so|even)?\s*()({_EN_POLAR})\b", re.I)
_BEFORE = re.compile(rf"({_NOT})\s*{_DEGREE}{{0,2}}\s*({_CJK_POLAR})\s*(?:的)?\s*$|\b(not)?\s*()({_EN_POLAR})\s+$", re.I)


# Words that start with a polar character and name a quantity or a thing, not a degree ("上下文长度", "大模型").
_NOT_POLAR = re.compile("长度|大小|多少|高度|深度|宽度|强度|难度|难点|好处|多样|大量|少量|多数|少数|大模型|大语言模型|小模型|"
                        "多头|多轮|多模态|多任务|长期|短期|重要|重新|重复|轻量|大致|大概|多次|少许")


@lru_cache(maxsize=4096)
def _mask_polar(text: str) -> str:
    """``mask_fixed`` plus the words of _NOT_POLAR blanked (same length)."""
    return _NOT_POLAR.sub(lambda m: "□" * len(m.group(0)), mask_fixed(text))


def _polarity(text: str, span: tuple[int, int]) -> tuple[int, int] | None:
    """(family, +1/-1) of the polar adjective right before or after ``text[span]``, a negation flipping it."""
    a, b = span
    masked = _mask_polar(text)
    head, tail = masked[max(0, a - 8):a], masked[b:b + 24]  # "吞吐会比 HF generate 更低"
    m = _BEFORE.search(head)
    if m is not None and re.search(r"[A-Za-z0-9]\s*$", head[:m.start(2) if m.group(2) else m.start()]):
        m = None  # "latency 低 throughput 高": the 低 is latency's, said after it
    if m is None:
        m = _AFTER.search(tail)
    if m is None:
        return None
    groups = [g for g in m.groups()]
    word = next(g for g in reversed(groups) if g)
    family, sign = _POLAR_SIGN.get(word.lower()) or _MEDIOCRE[word]
    if any(g for g in groups[:-1] if g and g.lower() in ("不", "没", "没有", "并不", "不太", "不够", "not", "never",
                                                           "isn't", "aren't")):
        sign = -sign
    return family, sign


def polar_flip(point: str, point_spans: Sequence[tuple[int, int]], clause: str,
               clause_spans: Sequence[Sequence[tuple[int, int]]]) -> str:
    """A matched term with a polar adjective on one side of a scale in the point and the other in the clause:
    ``polar_flip("低时延高吞吐", [(1, 3)], "时延高、吞吐低", [[(0, 2)]])`` -> "“低” … “高”".

    ``point_spans[i]`` is one concept's place in the point, ``clause_spans[i]`` all of its places in the clause;
    the clause must not also say the point's side next to the same term."""
    for ps, cs in zip(point_spans, clause_spans):
        said = _polarity(point, ps)
        if said is None:
            continue
        seen = [q for q in (_polarity(clause, c) for c in cs) if q is not None and q[0] == said[0]]
        if seen and all(q[1] != said[1] for q in seen):
            return f"“{point[ps[0]:ps[1]]}” is {'+-'[said[1] < 0]} in the point, the answer says the opposite"
    return ""


def antonym(point: str, clause: str, spans: Sequence[tuple[int, int]] = ()) -> str:
    """An antonym pair split between the point and the clause (each side absent from the other text).

    With ``spans`` (the matched terms' places in the clause), the clause's side must govern one of them: the
    term within NEAR_AFTER units after it (its object: "降低了显存", "reduces the memory") or NEAR_BEFORE units
    before it (its subject: "吞吐下降", "throughput goes down").  In "It reduces hallucinations and keeps answers
    up to date", "reduces" is about hallucinations, not about 时效性 (up to date) further on."""
    c = mask_fixed(clause.lower())
    for x, y in _sides(point):
        if _has(c, y) and not _has(c, x) and (not spans or _near(c, y, spans)):
            return f"“{x}” in the point, “{y}” in the answer"
    return ""


def _near(text: str, word: str, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether an occurrence of ``word`` in ``text`` is within SCOPE units of one of ``spans``."""
    pattern = r"(?<![a-z])" + re.escape(word) + r"(?![a-z])" if word.isascii() else re.escape(word)
    for m in re.finditer(pattern, text):
        for a, b in spans:
            if m.end() <= a and _units(text[m.end():a]) <= NEAR_AFTER:
                return True
            if b <= m.start() and _units(text[b:m.start()]) <= NEAR_BEFORE:
                return True
            if a < m.end() and m.start() < b:  # the word is inside the matched name
                return True
    return False


NEAR_AFTER, NEAR_BEFORE = 4, 6  # units (see _units) between an antonym and the term it governs


@lru_cache(maxsize=4096)
def _sides(point: str) -> tuple[tuple[str, str], ...]:
    """The (said, opposite) pairs whose first side the point says and whose second it does not.  A comparative
    opposite ("更大" of "小") whose base the point says too ("小显存下 … 等效大 batch") is ambiguous there: the
    answer's "更大 batch" agrees with the point's "大 batch", so that pair is left out."""
    p = mask_fixed(point.lower())
    return tuple((x, y) for a, b in ANTONYMS for x, y in ((a, b), (b, a))
                 if _has(p, x) and not _has(p, y) and not (y.startswith("更") and _has(p, y[1:])))


def _has(text: str, word: str) -> bool:
    """``word`` in ``text``: English as a whole word; 稳定/需要 only where no 不/无 stands before them."""
    if word.isascii():
        return re.search(r"(?<![a-z])" + re.escape(word) + r"(?![a-z])", text) is not None
    if word in ("稳定", "需要", "更稳定"):
        return re.search(r"(?<![不无])" + re.escape(word), text) is not None
    if word == "前":  # "before", not 前提/前向/目前/提前/前馈/前缀/前端/前面
        return re.search(r"(?<![目提])前(?![提向馈缀端面沿景])", text) is not None
    return word in text


def swapped(point: str, subject: tuple[int, int] | None, clause: str, clause_subject: Sequence[tuple[int, int]]) -> str:
    """The point's subject (its first matched term, in a comparative point) after the clause's comparison word."""
    if subject is None or not _MORE.search(point) or not clause_subject:
        return ""
    m = _COMPARE.search(clause)
    if m is None:
        return ""
    before = [s for s in clause_subject if s[0] < m.start()]
    after = [s for s in clause_subject if s[0] >= m.end()]
    pm = _COMPARE.search(point)
    point_subject_after = pm is not None and subject[0] >= pm.end()
    if after and not before and not point_subject_after:
        return f"“{clause[after[0][0]:after[0][1]]}” is compared against (after “{m.group(0)}”), the point says it wins"
    if before and not after and point_subject_after:
        return f"“{clause[before[0][0]:before[0][1]]}” stands before “{m.group(0)}”, the point has it after"
    return ""


def role_swap(point: str, point_spans: Sequence[tuple[int, int]], clause: str,
              clause_spans: Sequence[Sequence[tuple[int, int]]]) -> str:
    """Two matched terms on either side of a verb in the point, and on the other sides of the same verb in the
    clause: "用 Student 的输出去监督 Teacher" for "用 Teacher 预测监督 Student".  The terms are two Latin names, the verb
    a CJK character pair of the point between them; a passive ("Student 被 Teacher 监督") keeps the verb after both,
    so it does not fire."""
    pairs = list(zip(point_spans, clause_spans))
    for i, (pa, qa) in enumerate(pairs):
        for pb, qb in pairs[i + 1:]:
            first, second = (pa, qa), (pb, qb)
            if pb[0] < pa[0]:
                first, second = second, first
            (p1, q1), (p2, q2) = first, second
            names = point[p1[0]:p1[1]], point[p2[0]:p2[1]]
            if p1[1] > p2[0] or names[0].lower() == names[1].lower() or \
                    not all(re.fullmatch(r"[A-Za-z][\w.+-]*", n.strip()) for n in names):
                continue  # two distinct names (Teacher, Student): roles are held by named things
            verbs = _content(point[p1[1]:p2[0]])
            for a2, b2 in q2:
                for a1, b1 in q1:
                    if b2 > a1:
                        continue
                    between = clause[b2:a1].lower()
                    verb = next((v for v in sorted(verbs) if v in between and not v.isascii()), "")
                    if verb and _units(between) <= 2 * SCOPE and not _CLAUSE_END.search(between):
                        return (f"“{clause[a2:b2]}” and “{clause[a1:b1]}” stand on the other sides of “{verb}” "
                                "than in the point")
    return ""


# "把滑窗注意力换回全局注意力": the term before such a verb is what the answer does away with.  改用 is left out: its
# object follows it ("训练时改用 BF16"), and so is a verb before a term, which names what the answer uses instead.
_REPLACE = re.compile(r"换成|换回|换为|换掉|替换成|替换为|替换掉|改成|改为|改回|replaced? (?:it )?(?:with|by)|swap(?:ped)? for",
                      re.I)


def replaced(point: str, clause: str, clause_spans: Sequence[Sequence[tuple[int, int]]]) -> str:
    """The clause replaces one of the point's terms by something else ("把 X 换成 Y" for a point that says X), and
    the point replaces nothing; ``clause_spans[i]``: where the i-th matched term is in ``clause``.  A term after the
    verb ("把 FP16 换成 BF16" where the point names both) means the answer moves between the point's own things."""
    if _REPLACE.search(point):
        return ""
    for spans in clause_spans:
        for a, b in spans:
            m = _REPLACE.match(clause, b + len(clause[b:]) - len(clause[b:].lstrip()))
            if m is None:
                continue
            rest = _clause_tail(clause, m.end())
            end = m.end() + len(rest)
            if not any(m.end() <= x and y <= end for other in clause_spans for x, y in other):
                return f"the answer replaces “{clause[a:b]}” (“{m.group(0)}”)"
    return ""


_ALTERNATIVES = re.compile(r"^[^，,。；;]{0,4}(?:/|、|与|和|及|或|\bor\b|\band\b)[^，,。；;]{0,4}$", re.I)
_FRAME_STOP = frozenset("与和及跟同或、的了是就也都很在把被会要能可还再这那它其实")  # no frame: coordinations, function words


def slot_swap(point: str, point_spans: Sequence[Sequence[tuple[int, int]]], clause: str,
              clause_spans: Sequence[Sequence[tuple[int, int]]]) -> str:
    """Another of the point's terms sits where the point has this one: "只对 prompt 区计 loss" for "仅对答案区计 loss
    （prompt label=-100）".  ``point_spans[i]`` and ``clause_spans[i]``: every place of the i-th matched term in each
    text.  The frame is the CJK character before the term and the two after it in the point (a coordination or a
    function character is no frame: "A 与 B 结合" said as "B 与 A 结合" is the same claim); the point's own term
    must not sit in that frame in the clause, nor the other term in the point."""
    framed = lambda text, a, b, left, right: (text[:a].rstrip().endswith(left)  # noqa: E731
                                              and text[b:].lstrip().startswith(right))
    for i, spans in enumerate(point_spans):
        for a, b in spans:
            left, right = point[:a].rstrip()[-1:], point[b:].lstrip()[:2]
            if not (CJK.fullmatch(left) and _CJK_PAIR.fullmatch(right)) or set(left + right) & _FRAME_STOP:
                continue
            if any(framed(clause, x, y, left, right) for x, y in clause_spans[i]):
                continue
            for j, other in enumerate(clause_spans):
                if j == i or any(framed(point, x, y, left, right) for x, y in point_spans[j]) or \
                        any(_ALTERNATIVES.search(point[min(b, y):max(a, x)]) for x, y in point_spans[j]):
                    continue  # the point names both as alternatives: "schema 约束/正则" said as "用正则约束"

                for x, y in other:
                    if framed(clause, x, y, left, right):
                        return f"the answer puts “{clause[x:y]}” where the point has “{point[a:b]}”"
    return ""


__all__ = ["slot_swap", "replaced", "role_swap", "NOT_NEGATIVE", "polar_flip", "POLAR", "negative_sense", "negated_at", "negations", "scoped_negations", "SCOPE", "polarity_flip", "negation_flip", "antonym", "wrong_number", "wrong_value", "reversal", "swapped", "hedged_sentences", "is_hedge", "mask_fixed", "ANTONYMS", "GAP"]
