"""Intervals: the vectorised bootstrap, and the Student-t and Wilson intervals.

Bootstrap: metrics computed on resample *counts*, not on copied rows.

A bootstrap resample of n rows is a vector of counts c (how often each row was drawn). Every
metric here is a function of weighted sums, so B resamples are one matrix product C @ v
with C of shape (B, n), done in chunks to bound memory. The point estimate (all counts 1)
and each resample use the same formula, checked against scikit-learn in the tests.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def resample_counts(rng: np.random.Generator, n: int, size: int) -> FloatArray:
    """``size`` bootstrap resamples of ``n`` rows as a (size, n) matrix of draw counts."""
    idx = rng.integers(0, n, size=(size, n))
    offsets = (np.arange(size) * n)[:, None]
    return np.bincount((idx + offsets).ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def bootstrap(statistic: Callable[[FloatArray], FloatArray], n: int, *, resamples: int, rng: np.random.Generator,
              chunk_cells: int = 4_000_000) -> FloatArray:
    """Apply ``statistic`` (counts (b, n) -> values (b,) or (b, m)) to ``resamples`` resamples."""
    chunk = max(1, min(resamples, chunk_cells // max(n, 1)))
    parts = []
    done = 0
    while done < resamples:
        b = min(chunk, resamples - done)
        parts.append(np.asarray(statistic(resample_counts(rng, n, b))))
        done += b
    return np.concatenate(parts, axis=0)


def percentile_interval(values: FloatArray, confidence: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval, ignoring resamples where the figure is undefined."""
    finite = values[np.isfinite(values)]
    if finite.size < max(10, 0.5 * values.size):
        return None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def t_interval(values: FloatArray, confidence: float) -> tuple[float, tuple[float, float]]:
    """Mean of repeated draws and its two-sided Student-t interval (``len(values) - 1`` degrees
    of freedom, standard deviation with ddof 1)."""
    from scipy import stats

    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, (mean - half, mean + half)


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (Wilson 1927); exact 0 or 1 at the ends."""
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0 or n successes the bound is exact; rounding would leave e.g. 1e-19
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return float(low), float(high)


def level_text(confidence: float) -> str:
    """A confidence level as a reader writes it: 0.95 -> "95%", 0.975 -> "97.5%".

    >>> level_text(0.95), level_text(0.975), level_text(0.9)
    ('95%', '97.5%', '90%')
    """
    return f"{confidence * 100:g}%"


def bootstrap_se(values: FloatArray) -> float | None:
    """Standard deviation of the bootstrap draws (ddof 1) where the figure is defined: the
    standard error that ``auditkit diff`` uses to test a change between two runs."""
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return None
    return float(np.std(finite, ddof=1))


def _div(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


# ---------------------------------------------------------------- binary classification


class BinaryMetrics:
    """Binary metrics of decisions ``d`` and scores ``p`` against labels ``y`` (all 0/1 but p)."""

    def __init__(self, y: FloatArray, d: FloatArray, p: FloatArray):
        from scipy import sparse

        self.y, self.d, self.p = y.astype(np.float64), d.astype(np.float64), p.astype(np.float64)
        self.cells = np.column_stack([self.y * self.d, (1 - self.y) * self.d, self.y * (1 - self.d),
                                      (1 - self.y) * (1 - self.d)])  # tp fp fn tn
        eps = np.finfo(np.float64).eps
        q = np.clip(self.p, eps, 1 - eps)
        self.row_log_loss = -(self.y * np.log(q) + (1 - self.y) * np.log(1 - q))
        self.row_brier = (self.p - self.y) ** 2
        uniq, inverse = np.unique(self.p, return_inverse=True)
        self._groups = sparse.csr_matrix((np.ones(len(self.p)), (np.arange(len(self.p)), inverse)),
                                         shape=(len(self.p), len(uniq)))

    def confusion(self, C: FloatArray) -> FloatArray:
        return C @ self.cells  # (b, 4)

    def compute(self, name: str, C: FloatArray) -> FloatArray:
        if name in ("roc_auc", "average_precision"):
            pos = np.asarray(self._groups.T.dot((C * self.y).T).T)  # (b, U), unique scores ascending
            neg = np.asarray(self._groups.T.dot((C * (1 - self.y)).T).T)
            return self._auc(pos, neg) if name == "roc_auc" else self._ap(pos, neg)
        if name == "log_loss":
            return _div(C @ self.row_log_loss, C.sum(axis=1))
        if name == "brier_score":
            return _div(C @ self.row_brier, C.sum(axis=1))
        tp, fp, fn, tn = self.confusion(C).T
        total = tp + fp + fn + tn
        if name == "accuracy":
            return _div(tp + tn, total)
        if name == "precision":
            return _div(tp, tp + fp)
        if name == "recall":
            return _div(tp, tp + fn)
        if name == "f1":
            return _div(2 * tp, 2 * tp + fp + fn)
        if name == "balanced_accuracy":
            return (_div(tp, tp + fn) + _div(tn, tn + fp)) / 2
        raise KeyError(name)

    @staticmethod
    def _auc(pos: FloatArray, neg: FloatArray) -> FloatArray:
        below = np.cumsum(neg, axis=1) - neg  # negatives with a strictly lower score
        numerator = (pos * (below + 0.5 * neg)).sum(axis=1)
        return _div(numerator, pos.sum(axis=1) * neg.sum(axis=1))

    @staticmethod
    def _ap(pos: FloatArray, neg: FloatArray) -> FloatArray:
        # thresholds from the highest score down, as scikit-learn's precision_recall_curve
        tp = np.cumsum(pos[:, ::-1], axis=1)
        fp = np.cumsum(neg[:, ::-1], axis=1)
        total_pos = tp[:, -1:]
        precision = np.nan_to_num(_div(tp, tp + fp))
        recall = _div(tp, np.broadcast_to(total_pos, tp.shape))
        steps = np.diff(np.concatenate([np.zeros((tp.shape[0], 1)), recall], axis=1), axis=1)
        ap = (steps * precision).sum(axis=1)
        return np.where(total_pos[:, 0] > 0, ap, np.nan)


# ---------------------------------------------------------------- multiclass


class MulticlassMetrics:
    def __init__(self, y: npt.NDArray[np.int64], d: npt.NDArray[np.int64], proba: FloatArray | None, k: int):
        self.k = k
        self.correct = (y == d).astype(np.float64)
        self.true_k = np.eye(k)[y]  # (n, k)
        self.pred_k = np.eye(k)[d]
        self.row_log_loss = None
        if proba is not None:
            eps = np.finfo(np.float64).eps
            normalised = proba / proba.sum(axis=1, keepdims=True)
            self.row_log_loss = -np.log(np.clip(normalised[np.arange(len(y)), y], eps, 1 - eps))

    def compute(self, name: str, C: FloatArray) -> FloatArray:
        if name == "accuracy":
            return _div(C @ self.correct, C.sum(axis=1))
        if name == "f1_macro":
            tp = C @ (self.true_k * self.pred_k)
            true = C @ self.true_k
            pred = C @ self.pred_k
            denominator = true + pred  # 2tp + fp + fn
            f1 = _div(2 * tp, denominator)
            present = denominator > 0
            return _div(np.where(present, f1, 0.0).sum(axis=1), present.sum(axis=1).astype(np.float64))
        if name == "log_loss":
            if self.row_log_loss is None:
                return np.full(C.shape[0], np.nan)
            return _div(C @ self.row_log_loss, C.sum(axis=1))
        raise KeyError(name)


# ---------------------------------------------------------------- regression


class RegressionMetrics:
    def __init__(self, y: FloatArray, pred: FloatArray):
        self.y = y.astype(np.float64)
        error = pred.astype(np.float64) - self.y
        self.abs_error, self.sq_error, self.y2 = np.abs(error), error ** 2, self.y ** 2

    def compute(self, name: str, C: FloatArray) -> FloatArray:
        total = C.sum(axis=1)
        if name == "mae":
            return _div(C @ self.abs_error, total)
        if name == "rmse":
            return np.sqrt(_div(C @ self.sq_error, total))
        if name == "r2":
            ss_res = C @ self.sq_error
            ss_tot = C @ self.y2 - _div((C @ self.y) ** 2, total)
            return 1 - _div(ss_res, ss_tot)
        raise KeyError(name)
