"""Adjusted p-values for a family of tests, as arrays: Holm (family-wise error) and
Benjamini-Hochberg (false discovery rate), as statsmodels' ``multipletests`` defines them.

One implementation: :func:`auditkit.results.multiplicity.adjust_p_values`, which the engine
also uses across the whole audit; these are its array forms for checks (slice_performance).
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from auditkit.results.multiplicity import Correction, adjust_p_values

FloatArray = npt.NDArray[np.float64]


def holm(p: FloatArray) -> FloatArray:
    """Holm (1979) step-down: sorted p_(i) * (m - i + 1), running maximum, capped at 1."""
    return adjust(p, "holm")


def benjamini_hochberg(p: FloatArray) -> FloatArray:
    """Benjamini & Hochberg (1995) step-up: sorted p_(i) * m / i, running minimum from the top, capped at 1."""
    return adjust(p, "bh")


def adjust(p: FloatArray, method: Correction) -> FloatArray:
    return np.asarray(adjust_p_values(np.asarray(p, dtype=np.float64).tolist(), method), dtype=np.float64)
