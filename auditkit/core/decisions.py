"""The contract's decision rule, written once (DESIGN.md, "Decisions").

For a binary task the decision is 1 (the positive class) when the audited score is
``>= model.threshold``, else 0. Every check that re-predicts the model turns scores into
decisions here, so a change to the rule (or a fix to it) reaches every figure at once.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def decide(scores: Any, threshold: float) -> npt.NDArray[np.int64]:
    """1 where ``score >= threshold``, else 0, in the shape of ``scores``.

    A NaN score decides 0: it is not at or above any threshold.

    >>> decide([0.2, 0.5, 0.9, float("nan")], 0.5).tolist()
    [0, 1, 1, 0]
    """
    return (np.asarray(scores, dtype=np.float64) >= threshold).astype(np.int64)
