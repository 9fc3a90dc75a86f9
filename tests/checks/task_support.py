"""AuditData for a multiclass or regression model file, to test checks without the engine."""
from __future__ import annotations

import numpy as np
import pandas as pd

from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.engine.context import AuditData

TIER_FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount",
                 "employment_years", "n_open_accounts", "home_ownership", "purpose", "zip_region"]
TIER_TRUSTED = ("numpy.dtype", "sklearn.tree._tree.Tree")


def model_data(model_path, frame: pd.DataFrame, features: list[str], target: str | None, *, task: str,
               fmt: str = "onnx", trusted: tuple[str, ...] = (), reference: pd.DataFrame | None = None) -> AuditData:
    spec = AdapterSpec(format=fmt, path=str(model_path), trust_pickle=True, trusted_types=trusted,
                       feature_names=tuple(features))
    adapter = load_adapter(spec)
    frame = frame.reset_index(drop=True)
    frame.index.name = "row"
    scores = np.asarray(adapter.predict(frame[features]), dtype=np.float64)
    if target is None:
        y = None
    elif task == "multiclass":
        y = frame[target].astype(str).to_numpy(dtype=object)
    else:
        y = frame[target].to_numpy(dtype=float)
    decisions = np.asarray(adapter.classes, dtype=object)[scores.argmax(axis=1)] if task == "multiclass" else None
    return AuditData(frame=frame, features=features, target=target, protected=[], task=task, scores=scores,
                     decisions=decisions, y=y, score_kind=adapter.score_kind, adapter_spec=spec, threshold=None,
                     classes=adapter.classes, reference=reference)
