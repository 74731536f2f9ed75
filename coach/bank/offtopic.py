"""Off-topic reference questions: what the banks do *not* answer, as a yardstick for declining.

multilingual-e5-small puts every question about machine learning at cosine
0.80-0.90 to every section of the bank, so "how close is the best section"
says little on its own.  A reference set of questions the bank does not
answer (everyday life, general software, and machine-learning topics outside
the bank: CNNs, GANs, boosting, ...) gives the comparison that does: a query
closer to one of these than to any section is probably out of scope.  The
decline model uses ``dense_top - offtopic_top`` as one of its signals
(coach.retrieval.decline), and the questions double as negatives when it is fitted.

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
matching questions out, or they will pull its questions towards a decline;
``python -m coach build-index`` lists the reference questions that are close to
a section title (``overlapping_references``) as candidates.

Embedding the 424 reference questions takes 3-4 s on two cores, a quarter of
the seed's build.  ``eval/calibrate.py`` therefore ships their vectors next to the
decline model it fits on them (``coach/calibration/<embedder>.offtopic.npz``),
keyed by the embedder and the exact questions: an index build uses them when
the key matches and embeds the questions itself when it does not (another
embedder, an edited reference set, a bank in another language).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from .corpus import CorpusError
from .jsonl import jsonl_fields
from ..text import language_of
from ..types import Section

OFFTOPIC_GLOB = "*off_topic*.jsonl"
log = logging.getLogger(__name__)


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
    example = '{"query": "a question the bank does not answer"}'
    for lineno, (query,) in jsonl_fields(text, source, "an off-topic line", example, ("query",)):
        if not isinstance(query, str) or not query.strip():
            raise CorpusError(f'{source}:{lineno}: each line needs a non-empty "query" string, got {query!r:.60}')
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


def vectors_key(questions: Sequence[str], embedder_name: str, dim: int) -> str:
    """What reference vectors depend on: the embedder and the exact questions, in order."""
    return hashlib.sha256("\n".join([embedder_name, str(dim), *questions]).encode("utf-8")).hexdigest()


def load_reference_vectors(path: str | Path, key: str, dim: int) -> np.ndarray | None:
    """The saved vectors when ``path`` holds them for ``key``, else None (any problem: embed afresh)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            vectors = np.asarray(data["vectors"], dtype=np.float32)
    except FileNotFoundError:
        return None
    except Exception as err:  # a damaged cache only costs time
        log.warning("ignoring %s (%s); the reference questions will be embedded", path, err)
        return None
    return vectors if vectors.ndim == 2 and vectors.shape[1] == dim else None


def save_reference_vectors(path: str | Path, key: str, vectors: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, key=np.array(key), vectors=np.asarray(vectors, dtype=np.float32))


OVERLAP_COSINE = 0.93  # question-to-question cosine (e5 "query:" both sides); the seed's highest is 0.916


def overlapping_references(
    reference: Sequence[str], reference_vectors: np.ndarray, titles: Sequence[str], title_vectors: np.ndarray,
    threshold: float = OVERLAP_COSINE,
) -> list[tuple[str, str, float]]:
    """``(reference question, closest section title, cosine)`` for every reference question at least
    ``threshold`` close to a title (both embedded as queries), closest first: the bank may answer it."""
    if not len(reference) or not len(titles):
        return []
    sims = np.asarray(reference_vectors) @ np.asarray(title_vectors).T
    best, arg = sims.max(axis=1), sims.argmax(axis=1)
    hits = [(reference[i], titles[int(arg[i])], float(best[i])) for i in np.flatnonzero(best >= threshold)]
    return sorted(hits, key=lambda h: -h[2])
