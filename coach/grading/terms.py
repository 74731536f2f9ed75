"""The concepts a key point needs, how much each weighs, and where an answer names them.

    concepts = Concepts(glossary_groups)
    concepts.of("推理时缓存历史 K/V")   -> [Concept("g:推理"), Concept("g:缓存"), Concept("g:历史"), Concept("t:k"), ...]
    concepts.find(concept, "It caches the keys of past tokens")  -> [(3, 9)]   # "caches": cross-lingual

A concept is either a group of names of one thing (the bank's glossary, corpus/
glossary.json, plus coach/grading/lexicon.json: everyday words of the field in
Chinese and English, such as 缓存 / cache / 存起来, plus coach/grading/paraphrases.json:
for every section of the bank, the ways a candidate says its key points' terms and
claims, written blind from the bank) or, for the words of a point no group names,
the jieba token itself.  So an English "retrieval" finds 检索, and
"caches" finds 缓存.  A point's concepts are its longest group matches (a point
saying 多头自注意力 needs multi-head attention, not just attention) plus its
leftover tokens, minus negation words (those are polarity, see cues.py).

Weights come from how rare a word is in general text (wordfreq's Zipf scale,
already used by the decline model): ``weight = clip(6.5 - zipf, 0.5, 5)``, so 的,
模型 or "the" weigh little and softmax, 显存 or 缓存 a lot.

``Concepts.parts`` gives the words inside a concept's longer Chinese names (jieba's
cut, rare words only, names holding a negation left out), so the offline judge can
give part credit to an answer that says "对专家参数加点正则" for 专家正则.

English words match with their plural and tense endings (-s, -es, -ed, -ing): a
one-line suffix rule, on purpose, instead of a stemmer dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from ..text import CJK as _CJK, tokenize, word_zipf

LEXICON = Path(__file__).with_name("lexicon.json")
PARAPHRASES = Path(__file__).with_name("paraphrases.json")
NEGATIONS = frozenset("不 没 无 非 未 别 勿 无需 不需 不用 不必 没有 并非 不是 不会 不能 无法 不再 "
                      "not no never without cannot can't don't doesn't isn't won't none".split())
_LATIN = re.compile(r"[A-Za-z0-9]")
PART_WEIGHT = 2.0  # a word inside a name counts alone only if it is this rare (中间, 使用, 模型 are not)


@dataclass(frozen=True)
class Concept:
    """``key`` is ``"g:<first name>"`` for a group, ``"t:<token>"`` for a bare token."""

    key: str
    names: tuple[str, ...]
    weight: float


def load_lexicon(path: Path = LEXICON) -> list[tuple[str, ...]]:
    from ..bank.glossary import parse_glossary

    return parse_glossary(path.read_text(encoding="utf-8"), str(path))


def load_paraphrases(path: Path = PARAPHRASES) -> list[tuple[str, ...]]:
    """Every section's groups, flattened: ``{"about": ..., "sections": {"Q1": [[names], ...], ...}}``.

    The groups apply bank-wide (a candidate's wording is not tied to one question); errors name the section."""
    import json

    from ..bank.corpus import CorpusError
    from ..bank.glossary import parse_glossary

    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("sections"), dict):
        raise CorpusError(f"{path}: expected {{\"about\": ..., \"sections\": {{\"Q1\": [[names], ...]}}}}")
    groups: list[tuple[str, ...]] = []
    for sid, section_groups in data["sections"].items():
        groups.extend(parse_glossary(json.dumps(section_groups, ensure_ascii=False), f"{path} section {sid}"))
    return groups


@lru_cache(maxsize=4096)
def _pattern(name: str) -> re.Pattern:
    """Latin names as whole words with optional English endings, case-insensitive; CJK names anywhere."""
    if _LATIN.search(name):
        esc = re.escape(name.lower()).replace(r"\ ", r"\s*")
        return re.compile(r"(?<![a-z0-9])" + esc + r"(?:s|es|ed|d|ing)?(?![a-z0-9])", re.IGNORECASE)
    return re.compile(re.escape(name))


@lru_cache(maxsize=8192)
def weight_of(word: str) -> float:
    """``clip(6.5 - zipf, 0.5, 5)``: rare words weigh more (see the module docstring)."""
    return float(min(5.0, max(0.5, 6.5 - word_zipf(word.lower()))))


def _usable(name: str) -> bool:
    """One CJK character ("算", "长") or one Latin letter would match nearly everything."""
    return len(name) >= 2


class Concepts:
    """Concept extraction and matching over groups of names (glossary + lexicon)."""

    def __init__(self, groups: Iterable[Sequence[str]]):
        self.groups: list[tuple[str, ...]] = []
        for group in groups:
            names = tuple(n for n in dict.fromkeys(group) if _usable(n))
            if len(names) >= 1:
                self.groups.append(names)
        # name (lower) -> group indices, longest names first for the point's maximal matches
        self._names = sorted({(n, i) for i, g in enumerate(self.groups) for n in g}, key=lambda x: (-len(x[0]), x[0], x[1]))  # ties in a fixed order: no hash-seed dependence
        self._by_name: dict[str, list[int]] = {}
        for n, i in self._names:
            self._by_name.setdefault(n.lower(), []).append(i)
        self._all_names = sorted({n.lower() for n, _ in self._names}, key=len, reverse=True)

    @lru_cache(maxsize=4096)
    def of(self, point: str) -> tuple[Concept, ...]:
        """The point's concepts, in order of first appearance (groups by longest match, then leftover tokens)."""
        low = point.lower()
        taken = [False] * len(low)
        found: list[tuple[int, Concept]] = []
        seen: set[str] = set()
        for name, gi in self._names:
            if name.lower() not in low and not (" " in name and name.lower().replace(" ", "") in low):
                continue  # a cheap substring test first: most names are nowhere in the point
            for m in _pattern(name).finditer(low):
                if any(taken[m.start() : m.end()]):
                    continue
                for j in range(m.start(), m.end()):
                    taken[j] = True
                group = self.groups[gi]
                key = "g:" + group[0]
                if key not in seen:
                    seen.add(key)
                    # every group that has this name: the glossary's and the lexicon's views of one word
                    names = tuple(dict.fromkeys(x for j in self._by_name.get(name.lower(), [gi])
                                                for x in self.groups[j]))
                    found.append((m.start(), Concept(key, names, weight_of(m.group(0)))))
        rest = "".join(" " if t else ch for ch, t in zip(low, taken))
        for tok in tokenize(rest):
            if tok in NEGATIONS or "t:" + tok in seen:
                continue
            if not (_CJK.search(tok) or len(tok) >= 2 or tok.isdigit() or tok in ("k", "v", "q")):
                continue
            seen.add("t:" + tok)
            found.append((rest.find(tok), Concept("t:" + tok, (tok,), weight_of(tok))))
        found.sort(key=lambda x: x[0])
        return tuple(c for _, c in found)

    @lru_cache(maxsize=8192)
    def parts(self, concept: Concept) -> tuple[str, ...]:
        """The words inside the concept's longer Chinese names (jieba's cut: "专家正则化" -> 专家, 正则, 正则化),
        rare enough to mean something (weight >= PART_WEIGHT), for an answer that says the thing in its own
        order or only in part ("对专家参数加点正则")."""
        out: dict[str, None] = {}
        for name in _part_names(concept):
            for tok in tokenize(name):
                if len(tok) >= 2 and tok != name.lower() and _CJK.search(tok) and weight_of(tok) >= PART_WEIGHT:
                    out[tok] = None
        return tuple(out)

    def part_share(self, concept: Concept, said: set[str]) -> float:
        """The share of the concept's ``parts`` that the words ``said`` are."""
        parts = self.parts(concept)
        return len(said & set(parts)) / len(parts) if parts else 0.0

    @lru_cache(maxsize=8192)
    def _longer(self, name: str) -> tuple[str, ...]:
        """The other names that contain ``name`` ("kv cache" for "kv")."""
        return tuple(n for n in self._all_names if len(n) > len(name) and name in n)

    def find(self, concept: Concept, text: str, longest: bool = False) -> list[tuple[int, int]]:
        """Where any of the concept's names occurs in ``text`` (start, end), in order.

        With ``longest``, an occurrence of a Latin name strictly inside a longer name of any group is
        left out: "KV" inside "KV Cache" is not the K/V of a point."""
        spans = set()
        low = text.lower()
        for name in concept.names:
            name = name.lower()
            if name not in low and not (" " in name and name.replace(" ", "") in low):
                continue
            found = [m.span() for m in _pattern(name).finditer(low)]
            if longest and found and _LATIN.search(name):  # "KV" in "KV Cache"; CJK "稳" in "稳定" is still 稳
                covers = [m.span() for n in self._longer(name) if n in low for m in _pattern(n).finditer(low)]
                found = [s for s in found if not any(a <= s[0] and s[1] <= b for a, b in covers)]
            spans.update(found)
        return sorted(spans)


_NEGATING = re.compile(r"[不无没非未免别勿]")  # a name holding a negation: its words alone would say the opposite


def _part_names(concept: Concept) -> list[str]:
    """The names that ``Concepts.parts`` reads: Chinese, no Latin letter, three characters or more, and no
    negation (改动 alone, out of 不改动训练, is the reversed claim)."""
    return [n for n in concept.names if len(n) >= 3 and _CJK.search(n) and not _LATIN.search(n)
            and not _NEGATING.search(n)]


@lru_cache(maxsize=1)
def default_groups() -> tuple[tuple[str, ...], ...]:
    """The lexicon and paraphrases shipped with the grader (the Grader adds the bank's glossary when it has one)."""
    return tuple(load_lexicon()) + tuple(load_paraphrases())


def glossary_groups(corpus_dir) -> tuple[tuple[str, ...], ...]:
    """The bank's glossary groups, or none if the folder has no glossary."""
    from ..bank.glossary import load_glossary

    return load_glossary(corpus_dir).groups


__all__ = ["Concept", "Concepts", "NEGATIONS", "PART_WEIGHT", "weight_of", "load_lexicon", "load_paraphrases", "default_groups", "glossary_groups"]
