"""Adjusted p-values for a family of tests: Holm (family-wise error) and Benjamini-Hochberg
(false discovery rate), as statsmodels' ``multipletests`` defines them (``holm``, ``fdr_bh``)."""
from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Correction = Literal["holm", "bh", "none"]


def holm(p: FloatArray) -> FloatArray:
    """Holm (1979) step-down: sorted p_(i) * (m - i + 1), running maximum, capped at 1."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = stepped
    return out


def benjamini_hochberg(p: FloatArray) -> FloatArray:
    """Benjamini & Hochberg (1995) step-up: sorted p_(i) * m / i, running minimum from the top, capped at 1."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = stepped
    return out


def adjust(p: FloatArray, method: Correction) -> FloatArray:
    if method == "holm":
        return holm(p)
    if method == "bh":
        return benjamini_hochberg(p)
    return np.asarray(p, dtype=np.float64)
