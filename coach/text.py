"""Cleaning user questions and tokenizing text for BM25.

``clean_query("  ＫＶ\u200b Cache？ ")`` -> ``"KV Cache?"``: NFKC folds full-width
forms, zero-width and control characters go, whitespace is collapsed.  What is
left must hold a letter or digit and fit ``max_chars``, else QueryError says
what to do.

``tokenize("KV Cache 的原理？")`` -> ``["kv", "cache", "原理"]``: jieba's search
mode for Chinese (documents and queries alike), English lower-cased,
punctuation and a short list of function words dropped.  jieba's dictionary is
extended by ``terms_zh.txt`` (machine-learning terms it would split: "感受野" not
"感受" + "野"), so BM25 matches whole terms and the decline model can see that a
term is missing from the bank; ``TOKENIZER_ID`` changes with that file, which
makes a saved index stale.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
from pathlib import Path

import jieba

jieba.setLogLevel(logging.WARNING)

MAX_QUERY_CHARS = 2000

# Function words that carry no topic; kept short on purpose (topic words like 为什么 stay).
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 吗 呢 吧 啊 呀 么 什么 怎么 怎样 如何 哪些 哪个 一个 一下 这个 那个 这 那 它 它们 其 "
    "我 你 他 我们 你们 请 请问 能 能否 可以 会 要 有 有没有 一些 给 把 被 对 就 都 也 还 "
    "a an the is are was were be of to in on for and or what how why which who does do did "
    "it its this that these those can could would should i you me my your please with about".split()
)
LEXICON = Path(__file__).with_name("terms_zh.txt")
TOKENIZER_ID = "jieba+" + (hashlib.sha256(LEXICON.read_bytes()).hexdigest()[:16] if LEXICON.exists() else "none")
_lexicon_lock = threading.Lock()
_lexicon_loaded = False
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"), None)
_WORDY = re.compile(r"\w", re.UNICODE)
_SPACES = re.compile(r"\s+")


class QueryError(ValueError):
    """A question that cannot be searched; the message says how to fix it."""


def language_of(text: str) -> str:
    """"Chinese" when the text has any CJK ideograph, else "English": ``"KV Cache 是什么" -> "Chinese"``."""
    return "Chinese" if re.search(r"[\u4e00-\u9fff]", text) else "English"


def normalize(text: str) -> str:
    """NFKC, no zero-width or control characters, whitespace collapsed, lone surrogates replaced."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def clean_query(text: str, max_chars: int = MAX_QUERY_CHARS) -> str:
    """The question ready to search, or QueryError for empty, wordless or over-long input."""
    if not isinstance(text, str):
        raise QueryError(f"the question must be text, not {type(text).__name__}")
    if len(text) > max_chars * 4:  # do not normalise megabytes just to reject them
        raise QueryError(
            f"the question is {len(text):,} characters; the limit is {max_chars:,}. Ask about one topic at a time."
        )
    cleaned = normalize(text)
    if not cleaned:
        raise QueryError("the question is empty: type a question, e.g. 「KV Cache 的原理是什么？」")
    if not _WORDY.search(cleaned):
        raise QueryError("the question has no letters or digits to search for: type a question in words")
    if len(cleaned) > max_chars:
        raise QueryError(
            f"the question is {len(cleaned):,} characters; the limit is {max_chars:,}. Ask about one topic at a time."
        )
    return cleaned


CJK = re.compile(r"[\u4e00-\u9fff]")  # one CJK ideograph (the grader's modules share it)


def _load_lexicon() -> None:
    """Add the term lexicon to jieba's dictionary once per process (jieba's dictionary is global)."""
    global _lexicon_loaded
    with _lexicon_lock:
        if not _lexicon_loaded:
            if LEXICON.exists():
                jieba.load_userdict(str(LEXICON))
            _lexicon_loaded = True


def tokenize(text: str) -> list[str]:
    """BM25 tokens: jieba search-mode words, lower-cased, without punctuation and stopwords."""
    if not _lexicon_loaded:
        _load_lexicon()
    out = []
    for tok in jieba.lcut_for_search(normalize(text).lower()):
        tok = tok.strip()
        if tok and _WORDY.search(tok) and tok not in STOPWORDS:
            out.append(tok)
    return out


def warm_up() -> None:
    """Load jieba's and wordfreq's dictionaries now (~0.5 s) instead of inside the first user's query."""
    jieba.initialize()
    _load_lexicon()
    word_zipf("词")


def word_zipf(token: str) -> float:
    """How common a word is in general text, on the Zipf scale (wordfreq: 7 = "the", 3 = rare, 0 = unseen),
    looked up in Chinese when it has a CJK character, else in English."""
    from wordfreq import zipf_frequency

    return zipf_frequency(token, "zh" if CJK.search(token) else "en")


_LATIN_NAME = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
_LETTER = re.compile(r"[A-Za-z]")


def _latin(text: str) -> list[str]:
    """Runs of Latin letters and digits, joined by - or . ("Self-RAG", "llama.cpp", "1F1B"), with a letter."""
    return [w for w in _LATIN_NAME.findall(text) if _LETTER.search(w)]


def latin_words(text: str) -> set[str]:
    """Latin words of ``text``, lower-cased, whole ("Self-RAG" -> "self-rag") and split at - and . alike."""
    out = set()
    for w in map(str.lower, _latin(text)):
        out.add(w)
        out.update(p for p in re.split(r"[-.]", w) if p)
    return out


def name_tokens(text: str) -> list[str]:
    """The words of ``text`` that can name a thing, as written: Chinese words, and whole Latin words written
    with a capital or a digit ("GraphRAG", "Self-RAG", "1F1B", "Llama3"); plain English words ("skip",
    "evenly") are left out."""
    latin = [w for w in _latin(text) if w != w.lower() or any(c.isdigit() for c in w)]
    return [t for t in tokenize(text) if CJK.search(t)] + latin


def is_coined(name: str) -> bool:
    """A name no dictionary holds, whatever its lower-case spelling means: a capital after the first letter or
    letters mixed with digits ("DoRA", "FP8", "1F1B", "Self-RAG"); "Medusa" and "Ring" are ordinary words."""
    return any(c.isupper() for c in name[1:]) or (any(c.isdigit() for c in name) and bool(_LETTER.search(name)))
