"""Citation markers in model output: find them, keep the valid ones, drop the rest.

``parse_citations("KV 缓存 [Q13]，见 [Q14, J1] 和 [Q99]")`` -> ``["Q13", "Q14", "J1", "Q99"]``
``check_citations(text, allowed={"Q13", "Q14"})`` -> kept ``["Q13", "Q14"]``,
dropped ``["J1", "Q99"]``, and the text with the dropped markers removed, so a
reader never sees a citation to a section the model was not shown.
Full-width brackets (【Q13】) count too.  Hand-written: a regex is the whole job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection

_ID = r"(?:[A-Za-z0-9_\-]+:)?[QIJ]\d{1,4}"
_MARKER = re.compile(rf"[\[【]\s*({_ID}(?:\s*[,，、;；]\s*{_ID})*)\s*[\]】]")
_SPLIT = re.compile(r"\s*[,，、;；]\s*")


@dataclass(frozen=True)
class CitationCheck:
    kept: tuple[str, ...]  # valid ids, first-mention order, unique
    dropped: tuple[str, ...]  # cited but not in the context
    text: str  # the text with invalid ids removed from its markers


def parse_citations(text: str) -> list[str]:
    """Every id inside a citation marker, in order, duplicates included."""
    return [i for m in _MARKER.finditer(text) for i in _SPLIT.split(m.group(1).strip())]


def check_citations(text: str, allowed: Collection[str]) -> CitationCheck:
    """Split cited ids into kept / dropped and scrub the dropped ones from the text."""
    allowed = set(allowed)
    kept: list[str] = []
    dropped: list[str] = []

    def fix(m: re.Match) -> str:
        ids = _SPLIT.split(m.group(1).strip())
        good = [i for i in ids if i in allowed]
        for i in ids:
            target = kept if i in allowed else dropped
            if i not in target:
                target.append(i)
        return f"[{', '.join(good)}]" if good else ""

    cleaned = _MARKER.sub(fix, text)
    return CitationCheck(tuple(kept), tuple(dropped), cleaned)
