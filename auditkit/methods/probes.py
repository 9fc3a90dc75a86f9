"""Shared by the robustness checks: predict a probe safely and compare it with the base rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from auditkit.core.decisions import decide
from auditkit.engine.context import AuditContext


@dataclass
class ProbeOutcome:
    crashed: bool
    error: str | None
    nonfinite: float  # share of rows with a non-finite score
    out_of_range: float  # share of probability scores outside [0, 1]
    decision_change: float | None  # share of rows whose decision changed
    mean_abs_score_change: float | None


def probe(ctx: AuditContext, frame: pd.DataFrame, base_scores: np.ndarray, base_decisions: np.ndarray | None) -> ProbeOutcome:
    """Predict ``frame``; a model that raises is a finding, not an audit error."""
    try:
        scores = ctx.model.predict(frame)
    except Exception as exc:  # the model's own failure on this input is what is measured
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        return ProbeOutcome(True, text[:200], 1.0, 0.0, None, None)
    change = None
    if ctx.data.task == "multiclass" and np.ndim(scores) == 2 and np.ndim(base_scores) == 2:
        # a row's decision is its predicted class; its score the probability of its unprobed predicted class
        top = np.asarray(base_scores).argmax(axis=1)
        rows = np.arange(len(top))
        with np.errstate(invalid="ignore"):
            moved = np.where(np.isfinite(scores).all(axis=1), scores.argmax(axis=1), -1)
        change = float(np.mean(moved != top)) if len(top) else None
        scores, base_scores = scores[rows, top], np.asarray(base_scores)[rows, top]
    finite = np.isfinite(scores)
    out_of_range = 0.0
    if ctx.data.score_kind == "probability":
        out_of_range = float(np.mean(finite & ((scores < -1e-9) | (scores > 1 + 1e-9))))
    if base_decisions is not None and ctx.data.threshold is not None and ctx.data.task == "binary":
        decisions = decide(scores, ctx.data.threshold)
        change = float(np.mean(decisions != base_decisions))
    diff = np.abs(scores - base_scores)
    return ProbeOutcome(False, None, float(np.mean(~finite)), out_of_range, change,
                        float(np.mean(diff[finite])) if finite.any() else None)


def sample_rows(ctx: AuditContext, max_rows: int,
                notes: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray | None]:
    """A seeded sample of audit rows (features only, 0..n-1 index), their file row numbers,
    base scores and decisions."""
    data = ctx.data
    positions = ctx.sample_positions(max_rows, notes)
    X = data.frame.iloc[positions][data.features]
    rows = X.index.to_numpy()
    decisions = None if data.decisions is None else np.asarray(data.decisions)[positions]
    return X.reset_index(drop=True), rows, data.scores[positions], decisions


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def record(feature: str, probe_name: str, value: Any, outcome: ProbeOutcome) -> dict[str, Any]:
    return {"feature": feature, "probe": probe_name, "value": value, "crashed": outcome.crashed,
            "error": outcome.error, "nonfinite_share": outcome.nonfinite, "out_of_range_share": outcome.out_of_range,
            "decision_change_rate": outcome.decision_change, "mean_abs_score_change": outcome.mean_abs_score_change}
