"""``permutation_importance``: how much worse is the model when a feature's values are shuffled?"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.methods.scoring import DEFAULT_METRIC, scorer
from auditkit.methods.stats import t_interval
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot


class PermutationImportanceParams(CheckParams):
    metric: Optional[str] = Field(None, description="A performance metric name; default roc_auc / accuracy / r2 by task.")
    n_repeats: int = Field(5, ge=2, le=100, description="Shuffles per feature; the interval comes from their spread.")
    features: Optional[list[str]] = Field(None, description="Features to shuffle; default: every model input.")
    groups: dict[str, list[str]] = Field(default_factory=dict,
                                         description="Named groups of columns shuffled together (e.g. one-hot parts).")
    max_rows: int = Field(5_000, ge=50, description="Seeded sample of labelled rows (cost grows with it).")
    confidence: float = Field(0.95, gt=0, lt=1)


CAVEATS = (
    'Shuffling a feature that is correlated with others creates unrealistic rows and can understate its importance (the others stand in for it).',
)


@check("permutation_importance", caveats=CAVEATS, family="explanations", params=PermutationImportanceParams, needs_model=True,
       needs_target=True, metrics=["importance[*]", "baseline_score"],
       example={"params": {"metric": "roc_auc", "n_repeats": 5},
                "thresholds": {"importance[zip_region]": {"max": 0.01}}})
def permutation_importance(ctx: AuditContext, params: PermutationImportanceParams) -> CheckOutput:
    """Drop of a performance metric when one feature (or a group of columns) is shuffled.

    ``importance[feature]`` = baseline figure - figure with that feature permuted, for a
    metric where higher is better (for a loss, permuted - baseline), averaged over
    ``params.n_repeats`` seeded shuffles, as scikit-learn's ``permutation_importance``
    defines it. 0 = the model does not use the feature (negative: noise); higher = more
    important. The interval is a Student-t interval over the repeats. Every shuffled copy
    of every feature is predicted in large batches through the model adapter.

    References: Breiman (2001), Random Forests; scikit-learn ``sklearn.inspection.permutation_importance``.
    """
    data = ctx.data
    if data.target is None or data.y is None:
        return CheckOutput.skip("no target column (data.target): permutation importance needs observed outcomes")
    metric = scorer(params.metric or DEFAULT_METRIC[data.task], data)
    features = params.features if params.features is not None else list(data.features)
    unknown = [f for f in features + [c for cols in params.groups.values() for c in cols] if f not in data.features]
    if unknown:
        raise CheckError(f"not model features: {unknown}; features: {', '.join(data.features)}")
    units: dict[str, list[str]] = {name: list(cols) for name, cols in params.groups.items()}
    grouped = {c for cols in units.values() for c in cols}
    for feature in features:
        if feature not in grouped:
            units[feature] = [feature]

    labelled = np.flatnonzero(data.labelled)
    notes: list[str] = []
    if len(labelled) > params.max_rows:
        labelled = np.sort(ctx.rng.choice(labelled, params.max_rows, replace=False))
        notes.append(f"on a seeded sample of {params.max_rows:,} of {int(data.labelled.sum()):,} labelled rows")
    X = data.frame.iloc[labelled][data.features].reset_index(drop=True)
    y = np.asarray(data.y)[labelled]
    if data.task == "binary":
        y = y.astype(np.int64)
    baseline = float(metric.func(y, data.scores[labelled]))
    n = len(X)
    copies = []
    for columns in units.values():
        for _ in range(params.n_repeats):
            shuffled = X.copy()
            order = ctx.rng.permutation(n)
            # columns of a group move together, so their joint distribution is kept
            shuffled[columns] = X[columns].iloc[order].to_numpy()
            copies.append(shuffled)
    scores = ctx.model.predict(pd.concat(copies, ignore_index=True))
    sign = 1.0 if metric.greater_is_better else -1.0
    records: list[dict[str, Any]] = []
    metrics: dict[str, Metric] = {"baseline_score": Metric(baseline, n=n, note=f"{metric.name} on the unshuffled rows")}
    for u, name in enumerate(units):
        drops = []
        for r in range(params.n_repeats):
            start = (u * params.n_repeats + r) * n
            drops.append(sign * (baseline - float(metric.func(y, scores[start:start + n]))))
        drops_arr = np.array(drops)
        mean, ci = t_interval(drops_arr, params.confidence)
        metrics[f"importance[{name}]"] = Metric(mean, ci=ci, n=n, level=params.confidence,
                                                 method=f"mean of {params.n_repeats} shuffles, Student-t interval")
        records.append({"feature": name, "columns": units[name], "importance": mean,
                        "importance_std": float(drops_arr.std(ddof=1)), "importance_ci": list(ci)})
    records.sort(key=lambda r: -r["importance"])
    for rank, record in enumerate(records, start=1):
        record["rank"] = rank
    plot = Plot("bar", f"Permutation importance (drop in {metric.name})", {
        "labels": [r["feature"] for r in records], "values": [r["importance"] for r in records],
        "ci_low": [r["importance_ci"][0] for r in records], "ci_high": [r["importance_ci"][1] for r in records],
        "y_label": f"drop in {metric.name}", "horizontal": True, "n": n,
        "level": params.confidence})
    notes.append(f"metric {metric.name}; baseline {baseline:.4g}; {params.n_repeats} shuffles per feature")
    return CheckOutput(metrics=metrics, tables={"importance": records}, plots=[plot], notes=notes)
