"""``interaction_strength``: Friedman's H-statistic, overall per feature and for pairs."""
from __future__ import annotations

from itertools import combinations
from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot


class InteractionStrengthParams(CheckParams):
    features: Optional[list[str]] = Field(None, description="Features; default: up to 6 model inputs.")
    top_k: int = Field(4, ge=2, le=10, description="Pairwise H for the k features with the largest overall H.")
    max_rows: int = Field(200, ge=20, le=2_000, description="Rows used (a seeded sample): the cost grows with its "
                                                           "square.")
    renamed = {"sample": "max_rows"}  # max_rows caps the rows of every other global check


def _pd_at_rows(predict: Any, X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Partial dependence on ``columns`` evaluated at each row's own values of them, centred.

    Row i's value is the mean over all rows r of f(x_i[columns], x_r[others]): n^2 predictions.
    """
    n = len(X)
    batch = X.loc[np.tile(np.arange(n), n)].reset_index(drop=True)  # row r repeated for each i
    fixed = X[columns].to_numpy(dtype=object)
    batch[columns] = np.repeat(fixed, n, axis=0)
    out = np.asarray(predict(batch))
    values = out.reshape((n, n) + out.shape[1:]).mean(axis=1)  # (n,) or (n, classes)
    return values - values.mean(axis=0)


CAVEATS = (
    "Friedman's H is estimated on a sample and is unstable where the feature's own effect is small (a ratio of small numbers).",
)


@check("interaction_strength", probes_inputs=True, caveats=CAVEATS, family="explanations", params=InteractionStrengthParams, needs_model=True,
       metrics=["h_overall[*]", "h_pair[*]", "max_h_pair"],
       example={"params": {"top_k": 4, "max_rows": 200}, "thresholds": {"max_h_pair": {"max": 0.5, "severity": "warn"}}})
def interaction_strength(ctx: AuditContext, params: InteractionStrengthParams) -> CheckOutput:
    """Friedman's H-statistic: how much of the score's variation comes from interactions.

    ``h_overall[j]`` = sqrt( sum_i [f(x_i) - PD_j(x_ij) - PD_-j(x_i,-j)]^2 / sum_i f(x_i)^2 ):
    the share of the (centred) score's variance that feature j's interactions with all others
    explain (0 = purely additive in j, 1 = all of j's effect is interaction).
    ``h_pair[j & k]`` = sqrt( sum_i [PD_jk - PD_j - PD_k]^2 / sum_i PD_jk^2 ) for the
    ``params.top_k`` features with the largest overall H; ``max_h_pair`` is the largest. All
    partial dependences are centred and evaluated at the rows of a seeded sample of
    ``params.max_rows`` rows (cost: sample^2 predictions per term). A multiclass model's output is
    its vector of class probabilities: the sums of squares run over rows and classes (one model
    call gives every class).

    References: Friedman and Popescu (2008), Predictive learning via rule ensembles, AoAS.
    """
    data = ctx.data
    features = params.features if params.features is not None else list(data.features[:6])
    unknown = [f for f in features if f not in data.features]
    if unknown:
        raise CheckError(f"not model features: {unknown}")
    if len(features) < 2:
        raise CheckError("interaction_strength needs at least two features")
    frame = data.frame
    rows = np.sort(ctx.rng.choice(len(frame), min(params.max_rows, len(frame)), replace=False))
    X = frame.iloc[rows][data.features].reset_index(drop=True)
    n = len(X)
    f = np.asarray(ctx.model.predict(X))
    f = f - f.mean(axis=0)
    total = float(np.sum(f ** 2))
    notes = [f"on a seeded sample of {n:,} rows ({n * n:,} predictions per partial dependence)"]
    if data.task == "multiclass":
        notes.append("multiclass: H of the vector of class probabilities (sums of squares over rows and classes)")
    if total == 0:
        return CheckOutput.skip("the model's score is constant on the sample: no variation to attribute")
    metrics: dict[str, Metric] = {}
    single: dict[str, np.ndarray] = {}
    records: list[dict[str, Any]] = []
    for feature in features:
        pd_j = _pd_at_rows(ctx.model.predict, X, [feature])
        others = [c for c in data.features if c != feature]
        pd_rest = _pd_at_rows(ctx.model.predict, X, others)
        single[feature] = pd_j
        h = float(np.sqrt(np.sum((f - pd_j - pd_rest) ** 2) / total))
        metrics[f"h_overall[{feature}]"] = Metric(h, n=n)
        records.append({"feature": feature, "h_overall": h})
    records.sort(key=lambda r: -r["h_overall"])
    top = [r["feature"] for r in records[: params.top_k]]
    pairs: list[dict[str, Any]] = []
    for a, b in combinations(top, 2):
        pd_ab = _pd_at_rows(ctx.model.predict, X, [a, b])
        denominator = float(np.sum(pd_ab ** 2))
        h = float(np.sqrt(np.sum((pd_ab - single[a] - single[b]) ** 2) / denominator)) if denominator > 0 else 0.0
        metrics[f"h_pair[{a} & {b}]"] = Metric(h, n=n)
        pairs.append({"feature_a": a, "feature_b": b, "h": h})
    metrics["max_h_pair"] = Metric(max((p["h"] for p in pairs), default=0.0), n=n)
    plots = [Plot("bar", "Overall interaction strength (Friedman's H)", {
        "labels": [r["feature"] for r in records], "values": [r["h_overall"] for r in records],
        "y_label": "H", "horizontal": True, "n": n})]
    if pairs:
        plots.append(Plot("heatmap", "Pairwise H", {
            "labels": top, "values": [[next((p["h"] for p in pairs if {p["feature_a"], p["feature_b"]} == {a, b}), None)
                                       if a != b else None for b in top] for a in top], "n": n}))
    return CheckOutput(metrics=metrics, tables={"overall": records, "pairs": pairs}, plots=plots, notes=notes)
