"""Similar questions: the ways a candidate asks for a section, searched beside its text.

FAQ retrieval systems index each entry's alternative phrasings (QAnything's FAQ mode, FastGPT's
question fields), because users ask in their own words and a short colloquial question matches
another question far better than a reference answer::

    {"id": "Q13", "questions": ["KV cache 干嘛用的", "How does KV caching speed up decoding?"]}

``corpus/similar_questions.jsonl`` holds one such line per section of the seed bank (8-10 each,
written blind from the bank, never from an eval file); every ``*similar_questions*.jsonl`` in the
corpus folder is read, so a bank of your own can bring its own.  Ids are the sections' ids
(``mybank:Q3`` for another bank).  Each question becomes a chunk of kind "question" of its section
(coach.bank.chunking.question_chunks): BM25 and the embedder search it like the title, it is never
shown or cited (citations quote the section's text), and the best question's cosine is a decline
signal (coach.retrieval.decline: ``question_match``).

A line that is not JSON, lacks ``id``/``questions``, or names a section no bank has raises
CorpusError naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Container

from .corpus import CorpusError
from .jsonl import jsonl_fields

SIMILAR_GLOB = "*similar_questions*.jsonl"
MAX_QUESTION_CHARS = 300


def similar_files(corpus_dir: str | Path) -> list[Path]:
    return sorted(Path(corpus_dir).glob(SIMILAR_GLOB))


def load_similar(corpus_dir: str | Path, section_ids: Container[str]) -> dict[str, tuple[str, ...]]:
    """Section id -> its similar questions (files in name order, repeats dropped)."""
    out: dict[str, list[str]] = {}
    for path in similar_files(corpus_dir):
        for sid, questions in parse_similar(path.read_text(encoding="utf-8"), path.name, section_ids):
            bucket = out.setdefault(sid, [])
            bucket.extend(q for q in questions if q not in bucket)
    return {sid: tuple(qs) for sid, qs in out.items()}


def parse_similar(text: str, source: str, section_ids: Container[str]) -> list[tuple[str, list[str]]]:
    """``[(section id, [question, ...]), ...]`` of one file; errors name ``source`` and the line."""
    rows = []
    lines = jsonl_fields(text, source, "a similar-questions line", '{"id": "Q13", "questions": ["...", ...]}',
                         ("id", "questions"))
    for lineno, (sid, questions) in lines:
        if not isinstance(sid, str) or not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise CorpusError(f"{source}:{lineno}: 'id' must be a string and 'questions' a list of strings")
        if sid not in section_ids:
            raise CorpusError(f"{source}:{lineno}: section {sid!r} is in no bank of the corpus folder; fix the id "
                              "(another bank's ids carry its file stem, e.g. mybank:Q3) or delete the line")
        cleaned = [" ".join(q.split())[:MAX_QUESTION_CHARS] for q in questions]
        rows.append((sid, [q for q in cleaned if q]))
    return rows


__all__ = ["SIMILAR_GLOB", "load_similar", "parse_similar", "similar_files"]
