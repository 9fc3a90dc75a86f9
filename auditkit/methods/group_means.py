"""Group means of per-row values (a regression's prediction, absolute error, residual), their
gaps across groups, a stratified bootstrap of them, and Welch's test of each group against a
reference group.

The fairness of a regression is read from means per group rather than from rates: the mean
prediction (demographic parity's analogue), the mean absolute error (accuracy's) and the mean
residual, prediction minus outcome (calibration's: a group whose mean residual is above 0 is
over-predicted). A stratified bootstrap resamples each group's rows separately, its size kept,
as ``methods.rates.stratified_resamples`` does for the binary rates.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from auditkit.methods.stats import resample_counts

FloatArray = npt.NDArray[np.float64]

WELCH = "Welch's t test"


def group_means(codes: npt.NDArray[np.int64], n_groups: int, values: FloatArray) -> FloatArray:
    """(groups, columns) means of ``values`` (rows, columns) per group, NaN rows left out; NaN
    where a group has no row with a value."""
    out = np.full((n_groups, values.shape[1]), np.nan)
    for j in range(values.shape[1]):
        ok = np.isfinite(values[:, j])
        total = np.bincount(codes[ok], weights=values[ok, j], minlength=n_groups)
        count = np.bincount(codes[ok], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def stratified_mean_draws(codes: npt.NDArray[np.int64], n_groups: int, values: FloatArray, resamples: int,
                          rng: np.random.Generator, chunk_cells: int = 4_000_000) -> FloatArray:
    """(resamples, groups, columns): each group's rows resampled with replacement, its size kept,
    and the mean of each column over the resample (NaN values left out of that column's mean)."""
    out = np.full((resamples, n_groups, values.shape[1]), np.nan)
    for g in range(n_groups):
        rows = values[codes == g]
        n = len(rows)
        if n == 0:
            continue
        finite = np.isfinite(rows)
        filled = np.where(finite, rows, 0.0)
        chunk = max(1, min(resamples, chunk_cells // n))
        done = 0
        while done < resamples:
            b = min(chunk, resamples - done)
            C = resample_counts(rng, n, b)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[done:done + b, g, :] = (C @ filled) / (C @ finite.astype(np.float64))
            done += b
    return out


def welch_test(a: FloatArray, b: FloatArray) -> float | None:
    """Two-sided p-value of Welch's t test of equal means (scipy's ``ttest_ind`` with
    ``equal_var=False``); None when either sample has fewer than two values or both are constant."""
    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return None
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def min_detectable_difference(a: FloatArray, b: FloatArray, *, alpha: float, power: float) -> float | None:
    """The smallest absolute difference of means that a two-sided test at ``alpha`` finds with
    ``power``, given the two samples' sizes and spreads (normal approximation:
    (z_{1-alpha/2} + z_power) sqrt(s_a^2/n_a + s_b^2/n_b))."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    se = math.sqrt(float(np.var(a, ddof=1)) / len(a) + float(np.var(b, ddof=1)) / len(b))
    return float((stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) * se)


def compare_means(attribute: str, labels: Sequence[str], codes: npt.NDArray[np.int64], values: FloatArray, *,
                  measure: str, included: npt.NDArray[np.bool_], reference: int, alpha: float,
                  power: float, ratio: bool = True) -> list[dict[str, Any]]:
    """Each included group against the ``reference`` group on the mean of ``values`` (one
    column, NaN left out), as records of table ``comparisons``: the two means and sizes, their
    ratio (with ``ratio``, when both means are positive: not for a residual, whose sign is its
    meaning) and difference, Welch's test and the minimum
    detectable difference. ``group_rate``/``reference_rate`` hold the means, so the report's
    comparisons table reads them as it reads rates."""
    ref_values = values[(codes == reference) & np.isfinite(values)]
    records = []
    for g in np.flatnonzero(included):
        if g == reference:
            continue
        mine = values[(codes == g) & np.isfinite(values)]
        if len(mine) == 0 or len(ref_values) == 0:
            continue
        mean, ref_mean = float(mine.mean()), float(ref_values.mean())
        p_value = welch_test(mine, ref_values)
        records.append({"attribute": attribute, "rate": measure, "group": labels[g],
                        "reference_group": labels[reference], "n": int(len(mine)), "reference_n": int(len(ref_values)),
                        "group_rate": mean, "reference_rate": ref_mean,
                        "ratio": mean / ref_mean if ratio and ref_mean > 0 and mean >= 0 else None,
                        "difference": mean - ref_mean, "test": WELCH if p_value is not None else None,
                        "p_value": p_value, "min_detectable_ratio": None,
                        "min_detectable_difference": min_detectable_difference(mine, ref_values, alpha=alpha,
                                                                               power=power),
                        "underpowered": False})
    return records
