"""Deterministic history-aware queries: make an elliptical follow-up standalone.

``contextualize("那它的缺点是什么", ["KV Cache 的原理是什么？"])``
-> ``"KV Cache 的原理是什么? 那它的缺点是什么"`` (history is NFKC-normalised: ？ -> ?)

A follow-up is treated as elliptical when it refers back (它, 这个, 那, it,
that, ...) or is short and names no topic of its own.  The most recent user
turn that the follow-up leans on is then prepended; a self-contained question
is left alone, so a change of topic is not polluted by the last one.
The answering stage may replace this with an LLM condense prompt.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..text import normalize, tokenize

_REFERS_BACK = re.compile(
    r"(它|它们|这个|那个|这种|那种|这些|那些|其(?![他它实中次余])|该方法|上面|上述|刚才|前者|后者|这样|那样|为啥|类似|相似|替代|还有哪些|那么|^那|^这|^还有|^另外|^再|呢[？?]?$)"
    r"|\b(it|its|they|them|this|that|these|those|the former|the latter|what about|how about|and)\b",
    re.IGNORECASE,
)
# Words that ask *about* a topic without naming one: "缺点是什么" alone has no topic.
GENERIC = frozenset(
    "缺点 优点 优缺点 原理 区别 作用 好处 坏处 代价 例子 举例 代码 实现 写 怎么办 为什么 场景 应用 对比 比较 细节 "
    "问题 方法 用法 注意 注意事项 局限 局限性 限制 原因 解决 改进 优化 选 选择 取舍 参数 公式 具体 详细 展开 说说 讲讲 "
    "pros cons drawbacks drawback advantages advantage disadvantages downside downsides example code why "
    "difference differences work works explain more detail details use used when compare limitation limitations".split()
)


def is_elliptical(query: str) -> bool:
    """True when the query leans on earlier turns: it refers back, or names no topic."""
    return bool(_REFERS_BACK.search(query)) or all(tok in GENERIC for tok in tokenize(query))


def contextualize(query: str, history: Sequence[str] = (), force: bool = False) -> str:
    """The standalone query: the last earlier turn + the follow-up, or the query itself
    (``force=True`` joins them even when the query does not look elliptical)."""
    turns = [t for t in (normalize(h) for h in history) if t]
    if not turns or not (force or is_elliptical(query)):
        return query
    anchor = turns[-1]
    # A chain of follow-ups ("那它呢" after "那缺点呢") leans on the last self-contained turn too.
    for turn in reversed(turns):
        if not is_elliptical(turn):
            if turn != anchor:
                anchor = f"{turn} {anchor}"
            break
    return f"{anchor} {query}"
