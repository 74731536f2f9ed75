"""Point claims: for each key point of a reference, clauses that state it right and clauses that state it wrong.

The practice grader's second look (coach/grading/second_look.py) compares a candidate's clause with these:
a clause that reads like a misconception of a point is doubted, and one that reads like a right statement
of it is credited even when it shares few of the reference's words.  One line per key point::

    {"id": "Q13", "point": 0, "key_point": "推理时缓存历史 K/V",
     "right": ["推理时把历史 token 的 K/V 存起来", "...", "KV cache stores past keys and values."],
     "wrong": ["KV Cache 不缓存历史 K/V", "KV Cache 缓存的是 Q", "..."]}

``corpus/point_claims.jsonl`` holds 4 right and 4 wrong clauses for each of the seed bank's 379 key points,
written blind from the bank (never from an eval file): close to the reference, in other words, colloquial,
English; reversed by a negation, by an antonym or swapped sides with no negation word, by a wrong
attribution, number or dismissal, in English.  Every ``*point_claims*.jsonl`` of the corpus folder is read, so
a bank of your own can bring its own.  Claims are found by section id and the key point's text
(``coach.grader.key_points``), not by its index: when a reference is edited, the claims of the points that
changed simply stop applying (``claims_coverage`` counts them) instead of describing another point.

A line that is not JSON, lacks a field, has no right or no wrong clause, or names a section no bank has
raises CorpusError naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Container, Iterable, Mapping

from .corpus import CorpusError
from .jsonl import jsonl_fields

CLAIMS_GLOB = "*point_claims*.jsonl"
MAX_CLAIM_CHARS = 200


@dataclass(frozen=True)
class PointClaims:
    """Clauses stating one key point right and wrong."""

    right: tuple[str, ...]
    wrong: tuple[str, ...]


Claims = Mapping[tuple[str, str], PointClaims]  # (section id, key point text) -> its claims


def claims_files(corpus_dir: str | Path) -> list[Path]:
    return sorted(Path(corpus_dir).glob(CLAIMS_GLOB))


def load_claims(corpus_dir: str | Path, section_ids: Container[str]) -> dict[tuple[str, str], PointClaims]:
    """(section id, key point text) -> its claims, over every claims file of the folder (name order; a later
    line for the same point adds the clauses it does not repeat)."""
    out: dict[tuple[str, str], PointClaims] = {}
    for path in claims_files(corpus_dir):
        for key, claims in parse_claims(path.read_text(encoding="utf-8"), path.name, section_ids):
            old = out.get(key)
            if old is not None:
                claims = PointClaims(_merge(old.right, claims.right), _merge(old.wrong, claims.wrong))
            out[key] = claims
    return out


def parse_claims(text: str, source: str, section_ids: Container[str]) -> list[tuple[tuple[str, str], PointClaims]]:
    """``[((section id, key point), PointClaims), ...]`` of one file; errors name ``source`` and the line."""
    rows = []
    lines = jsonl_fields(text, source, "a point-claims line",
                         '{"id": "Q13", "key_point": "...", "right": ["..."], "wrong": ["..."]}',
                         ("id", "key_point", "right", "wrong"))
    for lineno, (sid, point, right, wrong) in lines:
        if not isinstance(sid, str) or not isinstance(point, str) or not point.strip():
            raise CorpusError(f"{source}:{lineno}: 'id' and 'key_point' must be non-empty strings")
        if not _strings(right) or not _strings(wrong):
            raise CorpusError(f"{source}:{lineno}: 'right' and 'wrong' must each be a list of at least one "
                              "non-empty string")
        if sid not in section_ids:
            raise CorpusError(f"{source}:{lineno}: section {sid!r} is in no bank of the corpus folder; fix the id "
                              "(another bank's ids carry its file stem, e.g. mybank:Q3) or delete the line")
        rows.append(((sid, point), PointClaims(_clean(right), _clean(wrong))))
    return rows


def claims_coverage(claims: Claims, points: Mapping[str, Iterable[str]]) -> tuple[int, int]:
    """(key points that have claims, key points) over ``points``: section id -> its key points (pure)."""
    have = total = 0
    for sid, pts in points.items():
        for p in pts:
            total += 1
            have += (sid, p) in claims
    return have, total


def _strings(value) -> bool:
    return isinstance(value, list) and any(isinstance(x, str) and x.strip() for x in value) and \
        all(isinstance(x, str) for x in value)


def _clean(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in (" ".join(v.split())[:MAX_CLAIM_CHARS] for v in values) if c))


def _merge(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a + b))


__all__ = ["CLAIMS_GLOB", "Claims", "PointClaims", "claims_coverage", "claims_files", "load_claims", "parse_claims"]
