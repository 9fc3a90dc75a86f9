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


CAVEATS = (
    'Flipping only the protected attribute leaves its correlates (proxies) unchanged, so a zero flip rate does not show the absence of discrimination through proxies.',
)


@check("counterfactual_fairness", caveats=CAVEATS, family="fairness", params=CounterfactualFairnessParams, needs_model=True,
       metrics=["flip_rate[*]", "max_pair_flip_rate[*]", "mean_abs_score_change[*]"],
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
    """
    data = ctx.data
    if data.task != "binary":
        return CheckOutput.skip(f"counterfactual_fairness needs binary decisions; this is a {data.task} task")
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
    base_decisions = np.asarray(data.decisions)[positions]
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
        decisions = decide(scores, data.threshold)
        start = 0
        total_pairs = total_flips = 0
        abs_change = 0.0
        worst = 0.0
        for source, target, rows in meta:
            end = start + len(rows)
            new_d, new_s = decisions[start:end], scores[start:end]
            old_d, old_s = base_decisions[rows], base_scores[rows]
            flips = new_d != old_d
            to_fav = int((flips & (new_d == data.favorable_decision)).sum())
            rate = float(flips.mean())
            records.append({"attribute": attribute, "source": str(source), "target": str(target), "n": int(len(rows)),
                            "flip_rate": rate, "to_favourable": to_fav, "to_unfavourable": int(flips.sum()) - to_fav,
                            "mean_score_change": float((new_s - old_s).mean())})
            total_pairs += len(rows)
            total_flips += int(flips.sum())
            abs_change += float(np.abs(new_s - old_s).sum())
            worst = max(worst, rate)
            start = end
        metrics[f"flip_rate[{attribute}]"] = Metric(total_flips / total_pairs, n=total_pairs)
        metrics[f"max_pair_flip_rate[{attribute}]"] = Metric(worst, n=total_pairs)
        metrics[f"mean_abs_score_change[{attribute}]"] = Metric(abs_change / total_pairs, n=total_pairs)
        rows_for_plot = [r for r in records if r["attribute"] == attribute]
        plots.append(Plot("bar", f"Decision flip rate when only {attribute} changes", {
            "labels": [f"{r['source']} -> {r['target']}" for r in rows_for_plot],
            "values": [r["flip_rate"] for r in rows_for_plot], "y_label": "flip rate", "n": total_pairs}))
    return CheckOutput(metrics=metrics, tables={"flips": records}, plots=plots, notes=notes)
