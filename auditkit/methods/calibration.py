"""Calibration of probability scores: binning, expected/maximum calibration error, and the
Murphy decomposition of the Brier score.

Binning follows :func:`sklearn.calibration.calibration_curve`: ``uniform`` edges are
``linspace(0, 1, bins + 1)``, ``quantile`` edges are the scores' percentiles; a score goes to
bin ``searchsorted(edges[1:-1], p)`` (bins are ``(lower, upper]``, the first one closed at
0). Every figure is a function of per-bin weighted sums, so a bootstrap resample (a vector of
draw counts, :mod:`auditkit.methods.stats`) is one matrix product with the bins kept fixed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Strategy = Literal["uniform", "quantile"]


def bin_edges(p: FloatArray, bins: int, strategy: Strategy) -> FloatArray:
    """The ``bins + 1`` edges, as scikit-learn's ``calibration_curve`` makes them."""
    if strategy == "quantile":
        # linspace(0, 1) * 100, not linspace(0, 100): the same positions to the last bit as
        # scikit-learn, so a score that is itself an edge lands in the same bin
        return np.percentile(p, np.linspace(0.0, 1.0, bins + 1) * 100)
    return np.linspace(0.0, 1.0, bins + 1)


def bin_ids(p: FloatArray, edges: FloatArray) -> npt.NDArray[np.int64]:
    """Bin of each score (0-based), scikit-learn's rule: ``searchsorted(edges[1:-1], p)``."""
    return np.searchsorted(edges[1:-1], p).astype(np.int64)


@dataclass(frozen=True)
class BinnedCalibration:
    """Per-bin sums of scores ``p`` and outcomes ``y`` (1 = the event), with fixed bins.

    ``sums(C)`` gives, for a (b, n) matrix of row weights (1 = every row once, a bootstrap
    resample's draw counts otherwise), the per-bin count, score sum, outcome sum and
    squared-score sum, each (b, bins).
    """

    p: FloatArray
    y: FloatArray
    ids: npt.NDArray[np.int64]
    edges: FloatArray

    @classmethod
    def build(cls, p: FloatArray, y: FloatArray, *, bins: int, strategy: Strategy) -> "BinnedCalibration":
        p = np.asarray(p, dtype=np.float64)
        edges = bin_edges(p, bins, strategy)
        return cls(p=p, y=np.asarray(y, dtype=np.float64), ids=bin_ids(p, edges), edges=edges)

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    def _onehot(self) -> FloatArray:
        onehot = np.zeros((len(self.p), self.n_bins))
        onehot[np.arange(len(self.p)), self.ids] = 1.0
        return onehot

    def sums(self, C: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        onehot = self._onehot()
        count = C @ onehot
        score = C @ (onehot * self.p[:, None])
        event = C @ (onehot * self.y[:, None])
        square = C @ (onehot * (self.p ** 2)[:, None])
        return count, score, event, square

    def errors(self, C: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(ECE, MCE) for each weight row of ``C``: ECE = sum_b (n_b / n) |o_b - p_b|,
        MCE = max over non-empty bins of |o_b - p_b| (o_b observed rate, p_b mean score)."""
        count, score, event, _ = self.sums(C)
        total = count.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(event - score) / np.where(count > 0, count, 1.0)
            ece = np.where(total > 0, (count * gap).sum(axis=1) / np.where(total > 0, total, 1.0), np.nan)
        mce = np.where(total > 0, np.where(count > 0, gap, -np.inf).max(axis=1), np.nan)
        return ece, mce


def ece_noise_floor(calibration: BinnedCalibration) -> float:
    """ECE expected from sampling alone if the scores were calibrated: sum_b (n_b/n) E|o_b - p_b|
    with n_b o_b ~ Binomial(n_b, p_b), by the normal approximation E|o_b - p_b| = sqrt(2 p_b (1 - p_b)
    / (pi n_b)). The ECE estimator is biased upwards by about this much, more in small samples."""
    count, score, _, _ = calibration.sums(np.ones((1, len(calibration.p))))
    count, score = count[0], score[0]
    present = count > 0
    p_b = score[present] / count[present]
    expected = np.sqrt(2.0 * p_b * (1.0 - p_b) / (np.pi * count[present]))
    return float(np.sum(count[present] * expected) / count.sum())


@dataclass(frozen=True)
class BrierDecomposition:
    """Murphy (1973) decomposition of the Brier score over the bins, with the two terms that
    continuous forecasts add inside a bin (Stephenson, Coelho & Jolliffe 2008):

    ``brier = reliability - resolution + uncertainty + within_bin_variance - 2 * within_bin_covariance``

    The last two are 0 when every forecast in a bin is the same number (binned forecasts),
    where Murphy's identity ``brier = reliability - resolution + uncertainty`` holds exactly.
    """

    brier: float
    reliability: float  # sum_b (n_b/n) (p_b - o_b)^2: 0 = calibrated, lower is better
    resolution: float  # sum_b (n_b/n) (o_b - o)^2: higher is better (the bins tell outcomes apart)
    uncertainty: float  # o (1 - o): of the outcomes alone, no forecast changes it
    within_bin_variance: float  # (1/n) sum_b sum_i (p_i - p_b)^2
    within_bin_covariance: float  # (1/n) sum_b sum_i (p_i - p_b)(y_i - o_b)


def brier_decomposition(calibration: BinnedCalibration) -> BrierDecomposition:
    p, y, ids = calibration.p, calibration.y, calibration.ids
    n = len(p)
    count = np.bincount(ids, minlength=calibration.n_bins).astype(np.float64)
    present = count > 0
    safe = np.where(present, count, 1.0)
    mean_p = np.bincount(ids, weights=p, minlength=calibration.n_bins) / safe
    mean_y = np.bincount(ids, weights=y, minlength=calibration.n_bins) / safe
    base = float(y.mean())
    d, e = p - mean_p[ids], y - mean_y[ids]
    return BrierDecomposition(
        brier=float(np.mean((p - y) ** 2)),
        reliability=float(np.sum(count[present] * (mean_p[present] - mean_y[present]) ** 2) / n),
        resolution=float(np.sum(count[present] * (mean_y[present] - base) ** 2) / n),
        uncertainty=base * (1.0 - base),
        within_bin_variance=float(np.sum(d * d) / n),
        within_bin_covariance=float(np.sum(d * e) / n),
    )
