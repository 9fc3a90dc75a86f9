"""``invariance``: declared metamorphic relations, tested on real rows."""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from auditkit.core.decisions import decide
from auditkit.methods.probes import is_numeric, sample_rows
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric

WORST_LISTED = 20


class Equivalence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str
    values: tuple[str, str] = Field(description="Two spellings that must mean the same.")


class InvarianceParams(CheckParams):
    invariant: list[str] = Field(default_factory=list,
                                 description="Columns whose value must not matter: set to every other observed value.")
    monotone: dict[str, Literal["increasing", "decreasing"]] = Field(
        default_factory=dict, description="Raising the value by a step must not move the score the other way.")
    step: float = Field(0.1, gt=0, description="The monotone step, in standard deviations of the column.")
    equivalent: list[Equivalence] = Field(default_factory=list, description="Value pairs that must be interchangeable.")
    tolerance: float = Field(1e-9, ge=0, description="A score move under this (score units) is not a violation; for a "
                                                     "regressor also what an invariant or equivalent change may move "
                                                     "the prediction by (the target's units).")
    target_class: Optional[str] = Field(None, description="Multiclass: the class whose probability a monotone "
                                                          "relation follows (required with params.monotone).")
    max_rows: int = Field(2_000, ge=10, description="Seeded sample of rows.")


CAVEATS = (
    'Only the declared relations are tested; a model can meet them and break others.',
)


@check("invariance", probes_inputs=True, caveats=CAVEATS, family="robustness", params=InvarianceParams, needs_model=True,
       metrics=["violation_rate[*]", "max_violation_rate"],
       example={"params": {"invariant": ["zip_region"], "monotone": {"income": "decreasing"}},
                "thresholds": {"violation_rate": {"max": 0.0}}})
def invariance(ctx: AuditContext, params: InvarianceParams) -> CheckOutput:
    """Declared metamorphic relations: what must not change the decision, or must move the score one way.

    ``violation_rate[invariant: col]`` = share of (row, other observed value of col) pairs
    whose decision changes; ``violation_rate[monotone: col]`` = share of rows whose score
    moves against the declared direction by more than ``params.tolerance`` when col rises by
    ``params.step`` standard deviations; ``violation_rate[equivalent: col a=b]`` = share of
    rows with col in {a, b} whose decision changes when a and b are swapped. 0 = the relation
    holds on every tested row; lower is better. A multiclass decision is the predicted (most
    probable) class, and a monotone relation follows ``params.target_class``'s probability; a
    regressor has no decision: an invariant or equivalent change violates when the prediction
    moves by more than ``params.tolerance`` (the target's units). The worst examples are listed (table
    ``violations``). All altered copies are predicted in batches.
    """
    data = ctx.data
    declared = params.invariant + list(params.monotone) + [e.column for e in params.equivalent]
    if not declared:
        raise CheckError("declare at least one relation: params.invariant, params.monotone or params.equivalent")
    unknown = sorted({c for c in declared if c not in data.frame.columns})
    if unknown:
        raise CheckError(f"columns not in the data: {unknown}")
    not_inputs = sorted({c for c in declared if c not in data.features})
    if not_inputs:
        raise CheckError(f"not model inputs, so the model cannot see them change: {not_inputs}")
    for column in params.monotone:
        if not is_numeric(data.frame[column]):
            raise CheckError(f"params.monotone[{column}]: '{column}' is categorical; a direction needs an order")
    classes = [str(c) for c in (data.classes or [])]
    target_index: int | None = None
    if params.target_class is not None:
        if data.task != "multiclass" or params.target_class not in classes:
            raise CheckError(f"params.target_class: '{params.target_class}' is not a class of this model"
                             + (f"; classes: {', '.join(classes)}" if classes else f" ({data.task} task)"))
        target_index = classes.index(params.target_class)
    if data.task == "multiclass" and params.monotone and target_index is None:
        raise CheckError("params.monotone on a multiclass model follows one class's probability: set "
                         f"params.target_class to one of {', '.join(classes)}")
    notes: list[str] = []
    X, rows, all_scores, base_decisions = sample_rows(ctx, params.max_rows, notes)
    threshold = data.threshold if data.threshold is not None else 0.5
    if data.task == "multiclass":
        base_top = np.asarray(all_scores).argmax(axis=1)
        # the score listed with a violation: the probability of the row's predicted class
        base_scores = np.asarray(all_scores)[np.arange(len(base_top)), base_top]
        notes.append("multiclass: a decision is the predicted (most probable) class; scores listed are the "
                     "probability of the row's unchanged predicted class")
    else:
        base_top, base_scores = None, np.asarray(all_scores)
        if data.task == "regression":
            notes.append(f"regression: an invariant or equivalent change violates when the prediction moves by more "
                         f"than {params.tolerance:g} ({data.target or 'the target'}'s units)")

    def changed_at(scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Whether each altered copy's decision differs from its row's (see the docstring)."""
        if base_top is not None:
            return np.asarray(scores).argmax(axis=1) != base_top[idx]
        if data.task == "regression":
            return np.abs(np.asarray(scores) - base_scores[idx]) > params.tolerance
        return decide(scores, threshold) != base_decisions[idx]

    def listed(scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The altered copies' scores, in the units listed (multiclass: the unchanged class's probability)."""
        if base_top is None:
            return np.asarray(scores)
        return np.asarray(scores)[np.arange(len(idx)), base_top[idx]]
    metrics: dict[str, Metric] = {}
    violations: list[dict[str, Any]] = []

    for column in params.invariant:
        values = list(pd.unique(data.frame[column].dropna()))
        copies, meta = [], []
        for value in values:
            keep = np.flatnonzero((X[column] != value).to_numpy())
            if len(keep):
                copy = X.iloc[keep].copy()
                copy[column] = value
                copies.append(copy)
                meta.append((value, keep))
        scores = ctx.model.predict(pd.concat(copies, ignore_index=True))
        start, pairs, broken = 0, 0, 0
        for value, keep in meta:
            part = scores[start:start + len(keep)]
            start += len(keep)
            changed = changed_at(part, keep)
            part = listed(part, keep)
            pairs += len(keep)
            broken += int(changed.sum())
            for i in np.flatnonzero(changed)[:WORST_LISTED]:
                violations.append({"relation": f"invariant: {column}", "row": int(rows[keep[i]]),
                                   "before": str(X.iloc[keep[i]][column]), "after": str(value),
                                   "score_before": float(base_scores[keep[i]]), "score_after": float(part[i])})
        metrics[f"violation_rate[invariant: {column}]"] = Metric(broken / pairs if pairs else None, n=pairs)

    for column, direction in params.monotone.items():
        std = float(X[column].std())
        step = params.step * (std if std > 0 else 1.0)
        raised = X.copy()
        raised[column] = X[column].astype(np.float64) + step
        scores = ctx.model.predict(raised)
        if target_index is not None:
            scores = np.asarray(scores)[:, target_index]
            move = scores - np.asarray(all_scores)[:, target_index]
        else:
            move = scores - base_scores
        against = -move if direction == "increasing" else move
        bad = (against > params.tolerance) & X[column].notna().to_numpy()
        tested = int(X[column].notna().sum())
        metrics[f"violation_rate[monotone: {column}]"] = Metric(float(bad.sum() / tested) if tested else None, n=tested,
                                                                note=f"declared {direction}; step {step:.4g}")
        for i in np.argsort(-against)[:WORST_LISTED]:
            if bad[i]:
                violations.append({"relation": f"monotone ({direction}): {column}", "row": int(rows[i]),
                                   "before": float(X.iloc[i][column]), "after": float(X.iloc[i][column] + step),
                                   "score_before": float(scores[i] - move[i]), "score_after": float(scores[i])})

    for pair in params.equivalent:
        a, b = pair.values
        text = X[pair.column].astype(str)
        on = np.flatnonzero(text.isin([a, b]).to_numpy())
        name = f"equivalent: {pair.column} {a}={b}"
        if len(on) == 0:
            metrics[f"violation_rate[{name}]"] = Metric(None, n=0, note="no sampled row has either value")
            continue
        swapped = X.iloc[on].copy()
        swapped[pair.column] = np.where(text.iloc[on] == a, b, a)
        scores = ctx.model.predict(swapped)
        changed = changed_at(scores, on)
        scores = listed(scores, on)
        metrics[f"violation_rate[{name}]"] = Metric(float(changed.mean()), n=len(on))
        for i in np.flatnonzero(changed)[:WORST_LISTED]:
            violations.append({"relation": name, "row": int(rows[on[i]]), "before": str(text.iloc[on[i]]),
                               "after": str(swapped.iloc[i][pair.column]),
                               "score_before": float(base_scores[on[i]]), "score_after": float(scores[i])})
    rates = [m.value for m in metrics.values() if m.value is not None]
    metrics["max_violation_rate"] = Metric(max(rates) if rates else None)
    return CheckOutput(metrics=metrics, tables={"violations": violations}, notes=notes)
