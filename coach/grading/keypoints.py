"""A reference answer's key points, and the answer's clauses they are compared with.

    key_points("推理时缓存历史 K/V，后续步只计算新 token 与缓存交互，减少重复计算与显存拷贝。")
    -> ["推理时缓存历史 K/V", "后续步只计算新 token 与缓存交互", "减少重复计算与显存拷贝"]

A reference is split into its key points (clauses and listed terms, split on
Chinese and English punctuation outside brackets; code blocks give their comment
lines and the names they call, import or pass as keywords).  Labelled sets
(eval/grader_set.jsonl) point into this list by index, so ``key_points`` must not
change for the seed bank: tests/test_grader.py pins a hash of every seed point.

``clauses(answer)`` gives the answer's clauses with their offsets, so that any
verdict can name the exact span of the answer it rests on.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from ..text import normalize, tokenize

# Brackets whose content stays with the term before it: "ALiBi（长度外推友好、实现简单）" is one point.
_OPEN, _CLOSE = "（([【{「《", "）)]】}」》"
_SPLIT = set("，,；;。！？!?、：:→\n")
_CLAUSE_SPLIT = re.compile(r"(?:[，,；;。！？!?、：:→\n]|\.(?=\s))+")  # an English ". " ends a clause too
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_MARKUP = re.compile(r"\*\*|__|`")
_IDENT = re.compile(r"--[A-Za-z][\w-]+|[A-Za-z_][A-Za-z0-9_]*")
_WORDY = re.compile(r"\w")
_SPACES = re.compile(r"\s+")
_TOPICAL = re.compile(r"[\u4e00-\u9fff]|[A-Za-z]{3,}")  # a comment worth a point has a CJK character or a word
# Names in code that say nothing about the topic.
_CODE_NOISE = frozenset(keyword.kwlist) | frozenset(
    "print float int str len sum range list dict set tuple open self cls exp item inf none true false "
    "to cuda cpu append dim size args".split()
)


def key_points(reference: str) -> list[str]:
    """The reference's key points, in order, without duplicates (pure)."""
    points: list[str] = []
    prose = _FENCE.sub("\n", reference)
    for block in _FENCE.findall(reference):
        points.extend(_code_points(block))
    points = _prose_points(prose) + points
    seen, out = set(), []
    for p in points:
        key = p.lower()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _prose_points(text: str) -> list[str]:
    text = _MARKUP.sub("", text)
    pieces, buf, depth = [], [], 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        spaced_plus = ch == "+" and text[i - 1 : i] == " " and text[i + 1 : i + 2] == " "  # "A + B" lists terms
        if (ch in _SPLIT or spaced_plus) and depth == 0:
            pieces.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    pieces.append("".join(buf))
    points: list[str] = []
    for piece in pieces:
        piece = _SPACES.sub(" ", piece).strip(" -*>+\t")
        if not piece:
            continue
        if not _meaningful(piece) and points:  # "等", "L" alone: keep it with the clause before
            points[-1] = f"{points[-1]}，{piece}"
        elif _WORDY.search(piece):
            points.append(piece)
    return points


def _meaningful(piece: str) -> bool:
    return len(_WORDY.findall(piece)) >= 2 and bool(tokenize(piece))


def _code_points(code: str) -> list[str]:
    """Comment lines, then the names a snippet imports, calls, passes as keywords or uses as CLI flags."""
    comments, names = [], []
    assigned = set()
    for line in code.splitlines():
        body, _, comment = line.partition("#")
        comment = normalize(comment)
        if comment and _TOPICAL.search(comment):
            comments.append(comment)
        stripped = body.strip()
        if m := re.match(r"([A-Za-z_]\w*)\s*=(?!=)", stripped):
            assigned.add(m.group(1))
        if m := re.match(r"from\s+\S+\s+import\s+(.+)", stripped):
            names.extend(n.strip() for n in m.group(1).split(","))
            continue
        if stripped.startswith("import "):
            continue
        for m in _IDENT.finditer(body):
            name, rest = m.group(0), body[m.end():].lstrip()
            called = rest.startswith("(")
            kwarg = rest.startswith("=") and not rest.startswith("==")
            flag = name.startswith("--")
            if (called or kwarg or flag) and name not in assigned:
                names.append(name)
    names = [n for n in names if len(n.strip("-")) >= 3 and n.lower() not in _CODE_NOISE]
    return comments + names


@dataclass(frozen=True)
class Clause:
    """A clause of the (normalised) answer and where it sits in it: ``answer[start:end] == text``."""

    text: str
    start: int
    end: int


def clauses(answer: str) -> list[Clause]:
    """The answer's clauses (split like key points, on punctuation and arrows), with offsets, in order.

    ``clauses("缓存 K/V，只算新 token。")`` -> ``[Clause("缓存 K/V", 0, 6), Clause("只算新 token", 7, 16)]``
    """
    out: list[Clause] = []
    pos = 0
    for m in _CLAUSE_SPLIT.finditer(answer + "\n"):
        piece = answer[pos : m.start()]
        lead = len(piece) - len(piece.lstrip())
        text = piece.strip()
        if text and _WORDY.search(text):
            out.append(Clause(text, pos + lead, pos + lead + len(text)))
        pos = m.end()
    return out


# A literal a setting takes in code: a short quoted word, a number, a boolean, or a bare lower-case word ("auto").
_VALUE = r"""(?:"[A-Za-z0-9_]{1,12}"|'[A-Za-z0-9_]{1,12}'|-?\d+(?:\.\d+)?(?:e-?\d+)?|True|False|[a-z][a-z0-9_]{0,11})"""
_KWARG_VALUE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*=(?!=)\s*(" + _VALUE + r")(?![\w.\[(])")
_FLAG_VALUE = re.compile(r"(--[A-Za-z][\w-]*)[ \t]+(" + _VALUE + r")(?=\s|$)", re.M)
_FREE_NAME = re.compile(r"(?:^|_)(?:key|id|model|name|path|dir|url|file|files)$")  # values the candidate picks freely


def code_values(reference: str) -> dict[str, str]:
    """The literal each name (keyword argument or CLI flag) is set to in the reference's code (pure):
    ``bnb_4bit_quant_type="nf4"`` -> {"bnb_4bit_quant_type": "nf4"}, ``--dtype auto`` -> {"--dtype": "auto"};
    lower-cased, quotes dropped.  Left out: a name set to two values, expressions (``t["input_ids"]``), and free
    choices (api_key, model, paths: a candidate's own "EMPTY" or "local" is not wrong).  The grader looks names
    up by key point (offline.wrong_values), so names that are no key point do nothing."""
    blocks = _FENCE.findall(reference)
    if not blocks:
        return {}
    seen: dict[str, set[str]] = {}
    for block in blocks:
        for pattern in (_KWARG_VALUE, _FLAG_VALUE):
            for m in pattern.finditer(block):
                seen.setdefault(m.group(1), set()).add(m.group(2).strip("'\"").lower())
    return {name: next(iter(v)) for name, v in seen.items()
            if len(v) == 1 and not _FREE_NAME.search(name.lstrip("-").lower())}


def flat(text: str) -> str:
    """The form evidence is compared in: NFKC, markup and whitespace gone, lower-cased."""
    return re.sub(r"\s+", "", _MARKUP.sub("", normalize(text)).lower())


__all__ = ["key_points", "clauses", "Clause", "code_values", "flat"]
