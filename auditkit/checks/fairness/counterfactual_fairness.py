"""``counterfactual_fairness``: does changing only the protected attribute change the decision?"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.decisions import decide
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot


class CounterfactualFairnessParams(CheckParams):
    attributes: Optional[list[str]] = Field(None, description="Protected attributes; default: data.protected.")
    max_rows: int = Field(5_000, ge=10, description="Seeded sample of rows whose attribute is flipped.")
    tolerance: Optional[float] = Field(
        None, ge=0, description="Regression: a prediction that moves by more than this, in the model's units, counts "
                                "as changed (flip_rate is that share). Without it a regression reports only the "
                                "prediction's changes.")


CAVEATS = (
    'Flipping only the protected attribute leaves its correlates (proxies) unchanged, so a zero flip rate does not show the absence of discrimination through proxies.',
)


@check("counterfactual_fairness", caveats=CAVEATS, family="fairness", params=CounterfactualFairnessParams, needs_model=True,
       metrics=["flip_rate[*]", "max_pair_flip_rate[*]", "mean_abs_score_change[*]", "max_abs_score_change[*]"],
       example={"params": {"attributes": ["sex"]}, "thresholds": {"flip_rate": {"max": 0.0}}})
def counterfactual_fairness(ctx: AuditContext, params: CounterfactualFairnessParams) -> CheckOutput:
    """Set each row's protected attribute to every other value, re-predict, count decision flips.

    For each attribute that is a model input: ``flip_rate[attribute]`` = share of (row,
    other value) pairs whose decision changes (0 = the model ignores the attribute directly;
    lower is better), ``max_pair_flip_rate`` = the worst source -> target pair, and
    ``mean_abs_score_change``. Table ``flips``: per source -> target value, n, flip rate,
    flips towards and away from the favourable decision, mean score change. All flipped
    copies are predicted in one batch. An attribute that is not a model input cannot act
    directly (it may still act through proxies: see ``proxy_detection``); it is reported as
    not applicable, and the check is ``skipped`` when no attribute is an input.
    ``max_abs_score_change`` is the largest change of any row.

    Multiclass models: the decision is the predicted class, a flip is a change of predicted
    class, the score change of a row is the largest change of any class probability, and
    flips towards / away from the favourable decision count moves into / out of
    ``data.favorable_label`` (null without one). Regression models have no decision: a row
    counts as changed when its prediction moves by more than ``params.tolerance`` (in the
    model's units), and ``flip_rate`` is the share changed (null without a tolerance);
    ``mean_abs_score_change`` and ``max_abs_score_change`` are in the model's units.
    """
    data = ctx.data
    attributes = params.attributes if params.attributes is not None else list(data.protected)
    if not attributes:
        raise CheckError("no protected attribute: set data.protected or params.attributes")
    missing = [a for a in attributes if a not in data.frame.columns]
    if missing:
        raise CheckError(f"protected attributes not in the data: {missing}")
    inputs = [a for a in attributes if a in data.features]
    not_inputs = [a for a in attributes if a not in data.features]
    notes = [f"'{a}' is not a model input: changing it cannot change a decision directly; it may act through "
             "proxies (see proxy_detection)" for a in not_inputs]
    if not inputs:
        return CheckOutput(skipped=f"no protected attribute is a model input ({', '.join(not_inputs)}): "
                                   "a counterfactual flip would report a meaningless zero", notes=notes)
    frame = data.frame
    positions = ctx.sample_positions(params.max_rows, notes)
    base = frame.iloc[positions]
    X = base[data.features]
    base_scores = data.scores[positions]
    base_decisions = None if data.decisions is None else np.asarray(data.decisions)[positions]
    if data.task == "multiclass" and base_decisions is not None:
        base_decisions = base_decisions.astype(str).astype(object)
    favourable = (data.favorable_decision if data.task == "binary" else data.favorable_class)
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    plots: list[Plot] = []
    for attribute in inputs:
        values = [v for v in pd.unique(frame[attribute].dropna())]
        if len(values) < 2:
            raise CheckError(f"attribute '{attribute}' has a single value: nothing to flip to")
        copies, meta = [], []
        for source in values:
            rows = np.flatnonzero((X[attribute] == source).to_numpy())
            for target in values:
                if target == source or len(rows) == 0:
                    continue
                flipped = X.iloc[rows].copy()
                flipped[attribute] = target
                copies.append(flipped)
                meta.append((source, target, rows))
        scores = ctx.model.predict(pd.concat(copies, ignore_index=True))
        decisions = _decisions(data, scores)
        start = 0
        total_pairs = total_flips = 0
        abs_change = 0.0
        worst = 0.0
        largest = 0.0
        for source, target, rows in meta:
            end = start + len(rows)
            new_s, old_s = scores[start:end], base_scores[rows]
            change = _score_change(new_s, old_s)
            flips = _flips(data, params, decisions[start:end] if decisions is not None else None,
                           base_decisions[rows] if base_decisions is not None else None, change)
            record: dict[str, Any] = {"attribute": attribute, "source": str(source), "target": str(target),
                                      "n": int(len(rows)), "flip_rate": None if flips is None else float(flips.mean())}
            if flips is not None and decisions is not None and favourable is not None:
                to_fav = int((flips & (decisions[start:end] == favourable)).sum())
                record.update({"to_favourable": to_fav, "to_unfavourable": int(flips.sum()) - to_fav})
            elif data.task != "regression":
                record.update({"to_favourable": None, "to_unfavourable": None})
            record["mean_score_change"] = float(change.mean())
            record["max_abs_score_change"] = float(np.abs(change).max())
            records.append(record)
            total_pairs += len(rows)
            total_flips += int(flips.sum()) if flips is not None else 0
            abs_change += float(np.abs(change).sum())
            largest = max(largest, float(np.abs(change).max()))
            worst = max(worst, record["flip_rate"] or 0.0)
            start = end
        no_flip = None
        if data.task == "regression" and params.tolerance is None:
            no_flip = "regression: no decision; set params.tolerance to count predictions that move by more than it"
        metrics[f"flip_rate[{attribute}]"] = Metric(None if no_flip else total_flips / total_pairs, n=total_pairs,
                                                    note=no_flip)
        metrics[f"max_pair_flip_rate[{attribute}]"] = Metric(None if no_flip else worst, n=total_pairs, note=no_flip)
        metrics[f"mean_abs_score_change[{attribute}]"] = Metric(abs_change / total_pairs, n=total_pairs)
        metrics[f"max_abs_score_change[{attribute}]"] = Metric(largest, n=total_pairs)
        rows_for_plot = [r for r in records if r["attribute"] == attribute]
        if no_flip:
            plots.append(Plot("bar", f"Mean prediction change when only {attribute} changes", {
                "labels": [f"{r['source']} -> {r['target']}" for r in rows_for_plot],
                "values": [r["mean_score_change"] for r in rows_for_plot], "y_label": "mean change of the prediction",
                "n": total_pairs}))
        else:
            plots.append(Plot("bar", f"{'Prediction change' if data.task == 'regression' else 'Decision flip'} rate "
                                     f"when only {attribute} changes", {
                "labels": [f"{r['source']} -> {r['target']}" for r in rows_for_plot],
                "values": [r["flip_rate"] for r in rows_for_plot],
                "y_label": "share changed" if data.task == "regression" else "flip rate", "n": total_pairs}))
    if data.task == "multiclass":
        notes.append("multiclass: a flip is a change of predicted class; the score change of a row is the largest "
                     "change of any class probability")
    if data.task == "regression" and params.tolerance is not None:
        notes.append(f"regression: a row counts as changed when its prediction moves by more than "
                     f"{params.tolerance:g} (params.tolerance), in the model's units")
    return CheckOutput(metrics=metrics, tables={"flips": records}, plots=plots, notes=notes)


def _decisions(data: Any, scores: np.ndarray) -> np.ndarray | None:
    """The contract's decisions of re-predicted scores: thresholded (binary), the predicted class
    as a string (multiclass), none (regression)."""
    if data.task == "binary":
        return decide(scores, data.threshold)
    if data.task == "multiclass":
        classes = [str(c) for c in (data.classes or range(np.shape(scores)[1]))]
        return np.asarray(classes, dtype=object)[np.argmax(scores, axis=1)]
    return None


def _score_change(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Per row: the change of the score; for class probabilities, the largest change of any class
    (signed, so its mean says which way it leans)."""
    delta = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    if delta.ndim == 2:
        return delta[np.arange(len(delta)), np.argmax(np.abs(delta), axis=1)]
    return delta.reshape(len(delta))


def _flips(data: Any, params: CounterfactualFairnessParams, new: np.ndarray | None, old: np.ndarray | None,
           change: np.ndarray) -> np.ndarray | None:
    if data.task == "regression":
        return None if params.tolerance is None else np.abs(change) > params.tolerance
    assert new is not None and old is not None
    return new != old
