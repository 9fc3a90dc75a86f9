"""``ceteris_paribus``: what-if profiles — one row's score as one feature moves, all else fixed."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.decisions import decide
from auditkit.core.params import RowSelectionParams
from auditkit.methods.rows import select_positions, validate_selection
from auditkit.methods.values import finite_or_none, plain_value
from auditkit.methods.probes import is_numeric
from auditkit.engine.context import AuditContext
from auditkit.core.registry import check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot

DEFAULT_FEATURES = 6


class CeterisParibusParams(RowSelectionParams):
    sample: int = Field(5, ge=1, le=500, description="How many rows (see local_explanations).")
    features: Optional[list[str]] = Field(None, description=f"Features to vary; default: the first "
                                                            f"{DEFAULT_FEATURES} model inputs.")
    grid_resolution: int = Field(25, ge=3, le=200, description="Grid points per numeric feature (categorical features "
                                                         "take each observed category).")
    renamed = {"grid_size": "grid_resolution"}  # partial_dependence's (and scikit-learn's) name
    percentiles: tuple[float, float] = Field((0.01, 0.99), description="Range of the numeric grid, as percentiles "
                                                                       "of the audit data.")


def _validate(params: CeterisParibusParams, data: Any) -> None:
    validate_selection(params, data)
    if params.features is not None:
        unknown = [f for f in params.features if f not in data.features]
        if unknown:
            raise CheckError(f"params.features: {unknown} are not model inputs; inputs: {', '.join(data.features)}")
    low, high = params.percentiles
    if not 0 <= low < high <= 1:
        raise CheckError(f"params.percentiles must satisfy 0 <= low < high <= 1, got {params.percentiles}")


def feature_grid(column: pd.Series, size: int, percentiles: tuple[float, float]) -> tuple[np.ndarray, bool]:
    """Grid of a feature: each observed category, else ``size`` evenly spaced points between the
    percentiles (the distinct values when there are fewer; whole numbers for an integer feature)."""
    present = column.dropna()
    if not is_numeric(column):
        return np.array(sorted(present.astype(str).unique()), dtype=object), True
    values = present.to_numpy(dtype=np.float64)
    unique = np.unique(values)
    if len(unique) <= size:
        return unique, False
    low, high = np.quantile(values, percentiles)
    grid = np.linspace(low, high, size)
    if np.all(values == np.round(values)):
        return np.unique(np.round(grid)), False
    return np.array([float(f"{x:.6g}") for x in grid]), False  # no 0.30524499999999966 in the report


CAVEATS = (
    'What-if profiles move one feature while holding the others fixed, including combinations that do not occur in the data.',
)


@check("ceteris_paribus", probes_inputs=True, caveats=CAVEATS, family="local", params=CeterisParibusParams, needs_model=True,
       case_file=(("charts", None),),
       metrics=["single_feature_flip_share", "mean_score_range", "max_score_range"],
       example={"params": {"query": "decision == 1", "sample": 3, "features": ["income", "debt_ratio"]},
                "thresholds": {"max_score_range": {"max": 0.99, "severity": "warn"}}},
       validate=_validate)
def ceteris_paribus(ctx: AuditContext, params: CeterisParibusParams) -> CheckOutput:
    """What-if (ceteris-paribus) profiles: each selected row's score as one feature moves over its
    range while every other input keeps the row's value.

    Rows are chosen as in ``local_explanations`` (``rows``, ``query`` or a seeded sample
    stratified by decision). Grid: each observed category of a categorical feature; for a
    numeric one ``params.grid_resolution`` evenly spaced points between ``params.percentiles`` of
    the audit data (whole numbers for an integer feature), plus the row's own value, so each
    profile passes through the row's actual score. All rows x grid points of a feature are
    predicted in one batch. Table ``profiles``: ``row``, ``feature``, ``value``, ``score``,
    ``decision``; table ``summary`` per row and feature: the score's range along the profile
    and, for a binary decision, whether changing that feature alone flips it and the value
    nearest to the row's that does (``nearest_flip``). Metrics:
    ``single_feature_flip_share`` = share of (row, feature) pairs where the feature alone can
    flip the decision within the grid; ``mean_score_range`` / ``max_score_range`` = mean /
    largest max - min score along a profile (how much a single input can move one decision).

    Reference: Biecek and Burzykowski (2021), Explanatory Model Analysis, ch. 10
    (ceteris-paribus profiles); Goldstein et al. (2015), ICE plots.
    """
    data = ctx.data
    multiclass = data.task == "multiclass"
    _validate(params, data)
    features = list(params.features) if params.features is not None else list(data.features[:DEFAULT_FEATURES])
    positions = select_positions(data, params, ctx.rng)
    rows_frame = data.frame.iloc[positions][data.features].reset_index(drop=True)
    row_ids = [int(r) for r in data.frame.index[positions]]
    scores = np.asarray(data.scores)[positions]
    decisions = None if data.decisions is None else np.asarray(data.decisions)[positions]
    classes = np.asarray([str(c) for c in (data.classes or [])], dtype=object)
    top = None
    if multiclass:
        # the score profiled is the probability of the row's predicted class; a flip is another class winning
        top = scores.argmax(axis=1)
        scores = scores[np.arange(len(top)), top]
        decisions = classes[top]
    threshold = data.threshold if (data.task == "binary" and data.threshold is not None) else None
    n = len(row_ids)
    profiles: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    by_row: dict[int, list[dict[str, Any]]] = {r: [] for r in row_ids}
    notes: list[str] = []
    for feature in features:
        column = data.frame[feature]
        grid, categorical = feature_grid(column, params.grid_resolution, params.percentiles)
        if len(grid) == 0:
            notes.append(f"{feature}: no observed value; not profiled")
            continue
        probe = rows_frame.iloc[np.repeat(np.arange(n), len(grid))].reset_index(drop=True)
        probe[feature] = np.tile(grid, n) if not categorical else np.tile(grid.astype(object), n)
        if not categorical and column.dtype.kind in "iu":
            probe[feature] = probe[feature].astype(column.dtype)
        raw = np.asarray(ctx.model.predict(probe), dtype=np.float64)
        winners = None
        if top is not None:
            probabilities = raw.reshape(n, len(grid), -1)
            winners = classes[probabilities.argmax(axis=2)]  # (rows, grid): the predicted class at each point
            predicted = probabilities[np.arange(n), :, top]
        else:
            predicted = raw.reshape(n, len(grid))
        for r in range(n):
            current = rows_frame.iloc[r][feature]
            xs, ys = list(grid), list(predicted[r])
            labels = None if winners is None else list(winners[r])
            if not categorical and pd.notna(current) and not np.any(np.isclose(grid, float(current))):
                # the row's own point, from the base predictions
                k = int(np.searchsorted(grid, float(current)))
                xs.insert(k, float(current))
                ys.insert(k, float(scores[r]))
                if labels is not None:
                    labels.insert(k, decisions[r])
            ys_arr = np.asarray(ys)
            finite = np.isfinite(ys_arr)
            record: dict[str, Any] = {"row": row_ids[r], "feature": feature, "value": plain_value(current),
                                      "score": float(scores[r]),
                                      "score_min": float(ys_arr[finite].min()) if finite.any() else None,
                                      "score_max": float(ys_arr[finite].max()) if finite.any() else None}
            record["score_range"] = (None if record["score_min"] is None
                                     else record["score_max"] - record["score_min"])
            if labels is not None:
                flips = np.flatnonzero(finite & (np.asarray(labels, dtype=object) != decisions[r]))
                record["flips"] = bool(len(flips))
                record["nearest_flip"] = _nearest(xs, flips, current, categorical)
            elif threshold is not None and decisions is not None:
                flips = np.flatnonzero(finite & (decide(ys_arr, threshold) != decisions[r]))
                record["flips"] = bool(len(flips))
                record["nearest_flip"] = _nearest(xs, flips, current, categorical)
            summary.append(record)
            for i, (x, y) in enumerate(zip(xs, ys)):
                decision: Any = (labels[i] if labels is not None else
                                 None if threshold is None or not np.isfinite(y) else int(decide(y, threshold)))
                profiles.append({"row": row_ids[r], "feature": feature, "value": plain_value(x),
                                 "score": finite_or_none(y), "decision": decision})
            if not categorical:
                by_row[row_ids[r]].append({"feature": feature, "xs": xs, "ys": ys, "current": current,
                                           "values": column.dropna().to_numpy(dtype=np.float64)})
    if not summary:
        raise CheckError("no feature could be profiled")
    ranges = [s["score_range"] for s in summary if s["score_range"] is not None]
    metrics = {
        "mean_score_range": Metric(float(np.mean(ranges)) if ranges else None, n=len(ranges),
                                   note="mean over (row, feature) profiles of max - min score"),
        "max_score_range": Metric(float(np.max(ranges)) if ranges else None, n=len(ranges)),
        "single_feature_flip_share": Metric(
            float(np.mean([s["flips"] for s in summary])) if "flips" in summary[0] else None, n=len(summary),
            note="(row, feature) pairs where the feature alone flips the decision within the grid"
            if "flips" in summary[0] else "no decision to flip (a regressor)"),
    }
    if multiclass:
        notes.append("multiclass: each profile follows the probability of the row's predicted class; a flip is "
                     "another class becoming the most probable")
    elif data.task == "regression" and data.target:
        notes.append(f"regression: profiles are in the units of the predicted {data.target}")
    plots = [_row_plot(row, scores[i], decisions, i, curves, threshold)
             for i, (row, curves) in enumerate(by_row.items()) if curves]
    return CheckOutput(metrics=metrics, tables={"summary": summary, "profiles": profiles,
                                                "rows": [{"row": r, "score": float(scores[i]),
                                                          "decision": None if decisions is None else
                                                          (str(decisions[i]) if multiclass else int(decisions[i]))}
                                                         for i, r in enumerate(row_ids)]},
                       plots=plots, notes=notes)


def _row_plot(row: int, score: float, decisions: Optional[np.ndarray], index: int,
              curves: list[dict[str, Any]], threshold: Optional[float]) -> Plot:
    """One chart per row: every numeric feature's profile against its percentile in the data,
    so features on different scales share one axis; the row's own position is marked."""
    series = []
    for curve in curves:
        ordered = np.sort(curve["values"])
        percentile = [float(np.searchsorted(ordered, x, side="right") / len(ordered) * 100) for x in curve["xs"]]
        series.append({"name": curve["feature"], "x": percentile, "y": [finite_or_none(y) for y in curve["ys"]]})
    decision = "" if decisions is None else f", decision {decisions[index]}"
    data: dict[str, Any] = {"series": series, "x_label": "feature value, as a percentile of the audit data",
                            "y_label": "score", "row": row,
                            "markers": [{"x": s["x"][_own(c)], "y": float(score)} for s, c in zip(series, curves)
                                        if _own(c) is not None]}
    if threshold is not None:
        data["hline"] = {"y": float(threshold), "label": "decision threshold"}
    return Plot("line", f"Row {row} (score {score:.3g}{decision}): what-if profiles of its numeric features", data)


def _own(curve: dict[str, Any]) -> Optional[int]:
    current = curve["current"]
    if pd.isna(current):
        return None
    matches = np.flatnonzero(np.isclose(np.asarray(curve["xs"], dtype=np.float64), float(current)))
    return int(matches[0]) if len(matches) else None


def _nearest(xs: list[Any], flips: np.ndarray, current: Any, categorical: bool) -> Any:
    if not len(flips):
        return None
    if categorical or pd.isna(current):
        return plain_value(xs[int(flips[0])])
    distances = np.abs(np.asarray(xs, dtype=np.float64)[flips] - float(current))
    return plain_value(xs[int(flips[int(np.argmin(distances))])])

