"""Cell values of the local checks' tables: plain Python, missing as None."""
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
