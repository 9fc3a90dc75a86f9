"""``performance``: predictive performance against the target, with bootstrap intervals."""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.engine.context import AuditContext, AuditData
from auditkit.core.params import IntervalParams
from auditkit.core.registry import RowSummary, check
from auditkit.errors import CheckError
from auditkit.policy.models import Policy
from auditkit.results.model import CheckOutput, Metric, Plot
from auditkit.methods import performance_counts, score_counts
from auditkit.methods.stats import (BinaryMetrics, MulticlassMetrics, RegressionMetrics, bootstrap, bootstrap_se,
                            percentile_interval)

BINARY = ("roc_auc", "average_precision", "accuracy", "balanced_accuracy", "precision", "recall", "f1",
          "log_loss", "brier_score")
MULTICLASS = ("accuracy", "f1_macro", "log_loss")
REGRESSION = ("mae", "rmse", "r2")
BY_TASK = {"binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION}
NEEDS_PROBABILITY = {"log_loss", "brier_score"}
MetricName = Literal["roc_auc", "average_precision", "accuracy", "balanced_accuracy", "precision", "recall", "f1",
                     "log_loss", "brier_score", "f1_macro", "mae", "rmse", "r2"]


class PerformanceParams(IntervalParams):
    metrics: Optional[list[MetricName]] = Field(
        None, description="scikit-learn scorer names; default: every metric of the task.")


def _produces(params: PerformanceParams, policy: Policy) -> list[str]:
    if params.metrics:
        return list(params.metrics)
    if policy.model.task:
        return list(BY_TASK[policy.model.task])
    return sorted(set(BINARY) | set(MULTICLASS) | set(REGRESSION))


CAVEATS = (
    'Figures describe the audit data only; they hold for the population the model will meet only as far as that data represents it.',
    'Intervals are percentile bootstraps over rows: they assume rows are independent (no repeated applicants or time dependence).',
)


@check("performance", caveats=CAVEATS, family="performance", params=PerformanceParams, needs_target=True,
       metrics=sorted(set(BINARY) | set(MULTICLASS) | set(REGRESSION)), produces=_produces,
       # by partition only without a bootstrap: its resamples are of rows
       summary=RowSummary(lambda frame, data, params: _summarise(frame, data, params), performance_counts.combine,
                          applies=lambda data, params: not params.bootstrap),
       example={"params": {"metrics": ["roc_auc", "accuracy"], "bootstrap": 1000},
                "thresholds": {"roc_auc": {"min": 0.75}, "accuracy": {"min": 0.7, "severity": "warn"}}})
def performance(ctx: AuditContext, params: PerformanceParams) -> CheckOutput:
    """Predictive performance of the audited scores and decisions against the target.

    Binary: ``roc_auc``, ``average_precision``, ``log_loss`` and ``brier_score`` use the
    positive-class score; ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall`` and
    ``f1`` use the decisions (score >= threshold). Multiclass: ``accuracy``, ``f1_macro``,
    ``log_loss``. Regression: ``mae``, ``rmse``, ``r2``. Definitions are scikit-learn's.
    Each figure has a percentile-bootstrap interval over rows (``params.bootstrap``
    resamples, seeded), computed on resample counts. Only labelled rows count.

    Ranges: losses (log_loss, brier_score, mae, rmse) >= 0, lower is better; r2 <= 1, every
    other figure in [0, 1], higher is better.
    """
    data = ctx.data
    if data.target is None or data.y is None:
        return CheckOutput.skip("no target column (data.target): performance needs observed outcomes")
    task = data.task
    wanted = list(params.metrics or BY_TASK[task])
    invalid = [m for m in wanted if m not in BY_TASK[task]]
    if invalid:
        raise CheckError(f"metrics {invalid} do not apply to a {task} task; valid: {', '.join(BY_TASK[task])}")
    # counts and exact sums of the labelled rows: of every row here, or combined from a dataset's partitions
    summary = data.row_summaries.get(ctx.check_id) or _summarise(data.frame, data, params)
    n = summary.labelled
    notes: list[str] = []
    if n == 0:
        return CheckOutput.skip(f"no row has a value of target '{data.target}'")
    if n < summary.rows:
        notes.append(f"{summary.rows - n:,} of {summary.rows:,} rows have no target value and are left out")

    tables: dict[str, list[dict[str, Any]]] = {}
    plots: list[Plot] = []
    unavailable: dict[str, str] = {}
    if task == "binary":
        probability = data.score_kind == "probability" or (
            data.score_kind == "score" and performance_counts.probability_scores(summary))
        if not probability:
            for name in NEEDS_PROBABILITY:
                unavailable[name] = f"the scores are not probabilities ({data.score_kind})"
        if data.score_kind == "label":
            notes.append("the model gives labels only: roc_auc and average_precision are computed on the decisions")
        cells = summary.cells
        tables["confusion"] = [
            {"actual": f"{data.positive_class} (positive)", "decided_positive": int(cells[0]), "decided_negative": int(cells[2])},
            {"actual": "other", "decided_positive": int(cells[1]), "decided_negative": int(cells[3])},
        ]
        if data.score_kind != "label":
            plots.append(_roc_plot(summary))
    elif task == "multiclass":
        classes = [str(c) for c in (data.classes or [])]
        if summary.unknown:
            raise CheckError(f"target values {sorted(summary.unknown)[:5]} are not among the model's classes {classes}")
        if data.score_kind != "probability":
            unavailable["log_loss"] = "the model gives labels only"

    metrics: dict[str, Metric] = {}
    method = (f"percentile bootstrap over rows, {params.bootstrap:,} resamples, {params.confidence:.0%} level"
              if params.bootstrap else None)
    computable = [m for m in wanted if m not in unavailable]
    draws = None
    if params.bootstrap and computable:  # resamples of rows: a run summarised by partition has none (no bootstrap)
        computer = _row_metrics(data)
        draws = bootstrap(lambda C: np.column_stack([computer.compute(m, C) for m in computable]), n,
                          resamples=params.bootstrap, rng=ctx.rng)
    for name in wanted:
        if name in unavailable:
            metrics[name] = Metric(None, n=n, note=unavailable[name])
            continue
        value = performance_counts.figure(summary, name)
        if not np.isfinite(value):
            metrics[name] = Metric(None, n=n, note="undefined on this data (an empty denominator: e.g. one class only)")
            continue
        ci = se = None
        if draws is not None:
            ci = percentile_interval(draws[:, computable.index(name)], params.confidence)
            se = bootstrap_se(draws[:, computable.index(name)]) if ci else None
        metrics[name] = Metric(value, ci=ci, n=n, method=method if ci else None, level=params.confidence if ci else None,
                               se=se)
    if params.bootstrap:
        notes.append(f"intervals: {method}, on {n:,} labelled rows (seeded)")
    plots.insert(0, Plot("bar", f"Performance with {params.confidence:.0%} bootstrap intervals", {
        "labels": [m for m in wanted if metrics[m].value is not None],
        "values": [metrics[m].value for m in wanted if metrics[m].value is not None],
        "ci_low": [metrics[m].ci[0] if metrics[m].ci else None for m in wanted if metrics[m].value is not None],
        "ci_high": [metrics[m].ci[1] if metrics[m].ci else None for m in wanted if metrics[m].value is not None],
        "y_label": "value", "n": n, "level": params.confidence}))
    return CheckOutput(metrics=metrics, tables=tables, plots=plots, notes=notes)


def _labelled_rows(data: AuditData) -> tuple[np.ndarray, Any, Any, Any]:
    labelled = data.labelled
    return labelled, np.asarray(data.y, dtype=object if data.task == "multiclass" else np.float64)[labelled], \
        None if data.decisions is None else np.asarray(data.decisions, dtype=object if data.task == "multiclass"
                                                       else np.float64)[labelled], data.scores[labelled]


def _summarise(frame: pd.DataFrame, data: AuditData, params: PerformanceParams) -> performance_counts.PerformanceSummary:
    """The counts and exact sums of some audit rows (all of them, or a dataset's partition)."""
    _, y, decisions, scores = _labelled_rows(data)
    return performance_counts.summarise(data.task, len(frame), y, decisions, scores,
                                        classes=[str(c) for c in (data.classes or [])],
                                        probability=data.score_kind == "probability")


def _row_metrics(data: AuditData) -> Any:
    """The per-row metric computer of the bootstrap (it resamples rows)."""
    _, y, decisions, scores = _labelled_rows(data)
    if data.task == "binary":
        return BinaryMetrics(y, decisions, scores)
    if data.task == "multiclass":
        index = {str(c): i for i, c in enumerate(data.classes or [])}
        y_idx = np.array([index[str(v)] for v in y])
        d_idx = np.array([index[str(v)] for v in decisions])
        return MulticlassMetrics(y_idx, d_idx, scores if data.score_kind == "probability" else None, len(index))
    return RegressionMetrics(y, scores)


def _roc_plot(summary: performance_counts.PerformanceSummary) -> Plot:
    assert summary.scores is not None
    fpr, tpr = score_counts.roc_points(summary.scores)  # scikit-learn's roc_curve, from the counts
    if len(fpr) > 200:  # enough points to draw the curve, few enough to keep results.json small
        keep = np.unique(np.linspace(0, len(fpr) - 1, 200).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return Plot("line", "ROC curve", {
        "x_label": "false positive rate", "y_label": "true positive rate", "n": int(summary.labelled),
        "series": [{"name": "model", "x": [round(float(v), 5) for v in fpr], "y": [round(float(v), 5) for v in tpr]},
                   {"name": "chance", "x": [0.0, 1.0], "y": [0.0, 1.0]}]})
