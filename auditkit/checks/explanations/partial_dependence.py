"""``partial_dependence``: PDP and ICE curves through the model adapter, with monotonicity checks."""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot

MAX_ICE_PLOTTED = 50


class PartialDependenceParams(CheckParams):
    features: Optional[list[str]] = Field(None, description="Features to vary; default: the monotone ones, else "
                                                            "up to 6 model inputs.")
    pairs: list[tuple[str, str]] = Field(default_factory=list, description="Feature pairs for 2-D partial dependence.")
    grid_resolution: int = Field(20, ge=2, le=200, description="Grid points per numeric feature.")
    percentiles: tuple[float, float] = Field((0.05, 0.95), description="Range of the numeric grid.")
    max_rows: int = Field(1_000, ge=10, description="Seeded sample of rows whose ICE curves are computed.")
    centered: bool = Field(False, description="Centre each ICE curve at its first grid point (c-ICE).")
    monotone: dict[str, Literal["increasing", "decreasing"]] = Field(
        default_factory=dict, description="Declared directions: a curve moving the other way is a violation.")
    tolerance: float = Field(0.0, ge=0, description="A step against the direction larger than this (score units) counts.")
    target_class: Optional[str] = Field(None, description="Multiclass: the class whose probability the ICE curves, "
                                                          "monotone directions and 2-D surfaces follow (the PDP of "
                                                          "every class is drawn regardless).")


def _grid(values: pd.Series, resolution: int, percentiles: tuple[float, float]) -> tuple[np.ndarray, bool]:
    """scikit-learn's grid: the unique values when fewer than the resolution, else equally spaced
    points between the percentiles (scipy's mquantiles, as scikit-learn computes them)."""
    from scipy.stats.mstats import mquantiles

    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    present = values.dropna()
    if not numeric:
        return np.array(sorted(present.astype(str).unique()), dtype=object), True
    unique = np.unique(present.to_numpy(dtype=np.float64))
    if len(unique) < resolution:
        return unique, False
    low, high = mquantiles(present.to_numpy(dtype=np.float64), prob=percentiles, axis=0)
    if np.isclose(low, high):
        raise CheckError(f"feature '{values.name}': its {percentiles} percentiles are equal; widen params.percentiles")
    return np.linspace(low, high, num=resolution), False


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    metric, value = finding["metric"], finding.get("value")
    if not metric.startswith("monotonicity_violation[") or value is None:
        return None
    feature = metric[len("monotonicity_violation["):-1]
    direction = result.get("params", {}).get("monotone", {}).get(feature, "monotone")
    n = (result.get("metrics", {}).get(metric) or {}).get("n")
    of = f" of {n:,} sampled" if isinstance(n, int) else ""
    return (f"The score should be {direction} in {feature}, but for {value:.0%}{of} individual cases it moves the "
            f"other way somewhere in the range; the policy allows at most {finding.get('max', 0):.0%}.")


CAVEATS = (
    "Partial dependence averages over the data's rows as if the feature were independent of the others; under strong correlation it evaluates unrealistic rows (ALE avoids this).",
)


@check("partial_dependence", probes_inputs=True, caveats=CAVEATS, family="explanations", params=PartialDependenceParams, needs_model=True, reading=_reading,
       metrics=["monotonicity_violation[*]", "pdp_max_violation[*]", "pdp_range[*]"],
       example={"params": {"features": ["income", "debt_ratio"], "monotone": {"income": "decreasing"}},
                "thresholds": {"monotonicity_violation": {"max": 0.05}}})
def partial_dependence(ctx: AuditContext, params: PartialDependenceParams) -> CheckOutput:
    """Partial dependence (PDP) and individual conditional expectation (ICE) of the audited score.

    For each feature, every sampled row is re-predicted with the feature set to each grid
    value (all copies in one batch): ICE = one curve per row, PDP = their mean (the
    model's average score as a function of the feature alone). The grid follows
    scikit-learn's ``partial_dependence``. ``pdp_range[feature]`` = max - min of the PDP.
    With ``params.monotone``: ``monotonicity_violation[feature]`` = share of ICE curves with a
    step against the declared direction larger than ``params.tolerance`` (0 = the model obeys
    it for every sampled row), and ``pdp_max_violation[feature]`` = the PDP's largest step
    against it (0 = none). Scores are the audited score (positive-class probability; a regressor's
    prediction in the target's units). A multiclass model has one PDP per class (its probability):
    table ``pdp`` holds a record per feature and class (key ``class``), ``pdp_range[feature]`` is
    the largest range over the classes (the note names the class), and ``params.target_class``
    picks the class whose ICE curves, monotone directions and 2-D surfaces are computed.

    References: Friedman (2001), Greedy function approximation; Goldstein et al. (2015), Peeking
    inside the black box (ICE).
    """
    data = ctx.data
    multiclass = data.task == "multiclass"
    classes = [str(c) for c in (data.classes or [])]
    target_index: int | None = None
    if params.target_class is not None:
        if not multiclass:
            raise CheckError(f"params.target_class applies to multiclass models; this is a {data.task} task")
        if params.target_class not in classes:
            raise CheckError(f"params.target_class: '{params.target_class}' is not a class; classes: {', '.join(classes)}")
        target_index = classes.index(params.target_class)
    if multiclass and target_index is None and (params.monotone or params.pairs):
        raise CheckError("params.monotone and params.pairs follow one class's probability on a multiclass model: "
                         f"set params.target_class to one of {', '.join(classes)}")
    unknown = [f for f in list(params.monotone) + [f for pair in params.pairs for f in pair]
               + (params.features or []) if f not in data.features]
    if unknown:
        raise CheckError(f"not model features: {sorted(set(unknown))}; features: {', '.join(data.features)}")
    features = params.features if params.features is not None else (
        list(params.monotone) or list(data.features[:6]))
    for feature in features:
        if feature in params.monotone and not pd.api.types.is_numeric_dtype(data.frame[feature].dtype):
            raise CheckError(f"params.monotone[{feature}]: '{feature}' is categorical; a direction needs an order")
    frame = data.frame
    notes: list[str] = []
    rows = ctx.sample_positions(params.max_rows, notes, what="ICE curves of a seeded sample of")
    X = frame.iloc[rows][data.features].reset_index(drop=True)
    n = len(X)
    metrics: dict[str, Metric] = {}
    curves: list[dict[str, Any]] = []
    plots: list[Plot] = []
    integer_inputs = set(ctx.model.integer_inputs())
    for feature in features:
        grid, categorical = _grid(X[feature], params.grid_resolution, params.percentiles)
        if feature in integer_inputs and not categorical and np.any(grid != np.rint(grid)):
            # the model cannot take 8.211: draw the curve at the whole numbers it can take
            grid = np.unique(np.rint(grid))
            notes.append(f"{feature}: the model takes it as whole numbers (an integer input); its grid is the "
                         f"{len(grid)} whole numbers among scikit-learn's grid points, rounded")
        batch = X.loc[X.index.repeat(len(grid))].reset_index(drop=True)
        batch[feature] = np.tile(grid, n) if not categorical else np.tile(grid.astype(object), n)
        raw = ctx.model.predict(batch)
        grid_out = [str(g) for g in grid] if categorical else [float(g) for g in grid]
        x_axis = list(range(len(grid))) if categorical else grid_out
        if multiclass:
            per_class = raw.reshape(n, len(grid), len(classes))
            pdps = per_class.mean(axis=0)  # (grid, classes): each class's mean probability
            for c, label in enumerate(classes):
                curves.append({"feature": feature, "class": label, "grid": grid_out,
                               "pdp": [float(v) for v in pdps[:, c]], "categorical": categorical, "n": n})
            ranges = pdps.max(axis=0) - pdps.min(axis=0)
            widest = int(ranges.argmax())
            metrics[f"pdp_range[{feature}]"] = Metric(float(ranges[widest]), n=n, note=(
                f"largest over the classes: P({classes[widest]})"))
            if target_index is None:
                plots.append(Plot("line", f"PDP per class: {feature}", {
                    "series": [{"name": f"P({label})", "x": x_axis, "y": [float(v) for v in pdps[:, c]],
                                "style": "bold"} for c, label in enumerate(classes)],
                    "x_label": feature, "y_label": "mean predicted probability", "n": n,
                    **({"x_ticks": grid_out} if categorical else {})}))
                continue
            ice = per_class[:, :, target_index]
            record: dict[str, Any] = curves[-len(classes) + target_index]
        else:
            ice = raw.reshape(n, len(grid))
            record = {"feature": feature, "grid": grid_out, "pdp": [float(v) for v in ice.mean(axis=0)],
                      "categorical": categorical, "n": n}
            curves.append(record)
        pdp = ice.mean(axis=0)
        shown = ice - ice[:, :1] if params.centered else ice
        if not multiclass:
            metrics[f"pdp_range[{feature}]"] = Metric(float(pdp.max() - pdp.min()), n=n)
        direction = params.monotone.get(feature)
        if direction is not None:
            sign = 1.0 if direction == "increasing" else -1.0
            against = -sign * np.diff(ice, axis=1)  # positive where a step goes the wrong way
            violating = (against > params.tolerance).any(axis=1)
            metrics[f"monotonicity_violation[{feature}]"] = Metric(float(violating.mean()), n=n,
                                                                   note=f"declared {direction}")
            pdp_against = -sign * np.diff(pdp)
            metrics[f"pdp_max_violation[{feature}]"] = Metric(float(max(0.0, pdp_against.max())), n=n,
                                                             note=f"declared {direction}")
            record.update(direction=direction, violating_curves=int(violating.sum()))
        keep = np.linspace(0, n - 1, min(n, MAX_ICE_PLOTTED)).round().astype(int)
        series = [{"name": "ICE", "x": list(range(len(grid))) if categorical else grid_out,
                   "y": [float(v) for v in shown[i]], "style": "thin"} for i in keep]
        pdp_shown = pdp - pdp[0] if params.centered else pdp
        series.append({"name": "PDP (mean)", "x": list(range(len(grid))) if categorical else grid_out,
                       "y": [float(v) for v in pdp_shown], "style": "bold"})
        title = f"{'Centred ' if params.centered else ''}ICE and PDP: {feature}"
        if target_index is not None:
            title += f", P({classes[target_index]})"
        if direction:
            title += f" (declared {direction})"
        score_name = f"P({classes[target_index]})" if target_index is not None else (
            f"predicted {data.target}" if data.task == "regression" and data.target else "score")
        plots.append(Plot("line", title, {"series": series, "x_label": feature, "n": n,
                                          "y_label": f"change in {score_name}" if params.centered else score_name,
                                          **({"x_ticks": grid_out} if categorical else {})}))
    pairs_out = []
    for first, second in params.pairs:
        grid_a, cat_a = _grid(X[first], min(params.grid_resolution, 10), params.percentiles)
        grid_b, cat_b = _grid(X[second], min(params.grid_resolution, 10), params.percentiles)
        combos = len(grid_a) * len(grid_b)
        batch = X.loc[X.index.repeat(combos)].reset_index(drop=True)
        batch[first] = np.tile(np.repeat(grid_a, len(grid_b)), n)
        batch[second] = np.tile(np.tile(grid_b, len(grid_a)), n)
        predicted = ctx.model.predict(batch)
        if target_index is not None:
            predicted = predicted[:, target_index]
        surface = predicted.reshape(n, len(grid_a), len(grid_b)).mean(axis=0)
        pairs_out.append({"features": [first, second],
                          "grid": [[str(g) if cat_a else float(g) for g in grid_a],
                                   [str(g) if cat_b else float(g) for g in grid_b]],
                          "pdp": [[float(v) for v in row] for row in surface], "n": n})
    if data.task == "regression" and data.target:
        notes.append(f"scores are the predicted {data.target}, in its units")
    if multiclass:
        notes.append(f"one PDP per class (mean predicted probability): {', '.join(classes)}"
                     + (f"; ICE curves of P({classes[target_index]})" if target_index is not None else ""))
    tables: dict[str, list[dict[str, Any]]] = {"pdp": curves}
    if pairs_out:
        tables["pdp_2d"] = pairs_out
    return CheckOutput(metrics=metrics, tables=tables, plots=plots, notes=notes)
