"""Cell values of the local checks' tables (plain Python, missing as None), and each numeric
feature's resolution: the decimals its observed values are written with."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd


def plain_value(value: Any) -> Any:
    """A data cell for results.json: numpy scalars as Python numbers, a missing value as None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def finite_or_none(value: float) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


#: More decimals than this means a continuous feature: its values are not snapped.
MAX_DECIMALS = 6


def decimals_of(values: np.ndarray) -> Optional[int]:
    """The fewest decimals that write every observed value exactly (0: an integer-valued
    feature; None: a continuous one, or no value)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tolerance = 1e-9 * np.maximum(1.0, np.abs(values))
    for digits in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, digits) - values) <= tolerance):
            return digits
    return None


def resolution_of(column: pd.Series) -> Optional[int]:
    """A numeric column's decimals: 0 for an integer dtype, else :func:`decimals_of` its values."""
    if pd.api.types.is_integer_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return 0
    return decimals_of(column.to_numpy(dtype=np.float64, na_value=np.nan))


def snap_nearest(points: np.ndarray, decimals: list[Optional[int]]) -> np.ndarray:
    """Each column of ``points`` rounded to its feature's resolution (None: left as it is), so
    a search over the features proposes only values the data could hold (an integer count is
    never 0.9998)."""
    out = np.array(points, dtype=np.float64, copy=True)
    for j, digits in enumerate(decimals):
        if digits is not None:
            out[..., j] = np.round(out[..., j], digits)
    return out


def as_resolution(value: float, digits: Optional[int]) -> Any:
    """A value as its feature's resolution writes it: an int, a float with the data's decimals."""
    if digits == 0:
        return int(round(value))
    return float(round(value, digits)) if digits is not None else float(value)
