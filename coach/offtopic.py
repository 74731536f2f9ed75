"""Off-topic reference questions: what the banks do *not* answer, as a yardstick for declining.

multilingual-e5-small puts every question about machine learning at cosine
0.80-0.90 to every section of the bank, so "how close is the best section"
says little on its own.  A reference set of questions the bank does not
answer (everyday life, general software, and machine-learning topics outside
the bank: CNNs, GANs, boosting, ...) gives the comparison that does: a query
closer to one of these than to any section is probably out of scope.  The
decline model uses ``dense_top - offtopic_top`` as one of its signals
(coach.decline), and the questions double as negatives when it is fitted.

Only the questions in the bank's own language serve as the reference: the
bank is Chinese, and an English query is always closer to English reference
questions than to Chinese sections, which would push every English question
towards a decline (measured: 8 of 30 English answerable queries of the fresh
eval set declined).  Compared with Chinese references, English and Chinese
queries are judged alike; the English questions still serve as negatives when
the model is fitted.

``corpus/off_topic.jsonl`` holds one ``{"query": "..."}`` per line (other
fields are ignored); every ``*off_topic*.jsonl`` file in the corpus folder is
read.  A bank you add that covers one of these topics should take the
matching questions out, or they will pull its questions towards a decline.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

from .corpus import CorpusError
from .prompts import language_of
from .types import Section

OFFTOPIC_GLOB = "*off_topic*.jsonl"


def offtopic_files(corpus_dir: str | Path) -> list[Path]:
    return sorted(Path(corpus_dir).glob(OFFTOPIC_GLOB))


def load_offtopic(corpus_dir: str | Path) -> list[str]:
    """Every off-topic question of the corpus folder, in file order, without repeats."""
    questions: list[str] = []
    for path in offtopic_files(corpus_dir):
        questions.extend(parse_offtopic(path.read_text(encoding="utf-8"), str(path)))
    return list(dict.fromkeys(questions))


def parse_offtopic(text: str, source: str) -> list[str]:
    """JSONL of ``{"query": ...}``; blank lines are skipped; errors say ``source:line``."""
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{source}:{lineno}: not valid JSON ({err.msg}); each line is "
                              '{"query": "a question the bank does not answer"}') from None
        query = item.get("query") if isinstance(item, dict) else None
        if not isinstance(query, str) or not query.strip():
            raise CorpusError(f'{source}:{lineno}: each line needs a non-empty "query" string, got {line.strip()[:60]!r}')
        out.append(" ".join(query.split()))
    return out


def bank_language(sections: Sequence[Section]) -> str:
    """The language most sections are written in ("Chinese" or "English")."""
    votes = Counter(language_of(s.title + " " + s.body) for s in sections)
    return votes.most_common(1)[0][0] if votes else "Chinese"


def reference_questions(questions: Sequence[str], sections: Sequence[Section]) -> list[str]:
    """The off-topic questions written in the bank's language: the decline's reference set."""
    lang = bank_language(sections)
    return [q for q in questions if language_of(q) == lang]
