"""``lofo``: leave one feature out — refit the estimator without it and measure the loss."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.methods.scoring import DEFAULT_METRIC, scorer
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot


class LofoParams(CheckParams):
    metric: Optional[str] = Field(None, description="Default roc_auc / accuracy / r2 by task.")
    features: Optional[list[str]] = Field(None, description="Features to leave out; default: every model input.")
    folds: int = Field(3, ge=2, le=10, description="Cross-validation folds.")
    max_rows: int = Field(5_000, ge=50, description="Seeded sample of the refitting data (cost grows with it).")


def _neutral(column: pd.Series) -> Any:
    """A constant that carries no information: the median, or the most frequent category."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return float(column.median())
    mode = column.mode(dropna=True)
    return mode.iloc[0] if len(mode) else column.iloc[0]


CAVEATS = (
    'Leave-one-feature-out refits measure what the data loses without a feature, not what this model relies on.',
)


@check("lofo", probes_inputs=True, caveats=CAVEATS, family="explanations", params=LofoParams, needs_model=True, needs_target=True,
       metrics=["importance[*]", "baseline_score"],
       example={"params": {"folds": 3}, "thresholds": {"importance[zip_region]": {"max": 0.005}}})
def lofo(ctx: AuditContext, params: LofoParams) -> CheckOutput:
    """Leave-one-feature-out importance: the cross-validated loss when the model is refitted without a feature.

    A clone of the scikit-learn estimator is refitted (``params.folds``-fold cross-validation,
    seeded) on ``data.reference`` (else the audit data, said in a note) with all features,
    and again with each feature replaced by a constant (its median or most frequent value),
    which removes its information while keeping a pipeline's columns. ``importance[f]`` =
    cross-validated figure with all features - without f (for a loss, the reverse): 0 = the
    model loses nothing without f (another feature can stand in for it); higher = needed.
    Models that cannot be refitted (ONNX, recorded predictions) are ``skipped``.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    model = ctx.model
    estimator = getattr(model, "estimator", None)
    if estimator is None:
        return CheckOutput.skip(f"lofo refits the model; a {model.format} model cannot be refitted "
                                "(only scikit-learn estimators from pickle, joblib or skops)")
    data = ctx.data
    notes: list[str] = []
    source = data.reference if data.reference is not None and data.target in data.reference.columns else None
    if source is None:
        source = data.frame
        notes.append("refitted on the audit data (no data.reference with the target)")
    else:
        notes.append("refitted on data.reference")
    source = source[source[data.target].notna()]
    if len(source) > params.max_rows:
        source = source.iloc[np.sort(ctx.rng.choice(len(source), params.max_rows, replace=False))]
        notes.append(f"on a seeded sample of {params.max_rows:,} rows")
    columns = model.input_features or list(data.features)
    features = params.features if params.features is not None else list(columns)
    unknown = [f for f in features if f not in columns]
    if unknown:
        raise CheckError(f"not model inputs: {unknown}")
    X = source[columns].reset_index(drop=True)
    raw_y = source[data.target].reset_index(drop=True)
    metric = scorer(params.metric or DEFAULT_METRIC[data.task], data)
    positive = str(data.positive_class)
    y_fit = raw_y.to_numpy()
    y_score = (raw_y.astype(str) == positive).to_numpy().astype(int) if data.task == "binary" else \
        raw_y.to_numpy(dtype=np.float64) if data.task == "regression" else raw_y.astype(str).to_numpy()
    seed = int(ctx.rng.integers(2**31 - 1))
    splitter = (StratifiedKFold(params.folds, shuffle=True, random_state=seed) if data.task != "regression"
                else KFold(params.folds, shuffle=True, random_state=seed))
    folds = list(splitter.split(X, y_score))

    def cross_validated(frame: pd.DataFrame) -> float:
        scores = []
        for train, test in folds:
            fitted = clone(estimator).fit(frame.iloc[train], y_fit[train])
            if data.task == "binary":
                classes = [str(c) for c in fitted.classes_]
                out = fitted.predict_proba(frame.iloc[test])[:, classes.index(positive)]
            elif data.task == "multiclass":
                out = fitted.predict_proba(frame.iloc[test])
            else:
                out = fitted.predict(frame.iloc[test])
            scores.append(metric.func(y_score[test], np.asarray(out, dtype=np.float64)))
        return float(np.mean(scores))

    baseline = cross_validated(X)
    sign = 1.0 if metric.greater_is_better else -1.0
    metrics: dict[str, Metric] = {"baseline_score": Metric(baseline, n=len(X), note=f"cross-validated {metric.name}")}
    records = []
    for feature in features:
        without = X.copy()
        without[feature] = _neutral(X[feature])
        value = sign * (baseline - cross_validated(without))
        metrics[f"importance[{feature}]"] = Metric(value, n=len(X), method=f"{params.folds}-fold cross-validation")
        records.append({"feature": feature, "importance": value})
    records.sort(key=lambda r: -r["importance"])
    for rank, record in enumerate(records, start=1):
        record["rank"] = rank
    notes.append(f"metric {metric.name}; {(len(features) + 1) * params.folds} refits")
    plot = Plot("bar", f"Leave-one-feature-out importance (loss in {metric.name})", {
        "labels": [r["feature"] for r in records], "values": [r["importance"] for r in records],
        "y_label": f"loss in {metric.name}", "horizontal": True, "n": len(X)})
    return CheckOutput(metrics=metrics, tables={"importance": records}, plots=[plot], notes=notes)
