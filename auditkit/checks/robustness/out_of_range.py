"""``out_of_range``: extreme and impossible inputs must still give finite, valid outputs."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import Field

from auditkit.methods.probes import is_numeric, probe, record, sample_rows
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric

UNSEEN = "__auditkit_unseen_category__"


class OutOfRangeParams(CheckParams):
    features: Optional[list[str]] = Field(None, description="Features to probe; default: every model input.")
    factor: float = Field(10.0, gt=1, description="Extreme value = factor x the largest observed magnitude.")
    max_rows: int = Field(500, ge=10, description="Seeded sample of rows.")


CAVEATS = (
    'Only the tested extremes are probed; behaviour between them and the training range is not.',
)


@check("out_of_range", probes_inputs=True, caveats=CAVEATS, family="robustness", params=OutOfRangeParams, needs_model=True,
       metrics=["failures", "failure_rate", "max_decision_change_rate"],
       example={"thresholds": {"failures": {"max": 0}}})
def out_of_range(ctx: AuditContext, params: OutOfRangeParams) -> CheckOutput:
    """Feed extreme and impossible values; outputs must stay finite and within the valid range.

    Probes per numeric feature: ``factor`` x the largest observed magnitude (above the
    range), its negative (below it), and a negative value where the observed minimum is >= 0
    (impossible: a negative count or amount); per text feature: a category never seen. Each
    probe sets the feature on every sampled row and predicts in one batch. A probe fails when
    the model raises, returns a non-finite score, or a probability outside [0, 1].
    ``failures`` = failing probes (0 is the goal); ``failure_rate`` = failures / probes;
    ``max_decision_change_rate`` = the largest share of decisions a probe changes (how far the
    model's decisions follow inputs it never saw; informative, not a failure).
    """
    data = ctx.data
    features = params.features if params.features is not None else list(data.features)
    ctx.require_features(features)
    notes: list[str] = []
    X, _, base_scores, base_decisions = sample_rows(ctx, params.max_rows, notes)
    records: list[dict[str, Any]] = []
    for feature in features:
        column = X[feature]
        probes: list[tuple[str, Any]] = []
        if is_numeric(column):
            present = column.dropna()
            magnitude = float(present.abs().max()) if len(present) else 1.0
            extreme = params.factor * (magnitude if magnitude > 0 else 1.0)
            probes = [(f"{params.factor:g}x the largest magnitude", extreme),
                      (f"-{params.factor:g}x the largest magnitude", -extreme)]
            if len(present) and float(present.min()) >= 0:
                probes.append(("negative where the data are never negative", -max(1.0, magnitude)))
        else:
            probes = [("a category never seen", UNSEEN)]
        for name, value in probes:
            changed = X.copy()
            if isinstance(value, str):
                changed[feature] = changed[feature].astype(object)
            changed[feature] = value
            outcome = probe(ctx, changed, base_scores, base_decisions)
            records.append(record(feature, name, value, outcome))
    failing = [r for r in records if r["crashed"] or r["nonfinite_share"] > 0 or r["out_of_range_share"] > 0]
    changes = [r["decision_change_rate"] for r in records if r["decision_change_rate"] is not None]
    metrics = {"failures": Metric(float(len(failing)), n=len(records)),
               "failure_rate": Metric(len(failing) / len(records) if records else None, n=len(records)),
               "max_decision_change_rate": Metric(max(changes) if changes else None, n=len(X))}
    if failing:
        notes.append("failing probes: " + "; ".join(f"{r['feature']} ({r['probe']})" for r in failing[:10]))
    tables = {"probes": records}
    if failing:
        tables["failures"] = failing
    return CheckOutput(metrics=metrics, tables=tables, notes=notes)
