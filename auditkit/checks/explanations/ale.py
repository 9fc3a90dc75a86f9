"""``ale``: first-order accumulated local effects, reliable where features are correlated."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot


class AleParams(CheckParams):
    features: Optional[list[str]] = Field(None, description="Features; default: the numeric model inputs (up to 6).")
    bins: int = Field(20, ge=2, le=200, description="Quantile bins per numeric feature.")
    order: dict[str, list[str]] = Field(default_factory=dict,
                                        description="For a categorical feature: its categories in order (required).")
    max_rows: int = Field(5_000, ge=10, description="Seeded sample of rows.")


def ale_numeric(predict: Any, X: pd.DataFrame, feature: str, bins: int) -> dict[str, Any]:
    """Centred first-order ALE of a numeric feature on quantile bins (Apley and Zhu, 2020).

    Rows in bin (z[j-1], z[j]] contribute f(z[j], x_rest) - f(z[j-1], x_rest); the mean per
    bin is accumulated over bins and centred so that its mean over the data is 0.
    """
    x = X[feature].to_numpy(dtype=np.float64)
    present = ~np.isnan(x)
    edges = np.unique(np.quantile(x[present], np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        raise CheckError(f"feature '{feature}' has a single value: no effect to accumulate")
    # bin index 1..k: (z[j-1], z[j]], the lowest value joins the first bin
    index = np.clip(np.searchsorted(edges, x[present], side="left"), 1, len(edges) - 1)
    rows = X[present].reset_index(drop=True)
    low, high = rows.copy(), rows.copy()
    low[feature] = edges[index - 1]
    high[feature] = edges[index]
    scores = predict(pd.concat([low, high], ignore_index=True))
    diff = scores[len(rows):] - scores[:len(rows)]
    k = len(edges) - 1
    counts = np.bincount(index - 1, minlength=k)
    local = np.bincount(index - 1, weights=diff, minlength=k) / np.maximum(counts, 1)
    accumulated = np.concatenate([[0.0], np.cumsum(local)])
    # centre: the mean of the (linearly interpolated) ALE over the rows, bin by bin
    centre = float(np.sum(counts * (accumulated[:-1] + accumulated[1:]) / 2) / counts.sum())
    return {"feature": feature, "edges": [float(e) for e in edges], "ale": [float(a - centre) for a in accumulated],
            "bin_counts": [int(c) for c in counts], "categorical": False}


def ale_ordered_categories(predict: Any, X: pd.DataFrame, feature: str, order: list[str]) -> dict[str, Any]:
    """ALE of a categorical feature along a declared order of its categories."""
    text = X[feature].astype(object).where(X[feature].notna(), None).map(lambda v: None if v is None else str(v))
    unknown = sorted(set(text.dropna()) - set(order))
    if unknown:
        raise CheckError(f"params.order[{feature}] leaves out categories {unknown}")
    position = {c: i for i, c in enumerate(order)}
    codes = text.map(position)
    local = np.zeros(len(order) - 1)
    counts = np.array([(codes == i).sum() for i in range(len(order))])
    for j in range(1, len(order)):
        # rows at the two neighbouring categories each move across the step between them
        here = X[(codes == j - 1) | (codes == j)]
        if len(here) == 0:
            continue
        up, down = here.copy(), here.copy()
        up[feature], down[feature] = order[j], order[j - 1]
        scores = predict(pd.concat([down, up], ignore_index=True))
        local[j - 1] = float(np.mean(scores[len(here):] - scores[:len(here)]))
    accumulated = np.concatenate([[0.0], np.cumsum(local)])
    centre = float(np.sum(counts * accumulated) / max(counts.sum(), 1))
    return {"feature": feature, "categories": list(order), "ale": [float(a - centre) for a in accumulated],
            "bin_counts": [int(c) for c in counts], "categorical": True}


CAVEATS = (
    "ALE effects are local to the data's bins; bins with few rows give noisy effects (bin counts are shown).",
)


@check("ale", probes_inputs=True, caveats=CAVEATS, family="explanations", params=AleParams, needs_model=True, metrics=["ale_range[*]"],
       example={"params": {"features": ["income", "debt_ratio"], "bins": 20}})
def ale(ctx: AuditContext, params: AleParams) -> CheckOutput:
    """Accumulated local effects (ALE) of features on the audited score, centred, with bin counts.

    For a numeric feature, the data are cut into ``params.bins`` quantile bins; the ALE at
    the upper edge of bin j is the sum over bins up to j of the mean change of the score when
    the bin's own rows move from the bin's lower to its upper edge, centred to mean 0 over
    the data. Unlike partial dependence, it never evaluates the model far from the data, so
    it stays right when features are correlated. A categorical feature needs its categories
    in order (``params.order``). ``ale_range[feature]`` = max - min of the ALE (score units; a
    regressor's target units). A multiclass model gets one ALE per class (its probability; records
    keyed by ``class``), and ``ale_range`` is the widest class's.

    References: Apley and Zhu (2020), Visualizing the effects of predictor variables in black
    box supervised learning models, JRSS B.
    """
    data = ctx.data
    multiclass = data.task == "multiclass"
    classes = [str(c) for c in (data.classes or [])] if multiclass else [None]
    frame = data.frame
    numeric = [f for f in data.features if pd.api.types.is_numeric_dtype(frame[f].dtype)]
    features = params.features if params.features is not None else numeric[:6]
    unknown = [f for f in list(features) + list(params.order) if f not in data.features]
    if unknown:
        raise CheckError(f"not model features: {unknown}")
    for f in features:
        if f not in numeric and f not in params.order:
            raise CheckError(f"'{f}' is categorical: ALE needs its categories in order, e.g. "
                             f"params.order: {{{f}: [low, middle, high]}}")
    notes: list[str] = []
    rows = ctx.sample_positions(params.max_rows, notes)
    X = frame.iloc[rows][data.features].reset_index(drop=True)
    metrics: dict[str, Metric] = {}
    curves: list[dict[str, Any]] = []
    plots: list[Plot] = []
    if multiclass:
        notes.append(f"multiclass: one ALE per class, on its predicted probability ({', '.join(map(str, classes))}); "
                     "ale_range is the widest class's")
    elif data.task == "regression" and data.target:
        notes.append(f"effects are in the units of the predicted {data.target}")
    for feature in features:
        series, widest = [], None
        for c, label in enumerate(classes):
            def predict(frame: pd.DataFrame, c: int = c) -> np.ndarray:
                out = ctx.model.predict(frame)
                return out[:, c] if multiclass else out
            if feature in params.order:
                curve = ale_ordered_categories(predict, X, feature, params.order[feature])
                x = list(range(len(curve["categories"])))
            else:
                curve = ale_numeric(predict, X, feature, params.bins)
                x = curve["edges"]
            if multiclass:
                curve = {**curve, "class": label}
            curves.append(curve)
            spread = float(max(curve["ale"]) - min(curve["ale"]))
            if widest is None or spread > widest[0]:
                widest = (spread, label)
            series.append({"name": "ALE" if label is None else f"P({label})", "x": x, "y": curve["ale"]})
        assert widest is not None
        metrics[f"ale_range[{feature}]"] = Metric(widest[0], n=int(sum(curve["bin_counts"])),
                                                  note=None if widest[1] is None else f"largest over the classes: "
                                                                                      f"P({widest[1]})")
        plots.append(Plot("line", f"ALE: {feature} (bin counts in the table)", {
            "series": series, "x_label": feature,
            "y_label": "centred effect on the probability" if multiclass else (
                f"centred effect on the predicted {data.target}" if data.task == "regression" and data.target
                else "centred effect on the score"), "n": int(sum(curve["bin_counts"])),
            **({"x_ticks": curve["categories"]} if curve["categorical"] else {})}))
    return CheckOutput(metrics=metrics, tables={"ale": curves}, plots=plots, notes=notes)
