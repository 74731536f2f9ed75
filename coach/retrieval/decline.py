"""Decide "nothing in the bank answers this" from calibrated retrieval signals.

Features of one query (pure function ``decline_features``):

- ``dense_top``     cosine of the best section
- ``dense_gap``     best cosine minus the mean cosine of the sections ranked 6th and lower
- ``dense_z``       the best cosine as a z-score among all sections (e5's cosines crowd
                    into 0.8-0.9, so the best one's distance from the crowd says more
                    than its raw value: ROC-AUC 0.95 vs 0.82 on the calibration split)
- ``bm25_cover``    best BM25 score / the score a perfect match would get
                    (``(k1 + 1) * sum idf`` over the query tokens; unseen tokens
                    count with the highest idf), so 1.0 = every query word matched
- ``known_share``   share of query tokens that occur anywhere in the bank
- ``agree``         1.0 when the dense winner is in BM25's top 3, else 0.0
- ``offtopic_margin`` the best cosine minus the best cosine to the off-topic reference
                    questions (coach.bank.offtopic); NaN without them, which the model
                    treats as neutral
- ``rare_unknown``  how common, in general text, the rarest query word is that the bank
                    never uses (wordfreq's Zipf scale; 8.0 when every word occurs in
                    the bank): a rare word the bank lacks ("感受野", "Mamba") names a
                    topic it does not cover, however close the embeddings are
- ``followup_new_term`` for a reading joined to the history only (else 0): 8 minus the
                    Zipf value of the rarest name in the follow-up itself that the bank
                    lacks (coach.text.name_tokens; "那 GraphRAG 呢？" after RAG: the
                    history looks covered, the new subject is not).  A coined name
                    ("DoRA", "FP8", "Self-RAG": coach.text.is_coined) counts as Zipf 0,
                    whatever its lower-case spelling means in English ("dora")
- ``followup_coined`` 1.0 when that rarest name is coined or unseen (Zipf 0), else 0: on the
                    calibration follow-ups no answerable one does this, but a linear
                    weight on the graded signal alone cannot say "this, whatever else"

A logistic regression (scikit-learn) over standardised features, fitted by
``eval/calibrate.py`` on the calibration split plus the off-topic reference
questions as extra negatives, gives P(answerable).  The
query is declined below a threshold chosen on that split.  A second logistic regression on the same
features, the answer model, is fitted on the labelled questions only (real calib and paraphrase calib, no
off-topic references): among questions on the bank's topics it tells "answers this" from "has related
material"; a question that is not declined gets a direct answer from the answer threshold on its P, else
related material.  (Session 5, grouped CV on 647 real calib questions: 0.610 direct answers at harm 0.110,
against 0.601 at 0.112 for one model whose P serves both cuts: a small gain, within the CV's noise; the
off-topic rows, most of that model's negatives, teach it "on topic or not", not "answered or related".)  The parameters
are saved per embedder (``coach/calibration/<embedder>.json``): signals from
one embedder mean nothing for another.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Container, Mapping, Sequence

from ..text import is_coined, word_zipf
from ..types import ANSWER, DECLINE, RELATED

# Signals from the sections' similar questions (coach.bank.similar) and the top section's words; they tell "the bank
# answers this" from "the bank has this topic but answers something else" (real questions, calib split, ROC-AUC of
# answerable vs not: question_max 0.83, question_top 0.83, top_coverage 0.77, question_gap 0.77, against 0.82 for
# the calibrated confidence on the first ten signals; together, cross-validated: eval/README.md).  uncovered_idf
# (session 5): grouped CV on 647 real calib questions, direct_answerable 0.573 -> 0.601 at harm 0.110 -> 0.112.
QUESTION_FEATURES = ("question_max", "question_top", "question_gap", "question_over_text", "top_question_over_text",
                     "top_coverage", "uncovered_idf")

FEATURES = ("dense_top", "dense_gap", "dense_z", "bm25_cover", "known_share", "agree", "offtopic_margin", "rare_unknown",
            "followup_new_term", "followup_coined", *QUESTION_FEATURES)
ALL_KNOWN = 8.0  # rare_unknown when every query word occurs in the bank (above any word's Zipf value)
CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "calibration"  # coach/calibration


def decline_features(
    dense: Mapping[str, float], bm25: Mapping[str, float], query_tokens: Sequence[str],
    idf: Mapping[str, float], n_docs: int, offtopic_top: float | None = None, k1: float = 1.5,
    zipf: Callable[[str], float] = word_zipf, followup_tokens: Sequence[str] | None = None,
    bank_names: Container[str] = frozenset(), questions: Sequence[float] | None = None,
) -> tuple[float, ...]:
    """The signals above, in FEATURES order; ``zipf`` gives a word's general frequency, ``followup_tokens``
    are the follow-up's names as written (coach.text.name_tokens), ``bank_names`` the bank's Latin words
    (coach.text.latin_words), so that "Pre-LN" is known though BM25 splits it; ``questions`` the
    QUESTION_FEATURES (``question_signals``; None: all NaN, neutral)."""
    d = sorted(dense.values(), reverse=True)
    dense_top = d[0] if d else 0.0
    tail = d[5:] or d[1:] or [0.0]
    dense_gap = dense_top - sum(tail) / len(tail)
    mean = sum(d) / len(d) if d else 0.0
    std = math.sqrt(sum((x - mean) ** 2 for x in d) / len(d)) if d else 0.0
    dense_z = (dense_top - mean) / std if std > 1e-9 else 0.0
    max_idf = math.log((n_docs + 0.5) / 0.5) if n_docs else 1.0
    ideal = (k1 + 1) * sum(max(idf.get(t, max_idf), 0.0) for t in query_tokens)
    bm25_top = max(bm25.values(), default=0.0)
    bm25_cover = min(bm25_top / ideal, 1.0) if ideal > 0 else 0.0
    known = known_share(query_tokens, idf)
    dense_winner = max(dense, key=dense.get) if dense else None
    bm25_top3 = sorted(bm25, key=lambda key: -bm25[key])[:3]
    agree = 1.0 if dense_winner is not None and dense_winner in bm25_top3 and bm25.get(dense_winner, 0) > 0 else 0.0
    margin = dense_top - offtopic_top if offtopic_top is not None and d else math.nan
    rare = min((zipf(t) for t in query_tokens if t not in idf), default=ALL_KNOWN)
    new_term = coined = 0.0
    if followup_tokens is not None:  # a reading joined to the history: how rare is the follow-up's own new word?
        unknown = [t for t in followup_tokens if t.lower() not in idf and t.lower() not in bank_names]
        new_term = ALL_KNOWN - min((0.0 if is_coined(t) else zipf(t.lower()) for t in unknown), default=ALL_KNOWN)
        coined = 1.0 if new_term >= ALL_KNOWN else 0.0
    extra = tuple(float(x) for x in questions) if questions is not None else (math.nan,) * len(QUESTION_FEATURES)
    return (float(dense_top), float(dense_gap), float(dense_z), float(bm25_cover), float(known), agree, float(margin),
            float(rare), float(new_term), coined, *extra)


def question_signals(
    chunk_cosines: Sequence[float], is_question: Sequence[bool], chunk_section: Sequence[str], top: str | None,
    query_tokens: Sequence[str], top_tokens: Container[str], idf: Mapping[str, float],
) -> tuple[float, ...]:
    """QUESTION_FEATURES for one reading (pure), from the query's cosine to every chunk of the index, which chunks
    are similar questions, their sections, the top section of the fused ranking and that section's tokens:

    - question_max: the best cosine to any similar question; question_top: to one of the top section's;
    - question_gap: the best section's question cosine minus the second best section's;
    - question_over_text / top_question_over_text: the best question cosine minus the best text-chunk cosine,
      over all sections / within the top section (a question asked like a bank entry, not just on its topic);
    - top_coverage: the idf-weighted share of the query's bank words that the top section uses;
    - uncovered_idf: the idf mass of the query's bank words that the top section does not use (``uncovered_idf``).

    Without similar questions (a bank that has none) the question signals are NaN: neutral (DeclineModel)."""
    nan = math.nan
    best_q: dict[str, float] = {}
    best_t: dict[str, float] = {}
    for cos, q, sid in zip(chunk_cosines, is_question, chunk_section):
        bucket = best_q if q else best_t
        if cos > bucket.get(sid, -2.0):
            bucket[sid] = float(cos)
    known = [t for t in query_tokens if t in idf]
    weight = sum(max(idf[t], 0.0) for t in known)
    coverage = sum(max(idf[t], 0.0) for t in known if t in top_tokens) / weight if weight > 0 else 0.0
    uncovered = uncovered_idf(query_tokens, top_tokens, idf)
    if not best_q:
        return (nan, nan, nan, nan, nan, float(coverage), uncovered)
    qs = sorted(best_q.values(), reverse=True)
    q_max, t_max = qs[0], max(best_t.values(), default=qs[0])
    q_top = best_q.get(top, nan) if top is not None else nan
    t_top = best_t.get(top, nan) if top is not None else nan
    return (q_max, q_top, q_max - (qs[1] if len(qs) > 1 else qs[0]), q_max - t_max, q_top - t_top, float(coverage),
            uncovered)


def uncovered_idf(query_tokens: Sequence[str], top_tokens: Container[str], idf: Mapping[str, float]) -> float:
    """The summed idf of the query's words that the bank uses but the top section does not (pure; a word the bank
    never uses is rare_unknown's business): what the question asks beyond the section, in absolute terms, so that
    a long multi-part question with one part the section lacks scores high where top_coverage stays near 1::

        (["kv", "cache", "q", "红烧肉"], {"kv", "cache"}, {"kv": 2.0, "cache": 1.0, "q": 1.5}) -> 1.5
    """
    return float(sum(max(idf[t], 0.0) for t in query_tokens if t in idf and t not in top_tokens))


def known_share(query_tokens: Sequence[str], idf: Mapping[str, float]) -> float:
    """Share of the query's tokens that occur anywhere in the bank: ``(["kv", "红烧肉"], idf) -> 0.5``."""
    return sum(1 for t in query_tokens if t in idf) / len(query_tokens) if query_tokens else 0.0


@dataclass(frozen=True)
class DeclineModel:
    """Logistic regression on standardised features plus a decision threshold."""

    embedder: str
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    note: str = ""
    features: tuple[str, ...] = FEATURES
    answer_threshold: float | None = None  # answer P at or above which the bank answers; below it: related
    answer_coef: tuple[float, ...] | None = None  # the answer model (same standardisation); None: P serves both cuts
    answer_intercept: float = 0.0

    def outcome(self, features: Sequence[float]) -> str:
        """``"decline"`` below ``threshold``, ``"related"`` below ``answer_threshold`` (on ``answer_probability``),
        else ``"answer"``."""
        if self.probability(features) < self.threshold:
            return DECLINE
        if self.answer_threshold is not None and self.answer_probability(features) < self.answer_threshold:
            return RELATED
        return ANSWER

    def probability(self, features: Sequence[float]) -> float:
        """P(answerable) for one feature vector; a NaN feature (signal unavailable) counts as average."""
        return self._sigmoid(self.intercept, self.coef, features)

    def answer_probability(self, features: Sequence[float]) -> float:
        """The answer model's P(the bank answers this | not declined); ``probability`` when there is none."""
        if self.answer_coef is None:
            return self.probability(features)
        return self._sigmoid(self.answer_intercept, self.answer_coef, features)

    def _sigmoid(self, intercept: float, coef: Sequence[float], features: Sequence[float]) -> float:
        z = intercept + sum(c * (f - m) / (s or 1.0) for c, f, m, s in zip(coef, features, self.mean, self.scale) if f == f)
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def declines(self, features: Sequence[float]) -> bool:
        return self.probability(features) < self.threshold

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "DeclineModel":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data.setdefault("features", ())  # files from before the field: fitted on other signals
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


NEVER_DECLINE = DeclineModel("none", (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 0.0, 0.0,
                             "uncalibrated: never declines")


def _nan_to_mean(x):
    """Replace NaN (a signal that was unavailable) by its column mean, as ``probability`` does."""
    import numpy as np

    x = np.array(x, dtype=float)
    means = np.nanmean(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0) if len(x) else np.zeros(x.shape[1])
    return np.where(np.isnan(x), means, x)


def fit_decline_model(
    features: Sequence[Sequence[float]], answerable: Sequence[bool], embedder: str, min_answered: float = 0.97,
    threshold_on: Sequence[object | None] | None = None, answer_on: Sequence[bool] | None = None,
    max_direct_unanswerable: float = 0.12, answer_other_weight: float = 0.5, answer_c: float = 1.0,
) -> DeclineModel:
    """Fit on labelled queries; the (decline) threshold is the highest one that still answers
    at least ``min_answered`` of the answerable queries of every group (maximising declines under that bound).
    ``threshold_on`` (default: one group, every row) gives each row's group, None = fit only.
    ``answer_on`` marks the rows the answer threshold is set on (real questions); None: no answer model and no
    answer threshold.  The answer model is fitted on the rows of a group (not None: the labelled questions, not
    the off-topic references), ``answer_on`` rows with weight 1 and the others ``answer_other_weight``, with
    inverse regularisation ``answer_c``; the answer threshold is the lowest answer P at which at most
    ``max_direct_unanswerable`` of the ``answer_on`` unanswerable rows would get a direct answer.  (Weight 0.5 and
    C 1 were chosen by grouped cross-validation on real calib: eval/README.md, session 5.)"""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = _nan_to_mean(features)
    y = np.asarray(answerable, dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError("calibration needs both answerable and unanswerable queries")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, y)
    model = DeclineModel(embedder, tuple(mean.tolist()), tuple(scale.tolist()), tuple(clf.coef_[0].tolist()),
                         float(clf.intercept_[0]), 0.5)
    groups = [True] * len(x) if threshold_on is None else list(threshold_on)
    p_all = [model.probability(f) for f in x]
    cuts = []
    for group in {g for g in groups if g is not None}:
        probs = sorted(p for p, g, a in zip(p_all, groups, answerable) if g == group and a)
        if probs:
            allowed = int(math.floor(len(probs) * (1.0 - min_answered)))  # answerable queries we may decline
            cuts.append(probs[min(allowed, len(probs) - 1)])
    threshold = float(min(cuts)) - 1e-9 if cuts else 0.5
    note = f"threshold keeps >= {min_answered:.0%} of calibration answerable queries of each group answered"
    answer_threshold, answer_coef, answer_intercept = None, None, 0.0
    if answer_on is not None:
        rows = [i for i, g in enumerate(groups) if g is not None]
        ya = y[rows]
        if len(set(ya.tolist())) < 2:
            raise ValueError("the answer model needs both answerable and unanswerable labelled queries")
        weight = [1.0 if answer_on[i] else answer_other_weight for i in rows]
        answer = LogisticRegression(C=answer_c, class_weight="balanced", max_iter=1000).fit(
            ((x - mean) / scale)[rows], ya, sample_weight=weight)
        answer_coef, answer_intercept = tuple(answer.coef_[0].tolist()), float(answer.intercept_[0])
        model = DeclineModel(model.embedder, model.mean, model.scale, model.coef, model.intercept, 0.5,
                             answer_coef=answer_coef, answer_intercept=answer_intercept)
        harm = sorted((model.answer_probability(f) for f, on, a in zip(x, answer_on, answerable) if on and not a),
                      reverse=True)
        if harm:
            answer_threshold = float(harm[int(math.floor(max_direct_unanswerable * len(harm)))]) + 1e-9
            note += (f"; answer model on the labelled questions; answer threshold: at most "
                     f"{max_direct_unanswerable:.0%} of the marked unanswerable queries answered directly")
    return DeclineModel(model.embedder, model.mean, model.scale, model.coef, model.intercept, threshold, note,
                        answer_threshold=answer_threshold, answer_coef=answer_coef, answer_intercept=answer_intercept)


def calibration_path(embedder_name: str, folder: Path = CALIBRATION_DIR) -> Path:
    return folder / (re.sub(r"[^0-9A-Za-z_.-]+", "_", embedder_name) + ".json")


def load_decline_model(embedder_name: str, folder: Path = CALIBRATION_DIR) -> tuple[DeclineModel, str]:
    """The model calibrated for this embedder, or NEVER_DECLINE and a line saying so."""
    path = calibration_path(embedder_name, folder)
    if not path.exists():
        return NEVER_DECLINE, f"decline: off (no calibration for {embedder_name}; run `python -m eval.calibrate`)"
    try:
        model = DeclineModel.load(path)
    except (ValueError, TypeError) as err:
        return NEVER_DECLINE, f"decline: off ({path} is unreadable: {err}; run `python -m eval.calibrate`)"
    if model.features != FEATURES:
        return NEVER_DECLINE, (f"decline: off ({path} was fitted on other signals {list(model.features)}; "
                               "run `python -m eval.calibrate`)")
    if model.answer_threshold is None:
        return model, f"decline: on (calibrated, threshold {model.threshold:.3f})"
    on = "the answer model's P" if model.answer_coef is not None else "P"
    return model, (f"decline: on (calibrated, decline below {model.threshold:.3f}, related material below "
                   f"{model.answer_threshold:.3f} of {on})")
