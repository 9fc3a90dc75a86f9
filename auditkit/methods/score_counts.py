"""Scores as counts per distinct value: ROC AUC, average precision, the ROC curve and the
median from counts that combine exactly across blocks of rows.

A ranking figure depends on the rows only through how many positives and negatives share
each score value. :func:`score_counts` counts them per key (a group, or one key for all rows),
:func:`merge` adds blocks' counts, and the figures below read the merged counts: the same
integers whatever the split, so the same figure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]


@dataclass
class ScoreCounts:
    """Per (key, distinct score): positives and negatives (or, unlabelled, rows), sorted by key
    then score (NaN last)."""

    key: npt.NDArray[np.int64]
    value: FloatArray
    pos: npt.NDArray[np.int64]
    neg: npt.NDArray[np.int64]

    def of(self, key: int) -> "ScoreCounts":
        rows = self.key == key
        return ScoreCounts(self.key[rows], self.value[rows], self.pos[rows], self.neg[rows])

    @property
    def total(self) -> npt.NDArray[np.int64]:
        return self.pos + self.neg


def score_counts(scores: npt.ArrayLike, positive: npt.ArrayLike | None = None,
                 keys: npt.ArrayLike | None = None) -> ScoreCounts:
    """Counts of each (key, score value): ``positive`` (bool per row) splits them into positives
    and negatives; without it every row counts in ``pos``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    k = np.zeros(len(s), dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64).ravel()
    p = np.ones(len(s), dtype=bool) if positive is None else np.asarray(positive, dtype=bool).ravel()
    return _reduce(k, s, p.astype(np.int64), (~p).astype(np.int64))


def _reduce(key: np.ndarray, value: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> ScoreCounts:
    if len(value) == 0:
        return ScoreCounts(key.astype(np.int64), value.astype(np.float64), pos.astype(np.int64), neg.astype(np.int64))
    frame = pd.DataFrame({"key": key, "value": value, "pos": pos, "neg": neg})
    summed = frame.groupby(["key", "value"], sort=True, dropna=False).sum()  # NaN sorts last, one value
    index = summed.index
    return ScoreCounts(index.get_level_values(0).to_numpy(np.int64), index.get_level_values(1).to_numpy(np.float64),
                       summed["pos"].to_numpy(np.int64), summed["neg"].to_numpy(np.int64))


def merge(parts: list[ScoreCounts], remaps: list[npt.NDArray[np.int64]] | None = None) -> ScoreCounts:
    """The counts of several blocks (``remaps``: each block's key -> the merged key)."""
    keys = [p.key if remaps is None else remaps[i][p.key] for i, p in enumerate(parts)]
    return _reduce(np.concatenate(keys), np.concatenate([p.value for p in parts]),
                   np.concatenate([p.pos for p in parts]), np.concatenate([p.neg for p in parts]))


def auc(counts: ScoreCounts) -> float:
    """ROC AUC (ties count one half): BinaryMetrics' formula on the counts, NaN without both classes."""
    from auditkit.methods.stats import BinaryMetrics

    pos, neg = counts.pos.astype(np.float64)[None, :], counts.neg.astype(np.float64)[None, :]
    return float(BinaryMetrics._auc(pos, neg)[0])


def average_precision(counts: ScoreCounts) -> float:
    """Average precision, as scikit-learn's ``average_precision_score`` defines it."""
    from auditkit.methods.stats import BinaryMetrics

    pos, neg = counts.pos.astype(np.float64)[None, :], counts.neg.astype(np.float64)[None, :]
    return float(BinaryMetrics._ap(pos, neg)[0])


def roc_points(counts: ScoreCounts) -> tuple[FloatArray, FloatArray]:
    """(false positive rates, true positive rates) of scikit-learn's ``roc_curve`` (with its
    ``drop_intermediate``), from the counts: thresholds from the highest score down."""
    tps = np.cumsum(counts.pos[::-1]).astype(np.float64)
    fps = np.cumsum(counts.neg[::-1]).astype(np.float64)
    if len(tps) > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        tps, fps = tps[keep], fps[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
        tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr


def median(counts: ScoreCounts) -> float:
    """The median of the counted values (every key; NaN values left out), as ``np.nanmedian``:
    the middle value, or the mean of the two middle ones."""
    finite = ~np.isnan(counts.value)
    merged = _reduce(np.zeros(int(finite.sum()), dtype=np.int64), counts.value[finite], counts.total[finite],
                     np.zeros(int(finite.sum()), dtype=np.int64))
    n = int(merged.pos.sum())
    if n == 0:
        return float("nan")
    ends = np.cumsum(merged.pos)  # the last (0-based: ends - 1) position of each value in sorted order
    def at(position: int) -> float:
        return float(merged.value[int(np.searchsorted(ends, position, side="right"))])
    if n % 2:
        return at(n // 2)
    return float(np.mean(np.array([at(n // 2 - 1), at(n // 2)])))


def count_beyond(counts: ScoreCounts, cut: float, n_keys: int, *, above: bool) -> npt.NDArray[np.float64]:
    """Per key, the rows whose value is strictly above (or below) ``cut``."""
    beyond = counts.value > cut if above else counts.value < cut
    return np.bincount(counts.key[beyond], weights=counts.total[beyond].astype(np.float64), minlength=n_keys)
