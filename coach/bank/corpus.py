"""Parse Markdown question banks into Sections with stable ids.

A bank looks like the seed file ``corpus/llm_interview_qa.md``::

    ## A. 架构基础（Transformer）        <- category
    **13. KV Cache 原理？**              <- numbered question  -> id Q13
     推理时缓存历史 K/V……                <- body (until the next question/heading/rule)
    **1) Scaled Dot-Product Attention**  <- code snippet        -> id I1
    ```python ... ```                    <- code blocks are kept intact
    - **Q：RoPE 与 ALiBi 何时选？**       <- follow-up drill      -> id J2
       A：……

The primary bank (the seed) keeps plain ids (Q13, I2, J4).  Any other bank in
``corpus/`` gets its file stem as a prefix (``mybank:Q3``) so ids stay unique and
do not change when files are added.  Anything malformed raises CorpusError naming
the file and line.  Hand-written on purpose: the bank's shape is ours, no
Markdown library knows what a "question" is.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..types import Section

PRIMARY_BANK = "llm_interview_qa.md"

_CATEGORY = re.compile(r"^##\s+(.+?)\s*$")
_NUMBERED = re.compile(r"^\*\*\s*(\d+)\.\s*(.+?)\s*\*\*\s*$")  # **13. title**
_SNIPPET = re.compile(r"^\*\*\s*(\d+)\)\s*(.+?)\s*\*\*\s*$")  # **1) title**
_DRILL = re.compile(r"^\s*[-*]\s+\*\*\s*Q[：:]\s*(.+?)\s*\*\*\s*$")  # - **Q：title**
_RULE = re.compile(r"^\s*(-{3,}|\*{3,}|_{3,})\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_ANSWER_PREFIX = re.compile(r"^\s*A[：:]\s*")


class CorpusError(ValueError):
    """A bank file is missing, empty or malformed; the message names file and line."""


def load_corpus(corpus_dir: str | Path, primary: str = PRIMARY_BANK) -> list[Section]:
    """Every ``*.md`` bank in ``corpus_dir``, primary first, others by name."""
    folder = Path(corpus_dir)
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {folder} does not exist: create it and put a Markdown bank in it")
    files = sorted(folder.glob("*.md"), key=lambda p: (p.name != primary, p.name))
    if not files:
        raise CorpusError(f"corpus folder {folder} holds no .md bank: copy the seed bank there ({primary})")
    sections: list[Section] = []
    seen: dict[str, Section] = {}
    for path in files:
        prefix = "" if path.name == primary else _prefix(path)
        for sec in parse_bank(_read(path), path.name, prefix):
            if sec.id in seen:
                other = seen[sec.id]
                raise CorpusError(
                    f"{path.name}:{sec.line}: id {sec.id} is already used at {other.source}:{other.line}"
                )
            seen[sec.id] = sec
            sections.append(sec)
    return sections


def corpus_fingerprint(corpus_dir: str | Path) -> str:
    """sha256 over the names and bytes of the bank, glossary, off-topic and similar-question files: the index's
    staleness key."""
    digest = hashlib.sha256()
    folder = Path(corpus_dir)
    files = {*folder.glob("*.md"), *folder.glob("*glossary*.json"), *folder.glob("*off_topic*.jsonl"),
             *folder.glob("*similar_questions*.jsonl")}
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def parse_bank(text: str, source: str, prefix: str = "") -> list[Section]:
    """Parse one bank's text; ``source`` is used in ids' errors and in Section.source."""
    if not text.strip():
        raise CorpusError(f"{source}:1: the file is empty; a bank needs '## ' categories and '**1. question**' lines")
    sections: list[Section] = []
    category = ""
    current: dict | None = None  # the section being collected
    fence_line = 0  # line of an open ``` fence, 0 when none
    used: dict[str, int] = {}

    def close() -> None:
        if current is None:
            return
        body = "\n".join(current["lines"]).strip()
        if current["kind"] == "J":
            body = _ANSWER_PREFIX.sub("", body, count=1)
        if not body:
            raise CorpusError(f"{source}:{current['line']}: question '{current['title']}' has no answer below it")
        sections.append(Section(current["id"], current["title"], category_at[current["id"]], body, source, current["line"]))

    category_at: dict[str, str] = {}
    drill_no = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if fence_line:
            if _FENCE.match(line):
                fence_line = 0
            if current is not None:
                current["lines"].append(line)
            continue
        if _FENCE.match(line):
            fence_line = lineno
            if current is None:
                raise CorpusError(f"{source}:{lineno}: code block outside any question; put it under a '**N) title**' line")
            current["lines"].append(line)
            continue
        head = _CATEGORY.match(line)
        found = None
        if m := _NUMBERED.match(line):
            found = ("Q", m.group(1), m.group(2))
        elif m := _SNIPPET.match(line):
            found = ("I", m.group(1), m.group(2))
        elif m := _DRILL.match(line):
            drill_no += 1
            found = ("J", str(drill_no), m.group(1))
        if head or found or _RULE.match(line):
            close()
            current = None
        if head:
            category = head.group(1)
            continue
        if found:
            kind, number, title = found
            if not category:
                raise CorpusError(f"{source}:{lineno}: question before any '## ' category heading")
            sid = f"{prefix}{kind}{int(number)}"
            if sid in used:
                raise CorpusError(f"{source}:{lineno}: {kind}{number} repeats the id first used on line {used[sid]}")
            used[sid] = lineno
            category_at[sid] = category
            current = {"id": sid, "title": title, "kind": kind, "line": lineno, "lines": []}
            continue
        if current is not None:
            current["lines"].append(line)
        elif category and line.strip() and not _RULE.match(line):
            raise CorpusError(
                f"{source}:{lineno}: text outside any question (after a rule or heading); move it under a "
                "'**N. question**' line or delete it"
            )
    if fence_line:
        raise CorpusError(f"{source}:{fence_line}: code block opened here is never closed with ```")
    close()
    if not sections:
        raise CorpusError(
            f"{source}:1: no questions found; a bank needs '## ' categories and lines like '**1. question**'"
        )
    return sections


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise CorpusError(f"{path.name}:{line}: not valid UTF-8 (byte {err.start}); save the file as UTF-8") from None


def _prefix(path: Path) -> str:
    stem = re.sub(r"[^0-9A-Za-z_\-]+", "_", path.stem).strip("_") or "bank"
    return f"{stem}:"
