"""A terminology glossary: the other names of each term the bank uses, added to its search text.

Users write "retrieval-augmented generation" or "检索增强生成" where the bank
writes "RAG", and "投机解码" where it writes "Speculative Decoding"; neither
BM25 nor the small embedder bridges that reliably.  ``corpus/glossary.json``
lists groups of names of one concept, the bank's spelling first::

    [["RAG", "retrieval-augmented generation", "检索增强生成"],
     ["MoE", "Mixture of Experts", "混合专家"]]

When any name of a group occurs in a chunk, the group's other names become
that chunk's aliases (document expansion, so queries are not touched).  Every
``*glossary*.json`` file in the corpus folder is read; a bank added by a user
can bring its own.  Measured on both eval splits (eval/README.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

from .corpus import CorpusError

GLOSSARY_GLOB = "*glossary*.json"
MIN_NAME_CHARS = 2  # one-letter names ("Q", "K", "值") would match nearly every chunk


@dataclass(frozen=True)
class Glossary:
    """Groups of names of the same concept."""

    groups: tuple[tuple[str, ...], ...] = ()

    @cached_property
    def _patterns(self) -> tuple[tuple[tuple[str, re.Pattern], ...], ...]:
        return tuple(tuple((name, _pattern(name)) for name in group if len(name) >= MIN_NAME_CHARS)
                     for group in self.groups)

    def aliases(self, text: str) -> tuple[str, ...]:
        """The names, absent from ``text``, of every concept ``text`` names (first seen first, no repeats)."""
        out: list[str] = []
        seen: set[str] = set()
        for group in self._patterns:
            found = [bool(p.search(text)) for _, p in group]
            if not any(found):
                continue
            for (name, _), present in zip(group, found):
                if not present and name.lower() not in seen:
                    seen.add(name.lower())
                    out.append(name)
        return tuple(out)


def unmatched_groups(glossary: Glossary, texts: Sequence[str]) -> list[tuple[str, ...]]:
    """Groups none of whose names occurs in ``texts``: usually a spelling that differs from the bank's."""
    joined = "\n".join(texts)
    return [group for group, patterns in zip(glossary.groups, glossary._patterns)
            if not any(p.search(joined) for _, p in patterns)]


def _pattern(name: str) -> re.Pattern:
    """Latin names match as whole words, case-insensitively ("RAG" not inside "GraphRAG"); CJK names anywhere."""
    if re.search(r"[A-Za-z0-9]", name):
        return re.compile(r"(?<![A-Za-z0-9])" + re.escape(name) + r"(?![A-Za-z0-9])", re.IGNORECASE)
    return re.compile(re.escape(name))


def glossary_files(corpus_dir: str | Path) -> list[Path]:
    return sorted(Path(corpus_dir).glob(GLOSSARY_GLOB))


def load_glossary(corpus_dir: str | Path) -> Glossary:
    """Every glossary file in the corpus folder, merged; CorpusError names the file and line of a problem."""
    groups: list[tuple[str, ...]] = []
    for path in glossary_files(corpus_dir):
        groups.extend(parse_glossary(path.read_text(encoding="utf-8"), str(path)))
    return Glossary(tuple(groups))


def parse_glossary(text: str, source: str) -> list[tuple[str, ...]]:
    """A JSON list of lists of names; errors say ``source:line``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorpusError(f"{source}:{err.lineno}: not valid JSON ({err.msg}); a glossary is a JSON list of "
                          'lists of names, e.g. [["RAG", "检索增强生成"]]') from None
    if not isinstance(data, list):
        raise CorpusError(f"{source}:1: a glossary is a JSON list of lists of names, got {type(data).__name__}")
    lines = _group_lines(text)
    groups = []
    for i, group in enumerate(data):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(group, list) or not all(isinstance(n, str) for n in group):
            raise CorpusError(f"{source}:{line}: group {i + 1} must be a list of names (strings), got {group!r:.60}")
        names = tuple(dict.fromkeys(n.strip() for n in group if n.strip()))
        if len(names) < 2:
            raise CorpusError(f"{source}:{line}: group {i + 1} needs at least two names of the same concept, "
                              f"got {list(names)}")
        groups.append(names)
    return groups


def _group_lines(text: str) -> list[int]:
    """Line numbers where each top-level group starts (for error messages)."""
    lines, depth, line, in_str, escape = [], 0, 1, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "[":
            depth += 1
            if depth == 2:
                lines.append(line)
        elif ch == "]":
            depth -= 1
    return lines
