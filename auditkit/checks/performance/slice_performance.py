"""``slice_performance``: performance on declared slices of the data, and the weakest slices a
search over feature predicates finds, each against the rest with a corrected significance test."""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.registry import CheckParams, check
from auditkit.engine.context import AuditContext, AuditData
from auditkit.errors import CheckError
from auditkit.methods.pvalue_adjust import adjust
from auditkit.methods.slices import auc, auc_se, beam_search, candidate_predicates, proportion_test
from auditkit.methods.stats import bootstrap, level_text, percentile_interval, wilson_interval
from auditkit.policy.models import Policy
from auditkit.results.model import CheckOutput, Metric, Plot

SliceMetric = Literal["accuracy", "error_rate", "roc_auc"]


class SliceSpec(CheckParams):
    name: str = Field(min_length=1, description="The slice's name, as metric slice[name] and in the table.")
    query: str = Field(min_length=1, description='A pandas query over the audit data (columns `score` and `decision` '
                                                 'added for a binary task), e.g. "age_band == \'18-25\' and income < 30000".')


class SlicePerformanceParams(CheckParams):
    metric: SliceMetric = Field("accuracy", description="What is compared: accuracy or error_rate of the decisions, "
                                                        "or roc_auc of the scores (binary tasks).")
    slices: list[SliceSpec] = Field(default_factory=list, description="Declared slices: [{name, query}].")
    discover: bool = Field(True, description="Search for the weakest slices over feature predicates (beam search).")
    features: Optional[list[str]] = Field(None, description="Columns whose predicates the search combines; default: "
                                                            "the model inputs and the protected attributes.")
    bins: int = Field(4, ge=2, le=20, description="A numeric column's predicates are ranges between its quantiles "
                                                  "at 0, 1/bins, ..., 1 on the audit data.")
    max_depth: int = Field(2, ge=1, le=2, description="Most predicates combined in one discovered slice.")
    beam_width: int = Field(10, ge=1, le=100, description="Weakest slices of one depth that the search extends.")
    min_size: int = Field(50, ge=5, description="Fewest rows a slice (declared or discovered) needs to be assessed.")
    top_k: int = Field(10, ge=1, le=100, description="Discovered slices reported, weakest first.")
    correction: Literal["holm", "bh", "none"] = Field(
        "holm", description="Multiple-testing correction over every slice tried (declared and discovered): holm "
                            "(family-wise error) or bh (Benjamini-Hochberg false discovery rate).")
    alpha: float = Field(0.05, gt=0, lt=1, description="A slice is significantly weaker when its adjusted p-value "
                                                       "is below alpha.")
    bootstrap: int = Field(500, ge=0, le=100_000, description="Bootstrap resamples behind roc_auc intervals (accuracy "
                                                              "and error_rate use Wilson intervals).")
    confidence: float = Field(0.95, gt=0, lt=1, description="Two-sided level of the intervals.")


def _validate(params: SlicePerformanceParams, data: AuditData) -> None:
    names = [s.name for s in params.slices]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CheckError(f"params.slices: names {duplicates} are given twice; give each slice its own name")
    if params.features is not None:
        unknown = [f for f in params.features if f not in data.frame.columns]
        if unknown:
            raise CheckError(f"params.features: {unknown} are not columns of the audit data")
    for i, spec in enumerate(params.slices):
        _query_mask(data, spec, i)
    if params.metric == "roc_auc" and data.task != "binary":
        raise CheckError(f"params.metric: roc_auc applies to a binary task, not {data.task}")


def _produces(params: SlicePerformanceParams, policy: Policy) -> list[str]:
    names = ["worst_slice_gap", "worst_slice_metric", "significant_slices", "slices_tried"]
    return names + [f"slice[{s.name}]" for s in params.slices] + [f"slice_gap[{s.name}]" for s in params.slices]


def _query_mask(data: AuditData, spec: SliceSpec, index: int) -> np.ndarray:
    frame = data.frame
    if data.task == "binary":
        frame = frame.assign(score=data.scores, decision=data.decisions)
    try:
        chosen = frame.query(spec.query, engine="python")
    except Exception as exc:  # the query is the user's input
        raise CheckError(f"params.slices[{index}].query {spec.query!r} cannot be evaluated: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]}") from None
    if not isinstance(chosen, pd.DataFrame):
        raise CheckError(f"params.slices[{index}].query {spec.query!r} does not select rows")
    return np.asarray(frame.index.isin(chosen.index))


@check("slice_performance", probes_inputs=True, family="performance", params=SlicePerformanceParams, needs_target=True,
       validate=_validate, produces=_produces,
       metrics=["worst_slice_gap", "worst_slice_metric", "significant_slices", "slices_tried", "slice[*]",
                "slice_gap[*]"],
       example={"params": {"metric": "accuracy", "slices": [{"name": "young", "query": "age_band == '18-25'"}],
                           "max_depth": 2, "min_size": 100, "top_k": 10},
                "thresholds": {"worst_slice_gap": {"max": 0.1}, "significant_slices": {"max": 0, "severity": "warn"},
                               "slice_gap[young]": {"max": 0.05}}})
def slice_performance(ctx: AuditContext, params: SlicePerformanceParams) -> CheckOutput:
    """Performance on slices of the data against the rest: declared slices, and the weakest slices a beam search finds.

    The figure (``params.metric``) is ``accuracy`` or ``error_rate`` of the decisions, or
    ``roc_auc`` of the scores (binary only), on the labelled rows. A slice is a pandas query
    (``params.slices``, declared) or a conjunction of up to ``params.max_depth`` predicates on
    different features (discovered): ``feature = category``, a range between the audit data's
    quantiles (``params.bins``) or ``feature is missing``. The search evaluates every predicate
    with at least ``params.min_size`` rows, keeps the ``params.beam_width`` weakest and extends
    each with every predicate of another feature.

    Per slice: the figure with its interval (Wilson for accuracy and error rate, percentile
    bootstrap for roc_auc), the rest's figure, ``gap`` = how much worse the slice is than the
    rest (rest - slice for accuracy and roc_auc, slice - rest for error_rate; > 0 worse), and a
    one-sided p-value that the slice is worse: a pooled two-proportion z-test (accuracy, error
    rate) or a z-test of two AUCs with Hanley-McNeil standard errors (roc_auc). The p-values are
    adjusted (``params.correction``: Holm or Benjamini-Hochberg) over **every slice tried**,
    declared and discovered; ``slices_tried`` says how many.

    Metrics: ``slice[name]`` and ``slice_gap[name]`` per declared slice; ``worst_slice_gap``
    (largest gap among slices tried, in the figure's units; 0 or below = no slice is worse than
    its rest), ``worst_slice_metric`` (its figure), ``significant_slices`` (slices whose adjusted
    p-value is below ``params.alpha``), ``slices_tried``. Table ``slices``: the declared slices
    and the ``params.top_k`` weakest discovered ones.

    References: Chung et al. (2019), "Slice Finder: automated data slicing for model
    validation"; Holm (1979); Benjamini & Hochberg (1995); Hanley & McNeil (1982).

    >>> from auditkit.methods.slices import proportion_test
    >>> round(proportion_test(50, 100, 50, 100), 3)  # equal accuracy: z = 0, one-sided p = 1/2
    0.5
    """
    data = ctx.data
    if data.task == "regression":
        return CheckOutput.skip("slice_performance compares classification figures (accuracy, error rate, AUC); "
                                "a regression has none of them")
    if data.target is None or data.y is None:
        return CheckOutput.skip("no target column (data.target): slice performance needs observed outcomes")
    labelled = data.labelled
    notes: list[str] = []
    if not labelled.all():
        notes.append(f"{int((~labelled).sum()):,} of {len(labelled):,} rows have no target value and are left out")
    frame = data.frame.loc[labelled]
    if data.task == "binary":
        y = np.asarray(data.y, dtype=np.float64)[labelled]
        correct = (np.asarray(data.decisions, dtype=np.float64)[labelled] == y).astype(np.float64)
        scores = np.asarray(data.scores, dtype=np.float64)[labelled]
    else:
        y_text = np.asarray(data.y, dtype=object)[labelled].astype(str)
        correct = (np.asarray(data.decisions, dtype=object)[labelled].astype(str) == y_text).astype(np.float64)
        y, scores = correct, correct
    metric = params.metric
    n = len(correct)

    def figure(mask: np.ndarray) -> float:
        if metric == "roc_auc":
            return auc(y[mask], scores[mask])
        accuracy = float(correct[mask].mean())
        return 1.0 - accuracy if metric == "error_rate" else accuracy

    def gap_of(mask: np.ndarray) -> tuple[float, float] | None:
        inside, rest = figure(mask), figure(~mask)
        if not (np.isfinite(inside) and np.isfinite(rest)):
            return None
        return inside, (inside - rest) if metric == "error_rate" else (rest - inside)

    def p_value(mask: np.ndarray) -> float:
        if metric == "roc_auc":
            a_in, a_out = figure(mask), figure(~mask)
            se = np.hypot(auc_se(a_in, int(y[mask].sum()), int((1 - y[mask]).sum())),
                          auc_se(a_out, int(y[~mask].sum()), int((1 - y[~mask]).sum())))
            from scipy.stats import norm

            return float(norm.cdf((a_in - a_out) / se)) if se > 0 else 1.0
        return proportion_test(int(correct[mask].sum()), int(mask.sum()), int(correct[~mask].sum()), int((~mask).sum()))

    tried: list[dict[str, Any]] = []
    declared_masks = {s.name: _query_mask(data, s, i)[labelled] for i, s in enumerate(params.slices)}
    metrics: dict[str, Metric] = {}
    for spec in params.slices:
        mask = declared_masks[spec.name]
        size = int(mask.sum())
        result = gap_of(mask) if params.min_size <= size < n else None
        if result is None:
            why = (f"{size} labelled rows, fewer than min_size {params.min_size}" if size < params.min_size else
                   "every labelled row" if size == n else f"{metric} is undefined in the slice or in the rest")
            metrics[f"slice[{spec.name}]"] = Metric(None, n=size, note=why)
            metrics[f"slice_gap[{spec.name}]"] = Metric(None, n=size, note=why)
            notes.append(f"declared slice {spec.name!r} is not assessed: {why}")
            continue
        tried.append({"slice": spec.name, "source": "declared", "query": spec.query, "mask": mask,
                      "value": result[0], "gap": result[1]})

    discovered_total = 0
    if params.discover:
        features = params.features if params.features is not None else list(
            dict.fromkeys(list(data.features) + [p for p in data.protected if p in frame.columns]))
        predicates = candidate_predicates(frame, features, bins=params.bins, min_size=params.min_size)
        found = beam_search(predicates, gap_of, max_depth=params.max_depth, beam_width=params.beam_width,
                            min_size=params.min_size)
        discovered_total = len(found)
        for s in found:
            tried.append({"slice": s.name, "source": "discovered", "query": None, "mask": s.mask, "value": s.value,
                          "gap": s.gap})
        notes.append(f"search: {len(predicates)} predicates on {len(features)} columns (numeric ranges between "
                     f"{params.bins}-quantiles, categories, missing), depth up to {params.max_depth}, beam width "
                     f"{params.beam_width}, min_size {params.min_size}: {discovered_total:,} slices evaluated")

    if tried:
        raw = np.array([p_value(t["mask"]) for t in tried])
        adjusted = adjust(raw, params.correction)
        for t, p, q in zip(tried, raw, adjusted):
            t["p_value"], t["p_adjusted"] = float(p), float(q)
            t["significant"] = bool(q < params.alpha)
    notes.append(f"{len(tried):,} slices tried ({len(tried) - discovered_total} declared, {discovered_total:,} "
                 f"discovered); one-sided p-values that a slice is worse than the rest, adjusted by "
                 f"{ {'holm': 'Holm', 'bh': 'Benjamini-Hochberg', 'none': 'no correction'}[params.correction]} "
                 f"over all of them")

    overall = figure(np.ones(n, dtype=bool))
    records: list[dict[str, Any]] = []
    declared = [t for t in tried if t["source"] == "declared"]
    discovered = sorted((t for t in tried if t["source"] == "discovered"), key=lambda t: -t["gap"])[:params.top_k]
    for t in declared + discovered:
        ci = _interval(t["mask"], correct, y, scores, metric, params, ctx)
        record = {"slice": t["slice"], "source": t["source"], "n": int(t["mask"].sum()), metric: t["value"],
                  f"{metric}_ci": list(ci) if ci else None, f"rest_{metric}": figure(~t["mask"]), "gap": t["gap"],
                  "p_value": t["p_value"], "p_adjusted": t["p_adjusted"], "significant": t["significant"]}
        records.append(record)
        if t["source"] == "declared":
            method = "Wilson score interval" if metric != "roc_auc" else \
                f"percentile bootstrap, {params.bootstrap:,} resamples"
            metrics[f"slice[{t['slice']}]"] = Metric(t["value"], ci=ci, n=record["n"], method=method if ci else None,
                                                     level=params.confidence if ci else None)
            metrics[f"slice_gap[{t['slice']}]"] = Metric(
                t["gap"], n=record["n"], note=f"rest {record[f'rest_{metric}']:.4g}; adjusted p {t['p_adjusted']:.3g}")
    if tried:
        worst = max(tried, key=lambda t: t["gap"])
        metrics["worst_slice_gap"] = Metric(worst["gap"], n=int(worst["mask"].sum()), note=f"slice: {worst['slice']}")
        metrics["worst_slice_metric"] = Metric(worst["value"], n=int(worst["mask"].sum()),
                                               note=f"{metric} of slice: {worst['slice']}")
    else:
        metrics["worst_slice_gap"] = Metric(None, note=f"no slice of at least {params.min_size} rows could be assessed")
        metrics["worst_slice_metric"] = Metric(None, note="no slice assessed")
    metrics["significant_slices"] = Metric(float(sum(t["significant"] for t in tried)), n=len(tried),
                                           note=f"adjusted p < {params.alpha:g} ({params.correction})")
    metrics["slices_tried"] = Metric(float(len(tried)))
    notes.append(f"{metric} over all {n:,} labelled rows: {overall:.4g}")

    plots: list[Plot] = []
    if records:
        plots.append(Plot("bar", f"{metric} of the declared and weakest slices, with {level_text(params.confidence)} "
                                 "intervals", {
            "labels": [r["slice"] for r in records], "values": [r[metric] for r in records],
            "ci_low": [r[f"{metric}_ci"][0] if r[f"{metric}_ci"] else None for r in records],
            "ci_high": [r[f"{metric}_ci"][1] if r[f"{metric}_ci"] else None for r in records],
            "level": params.confidence, "x_label": "slice", "y_label": metric, "horizontal": True, "n": n}))
    return CheckOutput(metrics=metrics, tables={"slices": records}, plots=plots, notes=notes)


def _interval(mask: np.ndarray, correct: np.ndarray, y: np.ndarray, scores: np.ndarray, metric: str,
              params: SlicePerformanceParams, ctx: AuditContext) -> tuple[float, float] | None:
    size = int(mask.sum())
    if metric != "roc_auc":
        k = int(correct[mask].sum())
        low, high = wilson_interval(k if metric == "accuracy" else size - k, size, params.confidence)
        return low, high
    if not params.bootstrap:
        return None
    from auditkit.methods.stats import BinaryMetrics

    computer = BinaryMetrics(y[mask], y[mask], scores[mask])
    draws = bootstrap(lambda C: computer.compute("roc_auc", C), size, resamples=params.bootstrap, rng=ctx.rng)
    return percentile_interval(draws, params.confidence)
