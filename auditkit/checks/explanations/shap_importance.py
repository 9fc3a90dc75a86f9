"""``shap_importance``: global importance from SHAP values, exact where the model allows."""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.methods.shap_values import ShapResult, background_rows, explain, explain_classes
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric, Plot

POINTS_PER_FEATURE = 300


class ShapImportanceParams(CheckParams):
    max_rows: int = Field(2_000, ge=1, description="Rows explained (a seeded sample beyond this).")
    background_size: int = Field(200, ge=1, le=5_000, description="Background rows (seeded sample beyond this).")
    top_k: int = Field(5, ge=1, le=30, description="Features with beeswarm and dependence data.")
    proxies: list[str] = Field(default_factory=list, description="Features counted with the protected ones in protected_share.")
    explainer: Literal["auto", "tree", "linear", "permutation"] = Field("auto", description="Force an explainer.")


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    if finding["metric"] != "protected_share" or finding.get("value") is None:
        return None
    note = (result.get("metrics", {}).get("protected_share") or {}).get("note") or ""
    watched = note.split(": ", 1)[1] if ": " in note else "protected attributes and declared proxies"
    return (f"{finding['value']:.0%} of the model's attributions (mean |SHAP|) rest on {watched}; "
            f"the policy allows at most {finding.get('max', 0):.0%}.")


CAVEATS = (
    "SHAP values attribute the model's output, not causes in the world; under correlated features the interventional attributions credit features the model uses, which may differ from what drives the outcome.",
    'Attributions depend on the background data (here the reference data or a sample of it).',
)


@check("shap_importance", probes_inputs=True, caveats=CAVEATS, family="explanations", params=ShapImportanceParams, needs_model=True, reading=_reading,
       metrics=["protected_share", "mean_abs_shap[*]", "rank[*]", "additivity_error", "shap_standard_error"],
       example={"params": {"proxies": ["zip_region"]}, "thresholds": {"protected_share": {"max": 0.05}}})
def shap_importance(ctx: AuditContext, params: ShapImportanceParams) -> CheckOutput:
    """Global feature importance as mean |SHAP value|, in the model's raw-output units.

    The explainer is chosen automatically and named: exact TreeSHAP (interventional) for
    tree ensembles — scikit-learn's, XGBoost, LightGBM, and ONNX tree-ensemble nodes —, exact
    linear SHAP for linear and logistic models (ONNX ones behind per-column preprocessing too),
    else model-agnostic Shapley values through the model: exact enumeration of every coalition
    up to 12 features and 6e7 model evaluations, beyond that shap's Permutation explainer, run
    twice with independent seeds, whose ``shap_standard_error`` (root mean square standard
    error of a value, in the units below) is reported. Why no exact explainer applied is said in
    the notes. Units: the raw output (log-odds for a boosted, logistic or neural binary
    classifier, the probability for a random forest, the predicted target for a regressor, named
    after it). A multiclass model's every class score is explained (margins for boosted trees and
    linear models, probabilities otherwise): ``mean_abs_shap[f]`` sums mean |SHAP| over the classes,
    table ``importance_by_class`` gives each class, and ``additivity_error`` runs over every class.
    ``mean_abs_shap[f]`` = mean over explained rows
    of |SHAP(f)|; ``share`` = its fraction of the total; ``rank[f]`` (1 = most important);
    ``protected_share`` = share held by protected attributes that are model inputs and by
    ``params.proxies`` (0 = none; lower is better); ``additivity_error`` = largest
    |base value + sum of a row's SHAP values - the model's raw output| (0 for exact explainers
    up to float precision). The background follows DESIGN.md (data.reference, else the audit
    data; a seeded sample of ``params.background_size`` rows beyond that).

    References: Lundberg et al. (2020), From local explanations to global understanding with
    explainable AI for trees, Nature Machine Intelligence.
    """
    data = ctx.data
    frame = data.frame
    notes: list[str] = []
    rows = ctx.sample_positions(params.max_rows, notes, what="explained a seeded sample of")
    X = frame.iloc[rows][data.features]
    background, described = background_rows(ctx, params.background_size)
    notes.append(f"background: {described}")
    by_class: list[dict[str, Any]] = []
    if data.task == "multiclass":
        classes = explain_classes(ctx.model, X, background, list(data.features), prefer=params.explainer)
        # one importance per feature: mean |SHAP| summed over the classes (each class's score is
        # explained separately); the values drawn below are those of each row's predicted class
        per_class = np.abs(classes.values).mean(axis=0)  # (features, classes)
        predicted = np.asarray(data.scores)[rows].argmax(axis=1)
        result: ShapResult = classes.for_rows(predicted)
        additivity = classes.additivity_error
        mean_abs = per_class.sum(axis=1)
        for c, label in enumerate(classes.classes):
            total_c = float(per_class[:, c].sum())
            for j in np.argsort(-per_class[:, c], kind="stable"):
                by_class.append({"class": str(label), "feature": classes.features[j],
                                 "mean_abs_shap": float(per_class[j, c]),
                                 "share": float(per_class[j, c] / total_c) if total_c > 0 else 0.0})
        notes.append(f"multiclass ({len(classes.classes)} classes: {', '.join(map(str, classes.classes))}): each "
                     "class's score explained separately; mean_abs_shap[f] is mean |SHAP| summed over the classes "
                     "(table importance_by_class gives each class); beeswarm and dependence show each row's "
                     "predicted class")
    else:
        result = explain(ctx.model, X, background, list(data.features), prefer=params.explainer)
        mean_abs = np.abs(result.values).mean(axis=0)
        additivity = result.additivity_error
    notes.extend(result.notes)
    units = result.units
    if data.task == "regression":
        # the regressor's own units: those of the target it predicts
        units = f"predicted {data.target}" if data.target else "the model's predicted value"
        result.units = units
    notes.insert(0, f"explainer: {result.explainer}; units: {units}")
    total = float(mean_abs.sum())
    order = np.argsort(-mean_abs, kind="stable")
    records: list[dict[str, Any]] = []
    metrics: dict[str, Metric] = {}
    n = len(X)
    for rank, j in enumerate(order, start=1):
        feature = result.features[j]
        share = float(mean_abs[j] / total) if total > 0 else 0.0
        records.append({"feature": feature, "mean_abs_shap": float(mean_abs[j]), "share": share, "rank": rank})
        metrics[f"mean_abs_shap[{feature}]"] = Metric(float(mean_abs[j]), n=n)
        metrics[f"rank[{feature}]"] = Metric(float(rank), n=n)
    watched = [f for f in result.features if f in set(data.protected) | set(params.proxies)]
    watched_share = float(sum(r["share"] for r in records if r["feature"] in watched))
    metrics["protected_share"] = Metric(watched_share, n=n, note="protected inputs and declared proxies: "
                                        + (", ".join(watched) if watched else "none is a model input"))
    metrics["additivity_error"] = Metric(additivity, n=n,
                                         note=f"in {result.units}" + (", over every class" if by_class else ""))
    if result.standard_error is not None:
        metrics["shap_standard_error"] = Metric(result.standard_error, n=n, note=(
            f"root mean square standard error of a SHAP value, in {result.units}, from two independent runs"))
    top = [result.features[j] for j in order[: params.top_k]]
    keep = np.linspace(0, n - 1, min(n, POINTS_PER_FEATURE)).round().astype(int)
    beeswarm, dependence = [], []
    for feature in top:
        j = result.features.index(feature)
        column = X[feature]
        numeric = pd.api.types.is_numeric_dtype(column.dtype)
        values = column.iloc[keep]
        beeswarm.append({"feature": feature, "shap": [float(v) for v in result.values[keep, j]],
                         "value": [None if pd.isna(v) else (float(v) if numeric else str(v)) for v in values]})
        dependence.append({"feature": feature,
                           "x": [None if pd.isna(v) else (float(v) if numeric else str(v)) for v in values],
                           "shap": [float(v) for v in result.values[keep, j]]})
    plots = [Plot("bar", f"Mean |SHAP| ({result.units})", {
        "labels": [r["feature"] for r in records], "values": [r["mean_abs_shap"] for r in records],
        "y_label": f"mean |SHAP| ({result.units})", "horizontal": True, "n": n}),
        Plot("beeswarm", "SHAP values of the top features (colour: the feature's value)", {
            "rows": beeswarm, "x_label": f"SHAP value ({result.units})", "n": len(keep)})]
    for item in dependence[:3]:
        plots.append(Plot("scatter", f"Dependence: {item['feature']}", {
            "x": item["x"], "y": item["shap"], "x_label": item["feature"], "y_label": f"SHAP ({result.units})",
            "n": len(keep)}))
    tables: dict[str, list[dict[str, Any]]] = {"importance": records}
    if by_class:
        tables["importance_by_class"] = by_class
        shown = [r for r in by_class if r["feature"] in top]
        plots.insert(1, Plot("bar", f"Mean |SHAP| per class ({result.units})", {
            "labels": [r["feature"] for r in shown], "values": [r["mean_abs_shap"] for r in shown],
            "sections": [r["class"] for r in shown], "y_label": f"mean |SHAP| ({result.units})",
            "horizontal": True, "n": n}))
    return CheckOutput(metrics=metrics, tables=tables, plots=plots, notes=notes)
