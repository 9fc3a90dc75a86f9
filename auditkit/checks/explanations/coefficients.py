"""``coefficients``: a linear or logistic model's coefficients, standardised, and odds ratios."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.methods.linear_models import LinearModel, from_onnx, from_onnx_columns, from_sklearn
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric, Plot


class CoefficientsParams(CheckParams):
    pass


def linear_model_of(ctx: AuditContext, row: int | None = None) -> LinearModel | None:
    """The audited model as a linear model, or None when it is not one; ``row`` picks one
    score row of a multiclass model (class ``row``'s margin), else the positive class's."""
    model = ctx.model
    positive = row if row is not None else (model.positive_index() if model.classes else 1)
    if model.format == "onnx":
        model_bytes = Path(model.path or "").read_bytes()
        if getattr(model, "matrix_input", True):
            return from_onnx(model_bytes, list(ctx.data.features), positive)
        # one named input per column (skl2onnx's mixed-type pipelines): the linear node reads
        # the columns its preprocessing makes from them
        found = from_onnx_columns(model_bytes, model.feeds(ctx.data.frame), positive)  # type: ignore[attr-defined]
        if found is None:
            return None
        linear, columns = found
        linear.column_stds = [float(v) for v in np.nanstd(columns, axis=0)]
        return linear
    estimator = getattr(model, "estimator", None)
    if estimator is None:
        return None
    return from_sklearn(estimator, list(ctx.data.features), positive)


CAVEATS = (
    'Coefficients are comparable only on standardised inputs and are confounded by correlated features; odds ratios are per unit of the input as the model sees it.',
)


@check("coefficients", probes_inputs=True, caveats=CAVEATS, family="explanations", params=CoefficientsParams, needs_model=True,
       metrics=["coefficient[*]", "standardised_coefficient[*]", "odds_ratio[*]", "intercept", "intercept[*]"],
       example={"thresholds": {"odds_ratio[zip_region_R03]": {"max": 1.5}}})
def coefficients(ctx: AuditContext, params: CoefficientsParams) -> CheckOutput:
    """Coefficients of a linear or logistic model, their standardised size, and odds ratios.

    ``coefficient[name]`` multiplies the model's input ``name`` (for a pipeline with a scaler,
    the scaled input; an ONNX Scaler in front of the linear node is folded back into raw
    units); ``standardised_coefficient`` = coefficient x the input's standard deviation on
    the audit data (the change in log-odds or output for a one-standard-deviation change);
    for a logistic model ``odds_ratio`` = exp(coefficient), the factor on the odds per unit.
    Read from scikit-learn's ``coef_``/``intercept_`` or the ONNX LinearClassifier /
    LinearRegressor node; behind skl2onnx's per-column preprocessing (one named input per
    column) the coefficients multiply the columns it makes, named ``input_category`` for one-hot
    columns as scikit-learn names them. A multiclass model (a multinomial logistic regression)
    has one row of coefficients per class, each the change in that class's softmax margin:
    table ``coefficients`` gains ``class``, the metrics are ``coefficient[name, class=c]``,
    ``standardised_coefficient[name, class=c]`` and ``intercept[class=c]``, and there are no odds
    ratios (a softmax margin alone is no log-odds; exp of the difference of two classes'
    coefficients is their odds ratio). Other models are ``skipped``.
    """
    if ctx.data.task == "multiclass":
        return _per_class(ctx)
    linear = linear_model_of(ctx)
    if linear is None:
        return CheckOutput.skip(f"the model is not linear ({ctx.model.kind}): it has no coefficients to read")
    data = ctx.data
    notes = [f"from {linear.source}; coefficients multiply {linear.space}"]
    stds = _input_stds(ctx, linear)
    metrics: dict[str, Metric] = {"intercept": Metric(linear.intercept)}
    records: list[dict[str, Any]] = []
    for name, coef, std in zip(linear.names, linear.coef, stds):
        record: dict[str, Any] = {"name": name, "coefficient": float(coef),
                                  "input_std": None if std is None else float(std),
                                  "standardised_coefficient": None if std is None else float(coef * std)}
        metrics[f"coefficient[{name}]"] = Metric(float(coef))
        if std is not None:
            metrics[f"standardised_coefficient[{name}]"] = Metric(float(coef * std), n=len(data.frame))
        if linear.logistic:
            record["odds_ratio"] = float(np.exp(coef))
            metrics[f"odds_ratio[{name}]"] = Metric(float(np.exp(coef)))
        records.append(record)
    records.sort(key=lambda r: -abs(r["standardised_coefficient"] if r["standardised_coefficient"] is not None
                                    else r["coefficient"]))
    for rank, record in enumerate(records, start=1):
        record["rank"] = rank
    plot = Plot("bar", "Standardised coefficients" + (" (log-odds per standard deviation)" if linear.logistic else ""), {
        "labels": [r["name"] for r in records],
        "values": [r["standardised_coefficient"] if r["standardised_coefficient"] is not None else r["coefficient"]
                   for r in records],
        "y_label": "per standard deviation", "horizontal": True, "n": len(data.frame)})
    return CheckOutput(metrics=metrics, tables={"coefficients": records}, plots=[plot], notes=notes)


def _input_stds(ctx: AuditContext, linear: LinearModel) -> list[float | None]:
    """Standard deviation of each input the coefficients multiply, on the audit data."""
    frame = ctx.data.frame
    if linear.space == "raw inputs":
        out: list[float | None] = []
        for name in linear.names:
            column = frame[name] if name in frame.columns else None
            ok = column is not None and pd.api.types.is_numeric_dtype(column.dtype)
            out.append(float(column.std(ddof=0)) if ok else None)
        return out
    if linear.column_stds is not None:
        return list(linear.column_stds)
    estimator = getattr(ctx.model, "estimator", None)
    if estimator is not None and hasattr(estimator, "steps"):
        transformed = estimator[:-1].transform(frame[ctx.data.features])
        transformed = transformed.toarray() if hasattr(transformed, "toarray") else np.asarray(transformed, dtype=float)
        return [float(v) for v in np.nanstd(transformed, axis=0)]
    return [None] * len(linear.names)


def _score_rows(ctx: AuditContext) -> int | None:
    """How many score rows the model's linear part has (one per class for a multinomial model)."""
    model = ctx.model
    if model.format == "onnx":
        from auditkit.methods.linear_models import onnx_linear_rows

        rows = onnx_linear_rows(Path(model.path or "").read_bytes())
        return None if rows is None else int(rows.coef.shape[0])
    estimator = getattr(model, "estimator", None)
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    coef = getattr(final, "coef_", None)
    return None if coef is None else int(np.atleast_2d(np.asarray(coef)).shape[0])


def _per_class(ctx: AuditContext) -> CheckOutput:
    """One row of coefficients per class of a multiclass linear model (see :func:`coefficients`)."""
    data = ctx.data
    classes = [str(c) for c in (ctx.model.classes or [])]
    first = linear_model_of(ctx, 0)
    if first is None:
        return CheckOutput.skip(f"the model is not linear ({ctx.model.kind}): it has no coefficients to read")
    rows = _score_rows(ctx)
    if rows != len(classes):
        return CheckOutput.skip(f"the linear model has {rows} rows of coefficients for {len(classes)} classes "
                                "(one-vs-rest scores combined otherwise than by a softmax): they are not one "
                                "margin per class")
    models = [first] + [linear_model_of(ctx, c) for c in range(1, len(classes))]
    stds = _input_stds(ctx, first)
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    for label, linear in zip(classes, models):
        assert linear is not None  # the same node or estimator as the first class's
        metrics[f"intercept[class={label}]"] = Metric(float(linear.intercept))
        for name, coef, std in zip(linear.names, linear.coef, stds):
            standardised = None if std is None else float(coef * std)
            records.append({"class": label, "name": name, "coefficient": float(coef),
                            "input_std": None if std is None else float(std), "standardised_coefficient": standardised})
            metrics[f"coefficient[{name}, class={label}]"] = Metric(float(coef))
            if standardised is not None:
                metrics[f"standardised_coefficient[{name}, class={label}]"] = Metric(standardised, n=len(data.frame))
    size = {r["name"]: 0.0 for r in records}  # a column's largest standardised size over the classes
    for r in records:
        value = r["standardised_coefficient"] if r["standardised_coefficient"] is not None else r["coefficient"]
        size[r["name"]] = max(size[r["name"]], abs(value))
    order = sorted(size, key=lambda name: -size[name])
    for record in records:
        record["rank"] = order.index(record["name"]) + 1
    records.sort(key=lambda r: (r["rank"], classes.index(r["class"])))
    shown = [r for r in sorted(records, key=lambda r: (classes.index(r["class"]), r["rank"])) if r["rank"] <= 10]
    plot = Plot("bar", "Standardised coefficients per class (softmax margin per standard deviation)", {
        "labels": [r["name"] for r in shown],
        "values": [r["standardised_coefficient"] if r["standardised_coefficient"] is not None else r["coefficient"]
                   for r in shown],
        "sections": [r["class"] for r in shown], "y_label": "per standard deviation", "horizontal": True,
        "n": len(data.frame)})
    notes = [f"from {first.source}; coefficients multiply {first.space}",
             f"multiclass ({len(classes)} classes: {', '.join(classes)}): one row of coefficients per class, each "
             "the change in that class's softmax margin; no odds ratios (exp of the difference of two classes' "
             "coefficients is the odds ratio between them)"]
    return CheckOutput(metrics=metrics, tables={"coefficients": records}, plots=[plot], notes=notes)
