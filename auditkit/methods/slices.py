"""Slices of a dataset described by feature predicates, their metric against the rest, and a
beam search for the weakest ones.

A predicate is ``feature == category``, ``feature in [low, high)`` on the audit data's
quantiles (the lowest range open below, the highest open above), or ``feature is missing``;
a slice is a conjunction of predicates on different features. The search evaluates every
single predicate, keeps the ``beam_width`` weakest, and extends each with every predicate of
another feature, up to ``max_depth`` predicates; every slice it evaluates (with at least
``min_size`` rows, and at least one row outside it) is one test of the family that the
multiple-testing correction covers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Predicate:
    feature: str
    text: str
    mask: BoolArray

    def __hash__(self) -> int:
        return hash((self.feature, self.text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Predicate) and (self.feature, self.text) == (other.feature, other.text)


def _fmt(value: float) -> str:
    return f"{value:.6g}"  # 6 digits: an income of 23,110 reads 23110, not 2.311e+04


def candidate_predicates(frame: pd.DataFrame, features: list[str], *, bins: int, min_size: int,
                         max_categories: int = 50) -> list[Predicate]:
    """Every predicate on ``features`` that holds for at least ``min_size`` rows.

    Numeric columns: ranges between the audit data's quantiles at 0, 1/bins, ..., 1 (duplicate
    edges dropped), as ``[low, high)`` with the outer ranges open. Other columns: equality with
    each of the ``max_categories`` most frequent values. Missing values: ``is missing``.
    """
    out: list[Predicate] = []
    for feature in features:
        column = frame[feature]
        missing = column.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            present = values[~missing]
            if present.size == 0:
                continue
            edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))[1:-1]
            codes = np.searchsorted(edges, values, side="right")
            for k in range(len(edges) + 1):
                mask = (codes == k) & ~missing
                if k == 0:
                    text = f"{feature} < {_fmt(edges[0])}" if len(edges) else f"{feature} is present"
                elif k == len(edges):
                    text = f"{feature} >= {_fmt(edges[-1])}"
                else:
                    text = f"{_fmt(edges[k - 1])} <= {feature} < {_fmt(edges[k])}"
                if mask.sum() >= min_size:
                    out.append(Predicate(feature, text, mask))
        else:
            text_values = column.astype(object).where(~missing, None)
            for value in text_values.dropna().astype(str).value_counts().index[:max_categories]:
                mask = (text_values.astype(str) == value).to_numpy() & ~missing
                if mask.sum() >= min_size:
                    out.append(Predicate(feature, f"{feature} = {value}", mask))
        if missing.sum() >= min_size:
            out.append(Predicate(feature, f"{feature} is missing", missing))
    return out


@dataclass(frozen=True)
class Slice:
    predicates: tuple[Predicate, ...]
    mask: BoolArray
    value: float  # the metric in the slice
    gap: float  # how much worse than the rest (> 0: worse)

    @property
    def name(self) -> str:
        return " & ".join(p.text for p in self.predicates)

    @property
    def n(self) -> int:
        return int(self.mask.sum())


def beam_search(predicates: list[Predicate], gap_of: Callable[[BoolArray], tuple[float, float] | None], *,
                max_depth: int, beam_width: int, min_size: int) -> list[Slice]:
    """Every slice evaluated (each once), weakest first. ``gap_of(mask)`` gives (value, gap) or
    None when the metric is undefined there (e.g. an AUC of a slice with one class)."""
    n_rows = len(predicates[0].mask) if predicates else 0
    seen: dict[frozenset[Predicate], Slice] = {}

    def evaluate(parts: tuple[Predicate, ...], mask: BoolArray) -> Slice | None:
        key = frozenset(parts)
        if key in seen:
            return None
        size = int(mask.sum())
        if size < min_size or size == n_rows:
            return None
        result = gap_of(mask)
        if result is None or not np.isfinite(result[1]):
            return None
        found = Slice(tuple(sorted(parts, key=lambda p: p.text)), mask, result[0], result[1])
        seen[key] = found
        return found

    level = [s for s in (evaluate((p,), p.mask) for p in predicates) if s is not None]
    for _ in range(1, max_depth):
        beam = sorted(level, key=lambda s: -s.gap)[:beam_width]
        level = []
        for base in beam:
            used = {p.feature for p in base.predicates}
            for predicate in predicates:
                if predicate.feature in used:
                    continue
                grown = evaluate(base.predicates + (predicate,), base.mask & predicate.mask)
                if grown is not None:
                    level.append(grown)
    return sorted(seen.values(), key=lambda s: -s.gap)


def auc(y: FloatArray, score: FloatArray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half; NaN with one class."""
    from scipy.stats import rankdata

    positives = y == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_se(value: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    q1, q2 = value / (2 - value), 2 * value ** 2 / (1 + value)
    variance = (value * (1 - value) + (n_pos - 1) * (q1 - value ** 2) + (n_neg - 1) * (q2 - value ** 2)) / (n_pos * n_neg)
    return float(np.sqrt(max(variance, 0.0)))


def proportion_test(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided p-value that proportion 1 is below proportion 2 (pooled two-proportion z-test)."""
    from scipy.stats import norm

    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(norm.cdf((k1 / n1 - k2 / n2) / se))
