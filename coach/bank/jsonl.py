"""The lines of a JSONL bank-data file (similar questions, point claims, off-topic questions) as fields.

Hand-written on purpose: ``json.loads`` per line is the whole parser; what this adds is one error message
shape for every such file, naming the file and line, e.g.
``similar.jsonl:7: not a similar-questions line (missing 'questions'); expected {"id": ..., ...}``.
"""

from __future__ import annotations

import json
from typing import Iterator, Sequence

from .corpus import CorpusError


def jsonl_fields(text: str, source: str, what: str, example: str,
                 fields: Sequence[str]) -> Iterator[tuple[int, tuple]]:
    """``(line number, (value of each field, ...))`` for every non-blank line of ``text``.

    >>> list(jsonl_fields('{"id": "Q1", "n": 2}\\n\\n{"id": "Q2", "n": 3}', "f", "a line", "{}", ("id",)))
    [(1, ('Q1',)), (3, ('Q2',))]
    """
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise CorpusError(f"{source}:{lineno}: not {what} (not valid JSON: {getattr(err, 'msg', err)}); "
                              f"expected {example}") from None
        if not isinstance(row, dict):
            raise CorpusError(f"{source}:{lineno}: not {what} (a JSON {type(row).__name__}, not an object); "
                              f"expected {example}")
        missing = [name for name in fields if name not in row]
        if missing:
            raise CorpusError(f"{source}:{lineno}: not {what} (missing {', '.join(map(repr, missing))}); "
                              f"expected {example}")
        yield lineno, tuple(row[name] for name in fields)


__all__ = ["jsonl_fields"]
