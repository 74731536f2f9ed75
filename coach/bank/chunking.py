"""Split sections into overlapping, searchable chunks (langchain's recursive splitter).

Every chunk's text begins with its section's title, because users ask
*questions* and a bare answer matches a question poorly::

    Section("Q13", "KV Cache 原理？", body="推理时缓存历史 K/V，……")
    -> [Chunk("Q13", "KV Cache 原理？", "KV Cache 原理？\\n推理时缓存历史 K/V，……", 0, 38)]

Separators prefer code boundaries, then paragraphs, lines and Chinese/English
sentence ends (。！？；), so code blocks stay whole where they fit.  ``start``
and ``end`` are offsets of the body part inside ``Section.body``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from langchain_text_splitters import RecursiveCharacterTextSplitter

from .glossary import Glossary
from ..types import Chunk, Section

SEPARATORS = ["\n```", "\n\n", "\n", "。", "！", "？", "；", "! ", "? ", "; ", ". ", "，", ", ", " ", ""]


@dataclass(frozen=True)
class ChunkSettings:
    """Chunk size and overlap, in characters of the body (the title is added on top)."""

    size: int = 320
    overlap: int = 64

    def __post_init__(self) -> None:
        if self.size < 50:
            raise ValueError(f"chunk size {self.size} is too small; use at least 50 characters")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"chunk overlap {self.overlap} must be >= 0 and smaller than the size {self.size}")


def chunk_sections(sections: list[Section], settings: ChunkSettings = ChunkSettings(),
                   glossary: Glossary = Glossary()) -> list[Chunk]:
    """All chunks of all sections, in section order, each with the glossary's aliases of its terms."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=settings.size,
        chunk_overlap=settings.overlap,
        separators=SEPARATORS,
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=True,
    )
    chunks: list[Chunk] = []
    for sec in sections:
        for doc in splitter.create_documents([sec.body]):
            start = doc.metadata["start_index"]
            text = f"{sec.title}\n{doc.page_content}"
            chunks.append(Chunk(sec.id, sec.title, text, start, start + len(doc.page_content), sec.category,
                                glossary.aliases(text)))
    return chunks


def question_chunks(sections: list[Section], similar: Mapping[str, Sequence[str]]) -> list[Chunk]:
    """One chunk of kind "question" per similar question (coach.bank.similar), in section order:
    ``{"Q13": ["KV cache 干嘛用的"]} -> [Chunk("Q13", "KV Cache 原理？", "KV cache 干嘛用的", 0, 0, ..., kind="question")]``."""
    return [Chunk(sec.id, sec.title, q, 0, 0, sec.category, kind="question")
            for sec in sections for q in similar.get(sec.id, ())]
