"""Build AuditData directly from arrays, to test a check without files or processes."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditkit.adapters.base import AdapterSpec
from auditkit.engine.context import AuditData
from auditkit.engine.worker import CheckTask, execute


def binary_data(y: np.ndarray, scores: np.ndarray, *, threshold: float = 0.5, frame: pd.DataFrame | None = None,
                score_kind: str = "probability", **extra: Any) -> AuditData:
    n = len(scores)
    if frame is None:
        frame = pd.DataFrame({"x": np.arange(n, dtype=float)})
    frame = frame.copy()
    frame.index = pd.RangeIndex(n, name="row")
    if y is not None and "label" not in frame.columns:
        frame["label"] = y
    return AuditData(frame=frame, features=extra.pop("features", ["x"]), target="label" if y is not None else None,
                     protected=extra.pop("protected", []), task="binary", scores=np.asarray(scores, float),
                     decisions=(np.asarray(scores) >= threshold).astype(np.int64),
                     y=None if y is None else np.asarray(y, float), score_kind=score_kind,
                     adapter_spec=AdapterSpec(format="predictions", path=None), threshold=threshold, **extra)


def run_check(check_type: str, data: AuditData, params: dict | None = None, *, seed: int = 0, check_id: str = "c"):
    outcome = execute(CheckTask(check_id=check_id, type=check_type, params=params or {}, seed=seed, timeout_s=60), data)
    assert outcome.error is None, outcome.traceback
    return outcome.output
