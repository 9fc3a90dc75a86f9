"""``missing_values``: does the model survive a missing input, and does its decision hold?"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pydantic import Field

from auditkit.methods.probes import is_numeric, probe, record, sample_rows
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric, Plot


class MissingValuesParams(CheckParams):
    features: Optional[list[str]] = Field(None, description="Features to blank; default: every model input.")
    max_rows: int = Field(1_000, ge=10, description="Seeded sample of rows.")


CAVEATS = (
    'Missing values are injected completely at random; real missingness is usually informative.',
)


@check("missing_values", caveats=CAVEATS, family="robustness", params=MissingValuesParams, needs_model=True,
       metrics=["error_rate[*]", "decision_change_rate[*]", "features_breaking", "max_decision_change_rate"],
       example={"thresholds": {"features_breaking": {"max": 0}, "max_decision_change_rate": {"max": 0.2}}})
def missing_values(ctx: AuditContext, params: MissingValuesParams) -> CheckOutput:
    """Set each feature missing in turn: the model must not crash and must return finite scores.

    For every feature: all sampled rows with that feature missing (NaN; for a text feature,
    both NaN and an empty string) are predicted in one batch. ``error_rate[feature]`` = share
    of rows without a usable score (1 when the model raises: a model that crashes on missing
    input is a finding, not an audit error; else the share of non-finite scores);
    ``decision_change_rate[feature]`` = share of decisions that change against the complete
    rows (worst of the variants); ``features_breaking`` = features with an error rate above 0;
    ``max_decision_change_rate`` = the largest decision change rate. Lower is better.
    """
    data = ctx.data
    features = params.features if params.features is not None else list(data.features)
    ctx.require_features(features)
    notes: list[str] = []
    X, _, base_scores, base_decisions = sample_rows(ctx, params.max_rows, notes)
    records: list[dict[str, Any]] = []
    metrics: dict[str, Metric] = {}
    n = len(X)
    for feature in features:
        variants = [("NaN", np.nan)] if is_numeric(X[feature]) else [("NaN", np.nan), ("empty string", "")]
        worst_error, worst_change = 0.0, None
        for name, value in variants:
            blanked = X.copy()
            if is_numeric(X[feature]):
                blanked[feature] = np.nan
            else:
                blanked[feature] = blanked[feature].astype(object)
                blanked[feature] = value
            outcome = probe(ctx, blanked, base_scores, base_decisions)
            records.append(record(feature, f"missing ({name})", None, outcome))
            worst_error = max(worst_error, outcome.nonfinite)
            if outcome.decision_change is not None:
                worst_change = max(worst_change or 0.0, outcome.decision_change)
        metrics[f"error_rate[{feature}]"] = Metric(worst_error, n=n)
        metrics[f"decision_change_rate[{feature}]"] = Metric(worst_change, n=n, note=None if worst_change is not None
                                                              else "no decision: the model failed or is not binary")
    breaking = sorted({r["feature"] for r in records if r["crashed"] or r["nonfinite_share"] > 0})
    metrics["features_breaking"] = Metric(float(len(breaking)), n=len(features),
                                          note=", ".join(breaking) if breaking else "none")
    changes = [m.value for k, m in metrics.items() if k.startswith("decision_change_rate[") and m.value is not None]
    metrics["max_decision_change_rate"] = Metric(max(changes) if changes else None, n=n)
    if breaking:
        notes.append(f"the model fails on a missing {', '.join(breaking)}: a finding about the model")
    plots = [Plot("bar", "Decisions that change when a feature is missing", {
        "labels": features, "values": [metrics[f"decision_change_rate[{f}]"].value for f in features],
        "y_label": "share of decisions changed", "horizontal": True, "n": n})]
    return CheckOutput(metrics=metrics, tables={"features": records}, plots=plots, notes=notes)
