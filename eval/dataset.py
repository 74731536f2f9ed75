"""Labelled query files: JSONL of ``{"query", "gold", "history"}`` (other fields kept, unknown ignored).

``gold: []`` marks a query the bank cannot answer; ``related`` (optional) lists the sections
on its topic that still do not answer it (the outcome "related" fits it better than "decline").
A malformed line raises ValueError naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    gold: tuple[str, ...]
    history: tuple[str, ...] = ()
    split: str = ""
    lang: str = ""
    kind: str = ""
    related: tuple[str, ...] = ()  # for an unanswerable query: sections on its topic that do not answer it

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


def load_queries(path: str | Path, split: str = "all") -> list[LabelledQuery]:
    """All queries of the file, or only those whose ``split`` field equals ``split``."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = LabelledQuery(
                str(row["query"]), tuple(str(g) for g in row.get("gold", [])),
                tuple(str(h) for h in row.get("history", []) or []),
                str(row.get("split", "")), str(row.get("lang", "")), str(row.get("kind", "")),
                tuple(str(r) for r in row.get("related", []) or []),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{lineno}: not a labelled query ({err}); expected {{\"query\", \"gold\", \"history\"}}") from None
        if split == "all" or item.split == split:
            out.append(item)
    if not out:
        raise ValueError(f"{path}: no queries" + ("" if split == "all" else f" with split {split!r}"))
    return out
