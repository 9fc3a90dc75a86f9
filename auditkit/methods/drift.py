"""Distribution shift between a reference sample and a current one: the population stability
index (PSI), two-sample tests, the Wasserstein distance, and a domain classifier.

PSI bins (stated once here, and in every check that uses them):

- numeric: edges are the reference's quantiles at 0, 1/k, ..., 1 (duplicates dropped, so a
  discrete column gets fewer bins); a value v goes to bin ``searchsorted(inner_edges, v,
  side="right")``, i.e. bins are ``[e_i, e_{i+1})``, the first open to -inf and the last to
  +inf, so values outside the reference's range land in the outer bins. Missing values are a
  bin of their own.
- categorical: one bin per value seen in either sample, plus one for missing values.

PSI = sum_i (a_i - r_i) ln(a_i / r_i) over the bins' shares a_i (current) and r_i
(reference), with an empty bin's share replaced by ``epsilon`` (so one empty bin does not
make PSI infinite). 0 = identical shares; the usual reading is < 0.1 stable, 0.1-0.25
moderate, > 0.25 a major shift (Siddiqi 2006, "Credit Risk Scorecards").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
MISSING = "(missing)"


def is_numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype))


@dataclass(frozen=True)
class Binned:
    """Shares of the reference and current samples over the same bins."""

    labels: list[str]
    reference_counts: npt.NDArray[np.int64]
    current_counts: npt.NDArray[np.int64]

    def shares(self) -> tuple[FloatArray, FloatArray]:
        return (self.reference_counts / max(1, self.reference_counts.sum()),
                self.current_counts / max(1, self.current_counts.sum()))


def quantile_edges(reference: FloatArray, bins: int) -> FloatArray:
    """The reference's quantiles at 0, 1/bins, ..., 1, duplicates dropped."""
    return np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)))


def bin_numeric(reference: pd.Series, current: pd.Series, bins: int) -> Binned:
    ref = reference.to_numpy(dtype=np.float64, na_value=np.nan)
    cur = current.to_numpy(dtype=np.float64, na_value=np.nan)
    ref_ok, cur_ok = ~np.isnan(ref), ~np.isnan(cur)
    if not ref_ok.any():
        raise ValueError("the reference has no value")
    edges = quantile_edges(ref[ref_ok], bins)
    inner = edges[1:-1]
    k = len(inner) + 1
    ref_counts = np.bincount(np.searchsorted(inner, ref[ref_ok], side="right"), minlength=k)
    cur_counts = np.bincount(np.searchsorted(inner, cur[cur_ok], side="right"), minlength=k)
    labels = ([f"< {inner[0]:.6g}"] if k > 1 else ["all"])
    labels += [f"{inner[i]:.6g} to < {inner[i + 1]:.6g}" for i in range(len(inner) - 1)]
    labels += [f">= {inner[-1]:.6g}"] if k > 1 else []
    missing = (~ref_ok).any() or (~cur_ok).any()
    if missing:
        ref_counts = np.append(ref_counts, int((~ref_ok).sum()))
        cur_counts = np.append(cur_counts, int((~cur_ok).sum()))
        labels.append(MISSING)
    return Binned(labels=labels, reference_counts=ref_counts.astype(np.int64), current_counts=cur_counts.astype(np.int64))


def _category_text(column: pd.Series) -> pd.Series:
    return column.astype(object).map(lambda v: MISSING if (pd.api.types.is_scalar(v) and pd.isna(v)) else str(v))


def bin_categorical(reference: pd.Series, current: pd.Series) -> Binned:
    ref, cur = _category_text(reference), _category_text(current)
    labels = sorted(set(ref) | set(cur))
    ref_counts = ref.value_counts().reindex(labels, fill_value=0).to_numpy(dtype=np.int64)
    cur_counts = cur.value_counts().reindex(labels, fill_value=0).to_numpy(dtype=np.int64)
    return Binned(labels=labels, reference_counts=ref_counts, current_counts=cur_counts)


def psi(binned: Binned, epsilon: float) -> float:
    """Population stability index over ``binned``, empty shares replaced by ``epsilon``."""
    r, a = binned.shares()
    r = np.where(r > 0, r, epsilon)
    a = np.where(a > 0, a, epsilon)
    return float(np.sum((a - r) * np.log(a / r)))


def chi_squared(binned: Binned) -> tuple[float, float, int]:
    """Pearson's chi-squared test of homogeneity on the 2 x k table of counts (no continuity
    correction), over the bins seen in either sample: (statistic, p-value, degrees of freedom)."""
    from scipy import stats

    table = np.vstack([binned.reference_counts, binned.current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof < 1:
        return 0.0, 1.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, dof)), dof


def ks_test(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test (scipy's ``ks_2samp``, two-sided, method ``auto``)."""
    from scipy import stats

    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference: FloatArray, current: FloatArray) -> float:
    """First Wasserstein distance between the two empirical distributions, in the feature's
    units: the integral of |F_ref(x) - F_cur(x)| dx over the pooled values."""
    values = np.sort(np.concatenate([reference, current]))
    widths = np.diff(values)
    f_ref = np.searchsorted(np.sort(reference), values[:-1], side="right") / len(reference)
    f_cur = np.searchsorted(np.sort(current), values[:-1], side="right") / len(current)
    return float(np.sum(np.abs(f_ref - f_cur) * widths))


def domain_classifier_scores(reference: pd.DataFrame, current: pd.DataFrame, *, folds: int, seed: int,
                             threads: int = 1) -> tuple[FloatArray, FloatArray]:
    """Out-of-fold probabilities that a row is ``current`` rather than ``reference``.

    A histogram gradient-boosting classifier (missing values and categories natively:
    non-numeric columns are ordinal-coded and declared categorical) is cross-validated over
    ``folds`` stratified, seeded folds. Returns (is_current 0/1, out-of-fold probability).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    both = pd.concat([reference, current], ignore_index=True)
    encoded: dict[str, Any] = {}
    categorical = []
    for name in both.columns:
        column = both[name]
        if is_numeric(column):
            encoded[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            codes, uniques = pd.factorize(_category_text(column), sort=True)
            encoded[name] = codes.astype(np.float64)
            if len(uniques) <= 255:  # the classifier's limit for a categorical column; beyond, codes as numbers
                categorical.append(name)
    X = pd.DataFrame(encoded)
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    # a small model: the question is whether the samples differ, not the best possible separator
    model = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, early_stopping=False,
                                           categorical_features=[c in categorical for c in X.columns],
                                           random_state=seed)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    # OpenMP threads beyond the check's share spin against the other checks' processes
    with threadpool_limits(limits=threads):
        proba = cross_val_predict(model, X, y, cv=splitter, method="predict_proba")[:, 1]
    return y, proba
