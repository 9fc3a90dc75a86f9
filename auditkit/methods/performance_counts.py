"""``performance``'s figures from counts and exact sums that combine across blocks of rows.

:func:`summarise` reads a block of labelled rows (a dataset's partition, or every audit row)
and keeps: the confusion counts; per distinct score the positives and negatives (ROC AUC,
average precision, the ROC curve: :mod:`auditkit.methods.score_counts`); exact sums of the
per-row losses (:mod:`auditkit.methods.exact_sums`); a multiclass model's per-class counts; a
regressor's exact sums of errors and outcomes. :func:`combine` adds blocks' summaries, and
:func:`figure` computes each metric from the summary of every row, so the whole data and any
split of it give the same figure, the loss means and r2 correctly rounded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from auditkit.methods import score_counts as sc
from auditkit.methods.exact_sums import ExactSum, exact_square_sum, exact_sum, rounded, total

FloatArray = npt.NDArray[np.float64]


@dataclass
class PerformanceSummary:
    task: str
    rows: int  # every row of the block
    labelled: int  # rows with a target value
    # binary
    cells: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(4, dtype=np.int64))  # tp fp fn tn
    scores: sc.ScoreCounts | None = None
    low: float | None = None  # the labelled scores' nanmin and nanmax
    high: float | None = None
    log_loss: ExactSum | None = None
    brier: ExactSum | None = None
    # multiclass
    unknown: set[str] = field(default_factory=set)  # target values that are not a class of the model
    correct: int = 0
    true_positive: npt.NDArray[np.int64] | None = None  # per class
    observed: npt.NDArray[np.int64] | None = None
    predicted: npt.NDArray[np.int64] | None = None
    # regression
    abs_error: ExactSum | None = None
    sq_error: ExactSum | None = None
    y_sum: ExactSum | None = None
    y2_sum: ExactSum | None = None


def binary_row_losses(y: FloatArray, p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each row's log loss (scores clipped to [eps, 1 - eps], as scikit-learn) and Brier term."""
    eps = np.finfo(np.float64).eps
    q = np.clip(p, eps, 1 - eps)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q)), (p - y) ** 2


def summarise(task: str, rows: int, y: Any, decisions: Any, scores: Any, *, classes: list[str] | None = None,
              probability: bool = False) -> PerformanceSummary:
    """The summary of a block's labelled rows (``y``, ``decisions``, ``scores``: those rows only)."""
    out = PerformanceSummary(task=task, rows=rows, labelled=len(y))
    if task == "binary":
        y = np.asarray(y, dtype=np.float64)
        d = np.asarray(decisions, dtype=np.float64)
        p = np.asarray(scores, dtype=np.float64)
        out.cells = np.array([np.sum((y == 1) & (d == 1)), np.sum((y == 0) & (d == 1)), np.sum((y == 1) & (d == 0)),
                              np.sum((y == 0) & (d == 0))], dtype=np.int64)
        out.scores = sc.score_counts(p, y == 1)
        defined = p[~np.isnan(p)]
        out.low, out.high = (float(defined.min()), float(defined.max())) if defined.size else (None, None)
        log_loss, brier = binary_row_losses(y, p)
        out.log_loss, out.brier = exact_sum(log_loss), exact_sum(brier)
    elif task == "multiclass":
        assert classes is not None
        index = {c: i for i, c in enumerate(classes)}
        y_text = [str(v) for v in np.asarray(y, dtype=object)]
        out.unknown = {v for v in set(y_text) if v not in index}
        if out.unknown:
            return out
        k = len(classes)
        y_idx = np.array([index[v] for v in y_text], dtype=np.int64)
        d_idx = np.array([index[str(v)] for v in np.asarray(decisions, dtype=object)], dtype=np.int64)
        out.correct = int((y_idx == d_idx).sum())
        out.true_positive = np.bincount(y_idx[y_idx == d_idx], minlength=k).astype(np.int64)
        out.observed = np.bincount(y_idx, minlength=k).astype(np.int64)
        out.predicted = np.bincount(d_idx, minlength=k).astype(np.int64)
        if probability:
            proba = np.asarray(scores, dtype=np.float64).reshape(len(y_idx), -1)
            eps = np.finfo(np.float64).eps
            normalised = proba / proba.sum(axis=1, keepdims=True)
            out.log_loss = exact_sum(-np.log(np.clip(normalised[np.arange(len(y_idx)), y_idx], eps, 1 - eps)))
    else:
        y = np.asarray(y, dtype=np.float64)
        error = np.asarray(scores, dtype=np.float64).reshape(len(y)) - y
        # each row's error rounded once (as scikit-learn's), its square and y's squares summed exactly
        out.abs_error, out.sq_error = exact_sum(np.abs(error)), exact_square_sum(error)
        out.y_sum, out.y2_sum = exact_sum(y), exact_square_sum(y)
    return out


def _plus(parts: list[Any]) -> Any:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if isinstance(present[0], ExactSum):
        return total(present)
    return sum(present[1:], present[0].copy())


def combine(parts: list[PerformanceSummary]) -> PerformanceSummary:
    """The summary of several blocks of rows, from theirs (in any order)."""
    first = parts[0]
    out = PerformanceSummary(task=first.task, rows=sum(p.rows for p in parts), labelled=sum(p.labelled for p in parts))
    out.unknown = set().union(*(p.unknown for p in parts))
    if first.task == "binary":
        out.cells = np.sum([p.cells for p in parts], axis=0).astype(np.int64)
        out.scores = sc.merge([p.scores for p in parts if p.scores is not None])
        lows = [p.low for p in parts if p.low is not None]
        highs = [p.high for p in parts if p.high is not None]
        out.low, out.high = (min(lows) if lows else None), (max(highs) if highs else None)
        out.log_loss, out.brier = _plus([p.log_loss for p in parts]), _plus([p.brier for p in parts])
    elif first.task == "multiclass":
        if not out.unknown:
            out.correct = sum(p.correct for p in parts)
            out.true_positive = _plus([p.true_positive for p in parts])
            out.observed = _plus([p.observed for p in parts])
            out.predicted = _plus([p.predicted for p in parts])
            out.log_loss = _plus([p.log_loss for p in parts])
    else:
        for name in ("abs_error", "sq_error", "y_sum", "y2_sum"):
            setattr(out, name, _plus([getattr(p, name) for p in parts]))
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def figure(summary: PerformanceSummary, name: str) -> float:
    """One metric of every summarised row (NaN where its denominator is empty)."""
    s = summary
    n = s.labelled
    if s.task == "binary":
        tp, fp, fn, tn = (int(v) for v in s.cells)
        if name == "roc_auc":
            return sc.auc(s.scores) if s.scores is not None else float("nan")
        if name == "average_precision":
            return sc.average_precision(s.scores) if s.scores is not None else float("nan")
        if name == "log_loss":
            return s.log_loss.mean(n) if s.log_loss is not None else float("nan")
        if name == "brier_score":
            return s.brier.mean(n) if s.brier is not None else float("nan")
        if name == "accuracy":
            return _ratio(tp + tn, tp + fp + fn + tn)
        if name == "precision":
            return _ratio(tp, tp + fp)
        if name == "recall":
            return _ratio(tp, tp + fn)
        if name == "f1":
            return _ratio(2 * tp, 2 * tp + fp + fn)
        if name == "balanced_accuracy":
            return (_ratio(tp, tp + fn) + _ratio(tn, tn + fp)) / 2
    elif s.task == "multiclass":
        if name == "accuracy":
            return _ratio(s.correct, n)
        if name == "f1_macro":
            assert s.true_positive is not None and s.observed is not None and s.predicted is not None
            denominator = s.observed + s.predicted  # 2tp + fp + fn
            present = denominator > 0
            if not present.any():
                return float("nan")
            f1 = np.where(present, 2 * s.true_positive / np.where(present, denominator, 1), 0.0)
            return float(f1.sum() / present.sum())
        if name == "log_loss":
            return s.log_loss.mean(n) if s.log_loss is not None else float("nan")
    else:
        assert s.abs_error is not None and s.sq_error is not None and s.y_sum is not None and s.y2_sum is not None
        if name == "mae":
            return s.abs_error.mean(n)
        if name == "rmse":
            return float(np.sqrt(s.sq_error.mean(n)))
        if name == "r2":
            if n == 0 or not all(v.finite for v in (s.sq_error, s.y_sum, s.y2_sum)):
                return float("nan")
            ss_tot = s.y2_sum.fraction - s.y_sum.fraction ** 2 / n
            return rounded(1 - s.sq_error.fraction / ss_tot) if ss_tot > 0 else float("nan")
    raise KeyError(name)


def probability_scores(summary: PerformanceSummary) -> bool:
    """Whether every labelled score lies in [0, 1] (NaN left out)."""
    return summary.low is not None and summary.high is not None and summary.low >= 0 and summary.high <= 1

