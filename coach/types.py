"""The small frozen records that move between the pipeline's stages.

corpus -> Section -> chunking -> Chunk -> index/retrieve -> Hit, Retrieval
-> answer -> Citation, Answer.  Retrieval and Answer carry an ``outcome``: the bank
answers the question, has only related material, or has nothing (a decline).  Every record that points at the bank carries
a *section id* (``Q13``, ``I2``, ``J4``): ids survive re-chunking, chunk
positions do not, so citations and eval labels only ever use section ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field


# What retrieval and answers conclude about a question (coach.retrieval.decline.DeclineModel.outcome):
ANSWER = "answer"  # the bank answers it
RELATED = "related"  # the bank has material on the topic, but no entry answers this question
DECLINE = "decline"  # nothing relevant in the bank
OUTCOMES = (ANSWER, RELATED, DECLINE)


@dataclass(frozen=True)
class Section:
    """One question of a bank: ``Section("Q13", "KV Cache 原理？", "D. 解码与推理", body, ...)``."""

    id: str
    title: str
    category: str  # the ``##`` heading, e.g. "A. 架构基础（Transformer）"
    body: str  # reference answer, code blocks intact
    source: str  # file name inside corpus/
    line: int  # 1-based line of the title in that file

    @property
    def category_letter(self) -> str:
        """``"A. 架构基础"`` -> ``"A"``; empty when the heading has no letter."""
        head = self.category.split(".", 1)[0].strip()
        return head if len(head) == 1 and head.isalpha() else ""


@dataclass(frozen=True)
class Chunk:
    """A searchable piece of one section; ``text`` starts with the section's title."""

    section_id: str
    title: str
    text: str
    start: int  # character offsets of the body part inside Section.body
    end: int
    category: str = ""
    aliases: tuple[str, ...] = ()  # other names of the terms in the text (coach.bank.glossary)
    kind: str = "text"  # "text": a piece of the section; "question": one way of asking for it (coach.bank.similar)

    @property
    def search_text(self) -> str:
        """What BM25 and the embedder see: the category name, the text, then the aliases (a question: itself).
        Measured: the category +2 points hit@1 and +3 hit@5 (dense, calib); the aliases eval/README.md."""
        if self.kind == "question":
            return self.text
        name = self.category.split(".", 1)[-1].strip()
        text = f"{name}\n{self.text}" if name else self.text
        return f"{text}\n{' ; '.join(self.aliases)}" if self.aliases else text


@dataclass(frozen=True)
class Hit:
    """One retrieved section with the score it got at each stage (None: stage not run)."""

    id: str
    title: str
    score: float  # the score that ordered the final list
    bm25: float | None = None
    dense: float | None = None
    fused: float | None = None
    rerank: float | None = None
    chunk_text: str = ""  # the best-matching chunk, the passage a citation shows


@dataclass(frozen=True)
class Retrieval:
    """What retrieval returns for one question."""

    query: str
    rewritten_query: str
    hits: tuple[Hit, ...]
    declined: bool
    decline_reason: str  # "" when answered
    confidence: float  # calibrated probability that the bank answers the query
    rerank_state: str  # "on (model)" or "off (why)"
    timings_ms: dict = field(default_factory=dict)
    features: tuple[float, ...] = ()  # the decline signals (coach.retrieval.decline.FEATURES order)
    outcome: str = ""  # "answer" | "related" | "decline" (OUTCOMES); empty: taken from ``declined``

    def __post_init__(self) -> None:
        _settle_outcome(self)


@dataclass(frozen=True)
class Citation:
    """A section an answer rests on, and the passage of it that was shown to the model."""

    id: str
    title: str
    passage: str


@dataclass(frozen=True)
class Answer:
    """What ``Coach.ask`` returns to every front end (CLI, Gradio, Slack)."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    declined: bool
    decline_reason: str
    rewritten_query: str
    mode: str  # LLM model name, or "extractive"
    rerank_state: str
    timings_ms: dict = field(default_factory=dict)
    suggestions: tuple[str, ...] = ()  # nearby bank questions offered on a decline
    notices: tuple[str, ...] = ()  # e.g. "LLM server unreachable: extractive answer"
    dropped_citations: tuple[str, ...] = ()  # ids the model cited that it was not shown
    citations_attached: bool = False  # True when the model cited nothing valid
    partial: bool = False  # stream cut mid-way; text is what arrived
    history_trimmed: int = 0  # earlier turns dropped to fit the context
    hits: tuple[Hit, ...] = ()
    outcome: str = ""  # "answer" | "related" | "decline" (OUTCOMES); empty: taken from ``declined``
    coverage: str = ""  # the LLM's judgement "full" | "partly" | "none" (coach.answering.coverage); "" when none was used
    categories: tuple[str, ...] = ()  # the bank's categories, offered instead of titles on a clearly off-topic decline

    def __post_init__(self) -> None:
        _settle_outcome(self)


def _settle_outcome(record) -> None:
    """``outcome`` defaults to what ``declined`` says; a given one must agree with it (decline <=> declined)."""
    if not record.outcome:
        object.__setattr__(record, "outcome", DECLINE if record.declined else ANSWER)
    if record.outcome not in OUTCOMES:
        raise ValueError(f"outcome {record.outcome!r} is not one of {OUTCOMES}")
    if (record.outcome == DECLINE) != bool(record.declined):
        raise ValueError(f"outcome {record.outcome!r} contradicts declined={record.declined}")
