"""Group rates from confusion counts, vectorised over groups and bootstrap resamples.

Each group is summarised by six counts: decision (0/1) x target (0, 1, missing). Every rate
is a ratio of sums of those counts, so a stratified bootstrap is a multinomial draw of the
six counts per group — no row is copied and pandas is not called per resample.
"""
from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# cell index = decision * 3 + target state (0: target 0, 1: target 1, 2: missing)
D0Y0, D0Y1, D0YM, D1Y0, D1Y1, D1YM = range(6)

RATES: Final = ("selection_rate", "base_rate", "true_positive_rate", "false_positive_rate", "false_negative_rate",
                "true_negative_rate", "positive_predictive_value", "negative_predictive_value", "accuracy")
LABEL_RATES: Final = RATES[1:]


def cell_counts(codes: npt.NDArray[np.int64], n_groups: int, decisions: npt.NDArray[np.int64],
                y: FloatArray | None) -> FloatArray:
    """(groups, 6) counts of decision x target state."""
    if y is None:
        state = np.full(len(codes), 2)
    else:
        state = np.where(np.isnan(y), 2, y).astype(np.int64)
    cell = decisions.astype(np.int64) * 3 + state
    return np.bincount(codes * 6 + cell, minlength=n_groups * 6).reshape(n_groups, 6).astype(np.float64)


def _div(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rates_from_counts(counts: FloatArray, favorable_decision: int) -> dict[str, FloatArray]:
    """Every rate of RATES, for counts of shape (..., 6); NaN where a denominator is empty."""
    c = counts
    n = c.sum(axis=-1)
    tp, fp, fn, tn = c[..., D1Y1], c[..., D1Y0], c[..., D0Y1], c[..., D0Y0]
    favourable = (c[..., D1Y0] + c[..., D1Y1] + c[..., D1YM]) if favorable_decision == 1 else \
        (c[..., D0Y0] + c[..., D0Y1] + c[..., D0YM])
    labelled = tp + fp + fn + tn
    return {
        "selection_rate": _div(favourable, n),
        "base_rate": _div(tp + fn, labelled),
        "true_positive_rate": _div(tp, tp + fn),
        "false_positive_rate": _div(fp, fp + tn),
        "false_negative_rate": _div(fn, tp + fn),
        "true_negative_rate": _div(tn, fp + tn),
        "positive_predictive_value": _div(tp, tp + fp),
        "negative_predictive_value": _div(tn, tn + fn),
        "accuracy": _div(tp + tn, labelled),
    }


def stratified_resamples(counts: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    """(resamples, groups, 6): each group's rows resampled with replacement, its size kept."""
    n = counts.sum(axis=1)
    pvals = _div(counts, n[:, None])
    pvals = np.where(np.isnan(pvals), 0.0, pvals)
    pvals[n == 0, 0] = 1.0  # an empty group stays empty (n = 0 draws)
    return rng.multinomial(n.astype(np.int64), pvals, size=(resamples, len(n))).astype(np.float64)


def spread(values: FloatArray, included: npt.NDArray[np.bool_], reference: int | None) -> tuple[FloatArray, FloatArray]:
    """(ratio, difference) across included groups along the last axis.

    Without a reference: smallest / largest and largest - smallest. With a reference group:
    the smallest ratio group / reference and the largest absolute difference from it.
    Groups whose rate is undefined (NaN) are left out; with fewer than two left, NaN.
    """
    v = np.where(included, values, np.nan)
    defined = np.isfinite(v).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        if reference is None:
            low, high = np.nanmin(v, axis=-1), np.nanmax(v, axis=-1)
            ratio = _div(low, high)
            ratio = np.where((high == 0) & (low == 0), 1.0, ratio)  # all zero: no disparity
            difference = high - low
        else:
            ref = v[..., reference]
            others = v.copy()
            others[..., reference] = np.nan
            ratio = np.nanmin(_div(others, ref[..., None]), axis=-1)
            difference = np.nanmax(np.abs(others - ref[..., None]), axis=-1)
    ok = defined >= 2
    return np.where(ok, ratio, np.nan), np.where(ok, difference, np.nan)


class _quiet:
    """Silence numpy's all-NaN slice warnings: an all-NaN slice is a defined outcome here."""

    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)
