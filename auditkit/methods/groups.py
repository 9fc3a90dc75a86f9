"""Groups of a protected attribute (or an intersection), as fairness checks count them.

Missing values form their own group ``(missing)``. A numeric attribute with many distinct
values is continuous: it must be binned (``params.bins``) rather than compared value by value.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.errors import CheckError

MISSING = "(missing)"
MAX_GROUPS = 50


@dataclass(frozen=True)
class Grouping:
    attribute: str  # "sex", or "sex & race" for an intersection
    parts: tuple[str, ...]  # the columns behind it
    codes: npt.NDArray[np.int64]  # group index of every row
    labels: list[str]  # "F", or "F & Black"
    values: list[tuple[str, ...]]  # one entry per part


def _labels_of(series: pd.Series, name: str, bins: list[float] | None) -> pd.Series:
    if bins is not None:
        if not pd.api.types.is_numeric_dtype(series.dtype):
            raise CheckError(f"params.bins[{name}]: '{name}' is not numeric, so it cannot be binned")
        edges = sorted(bins)
        cut = pd.cut(series, bins=[-np.inf, *edges, np.inf], right=False)
        text = cut.astype(object).map(lambda iv: None if pd.isna(iv) else _interval_label(iv))
        return text.where(series.notna(), MISSING)
    if pd.api.types.is_float_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
        distinct = series.nunique(dropna=True)
        if distinct > MAX_GROUPS:
            raise continuous(name, distinct)
        # 1.0 and 1 name the same group: integral floats lose their ".0"
        return series.map(lambda v: MISSING if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    return series.astype(object).map(lambda v: MISSING if _is_missing(v) else str(v))


def continuous(name: str, distinct: int) -> CheckError:
    """The error for a numeric attribute of too many values to compare value by value."""
    return CheckError(f"protected attribute '{name}' is continuous ({distinct} distinct values); "
                      f"give bin edges, e.g. params.bins: {{{name}: [25, 45, 65]}}")


def _is_missing(value: object) -> bool:
    """None, NaN, and pandas' own pd.NA / NaT (nullable "string"/"boolean" columns, e.g. from Parquet)."""
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _interval_label(interval: pd.Interval) -> str:
    left, right = interval.left, interval.right
    if np.isinf(left):
        return f"< {right:g}"
    if np.isinf(right):
        return f">= {left:g}"
    return f"{left:g}-{right:g}"


def make_grouping(frame: pd.DataFrame, parts: list[str], bins: dict[str, list[float]]) -> Grouping:
    for name in parts:
        if name not in frame.columns:
            raise CheckError(f"protected attribute '{name}' is not a column of the data")
    texts = [_labels_of(frame[name], name, bins.get(name)) for name in parts]
    if len(parts) == 1:
        combined = texts[0]
    else:
        combined = texts[0].str.cat(texts[1:], sep=" & ")
    codes, uniques = pd.factorize(combined, sort=True)
    labels = [str(u) for u in uniques]
    values = [tuple(label.split(" & ")) if len(parts) > 1 else (label,) for label in labels]
    if len(parts) > 1:
        # a value may itself contain " & ": rebuild the parts from the columns instead
        first = pd.Series(np.arange(len(combined)), index=combined.index).groupby(codes).first()
        values = [tuple(t.iloc[int(first.loc[i])] for t in texts) for i in range(len(labels))]
    return Grouping(attribute=" & ".join(parts), parts=tuple(parts), codes=codes.astype(np.int64),
                    labels=labels, values=values)
