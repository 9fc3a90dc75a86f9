"""``calibration``: do the scores mean what they say? Reliability curve, ECE/MCE with bootstrap
intervals, the Brier score's Murphy decomposition, and calibration within protected groups."""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
from pydantic import Field

from auditkit.core.params import IntervalParams
from auditkit.core.registry import check
from auditkit.engine.context import AuditContext
from auditkit.methods.calibration import BinnedCalibration, brier_decomposition, ece_noise_floor
from auditkit.methods.groups import make_grouping
from auditkit.methods.stats import bootstrap, bootstrap_se, level_text, percentile_interval, wilson_interval
from auditkit.policy.models import Policy
from auditkit.results.model import CheckOutput, Metric, Plot


class CalibrationParams(IntervalParams):
    bins: int = Field(10, ge=2, le=100, description="Number of score bins of the reliability curve and of ECE/MCE.")
    strategy: Literal["uniform", "quantile"] = Field(
        "uniform", description="uniform: equal-width bins on [0, 1]; quantile: equal-count bins on the scores' "
                               "quantiles (scikit-learn's calibration_curve strategies).")
    attributes: Optional[list[str]] = Field(
        None, description="Protected attributes to check calibration within; default: data.protected. [] for none.")
    min_group_size: int = Field(30, ge=1, description="Groups with fewer labelled rows get no per-group figure "
                                                      "and do not enter ece_difference.")


def _produces(params: CalibrationParams, policy: Policy) -> list[str]:
    names = ["ece", "mce"]
    if policy.model.task != "multiclass":
        names += ["brier_score", "brier_reliability", "brier_resolution", "brier_uncertainty"]
    attributes = params.attributes if params.attributes is not None else list(policy.data.protected)
    return names + ([f"ece[*]", "ece_difference[*]"] if attributes else [])


@check("calibration", family="performance", params=CalibrationParams, needs_target=True,
       metrics=["ece", "mce", "brier_score", "brier_reliability", "brier_resolution", "brier_uncertainty", "ece[*]",
                "ece_difference[*]"],
       produces=_produces,
       example={"params": {"bins": 10, "strategy": "quantile", "bootstrap": 1000},
                "thresholds": {"ece": {"max": 0.05}, "ece_difference": {"max": 0.05, "severity": "warn"}}})
def calibration(ctx: AuditContext, params: CalibrationParams) -> CheckOutput:
    """Calibration of the audited scores: among rows scored about p, does the event happen about p of the time?

    The labelled rows are put in ``params.bins`` score bins (``uniform`` on [0, 1] or ``quantile``
    of the scores; the rule of scikit-learn's ``calibration_curve``). With n_b rows in bin b,
    mean score p_b and observed event rate o_b:

    - ``ece`` = sum_b (n_b / n) |o_b - p_b| (expected calibration error), ``mce`` = max_b |o_b - p_b|
      over non-empty bins (maximum calibration error). Both in [0, 1]; 0 = calibrated, lower is
      better. Percentile-bootstrap intervals over rows with the bins held fixed.
    - ``brier_score`` = mean (p_i - y_i)^2 in [0, 1], and its Murphy (1973) decomposition over the
      same bins: ``brier_reliability`` = sum_b (n_b/n)(p_b - o_b)^2 (0 = calibrated, lower is
      better), ``brier_resolution`` = sum_b (n_b/n)(o_b - o)^2 (higher is better),
      ``brier_uncertainty`` = o(1 - o) (the outcomes' own). brier = reliability - resolution +
      uncertainty exactly when the scores within a bin are equal; with continuous scores two
      within-bin terms make up the rest (Stephenson et al. 2008), reported in table
      ``decomposition``.
    - Calibration within protected groups (a fairness criterion of its own: a score should mean
      the same risk whatever the group): ``ece[attribute=group]`` per group with at least
      ``params.min_group_size`` labelled rows, on the overall bins, and
      ``ece_difference[attribute]`` = largest minus smallest group ECE. A threshold on ``ece``
      applies to every group's ECE too.

    Binary tasks audit the positive class's score (it must be a probability). Multiclass tasks
    are audited on the top label (Guo et al. 2017): the score is the largest class probability
    and the event is "the predicted class is right"; the Brier figures are then left out.
    Regression is skipped.

    ECE is biased upwards by sampling noise (each bin's |o_b - p_b| is positive even for a
    calibrated score); the notes and table ``groups`` give the ECE a calibrated score would read
    with the same bins and counts, sum_b (n_b/n) sqrt(2 p_b (1 - p_b) / (pi n_b)), so that a small
    group's ECE is read against it.

    Tables: ``bins`` (bin, lower, upper, n, mean_score, observed_rate with its Wilson interval,
    gap), ``decomposition`` (term, value), ``groups`` (attribute, group, n, ece, ece_noise_floor,
    mce, brier_score).

    References: Naeini, Cooper & Hauskrecht (2015), "Obtaining well calibrated probabilities
    using Bayesian binning"; Murphy (1973), "A new vector partition of the probability score";
    Stephenson, Coelho & Jolliffe (2008), "Two extra components in the Brier score
    decomposition"; Kleinberg, Mullainathan & Raghavan (2017) on calibration within groups.

    >>> from auditkit.methods.calibration import BinnedCalibration
    >>> import numpy as np
    >>> cal = BinnedCalibration.build(np.array([0.25] * 4 + [0.75] * 4), np.array([1, 1, 1, 1, 1, 1, 1, 0]),
    ...                               bins=2, strategy="uniform")
    >>> [float(v[0]) for v in cal.errors(np.ones((1, 8)))]  # gaps 3/4 and 0: ECE = 3/8, MCE = 3/4
    [0.375, 0.75]
    """
    data = ctx.data
    if data.task == "regression":
        return CheckOutput.skip("calibration is about class probabilities; a regression's values have none "
                                "(use performance's mae/rmse, or a residual analysis)")
    if data.target is None or data.y is None:
        return CheckOutput.skip("no target column (data.target): calibration compares scores with observed outcomes")
    labelled = data.labelled
    notes: list[str] = []
    if data.task == "binary":
        p = np.asarray(data.scores, dtype=np.float64)[labelled]
        if data.score_kind == "label" or np.nanmin(p) < 0 or np.nanmax(p) > 1:
            return CheckOutput.skip(f"the scores are not probabilities ({data.score_kind}): calibration needs them")
        y = np.asarray(data.y, dtype=np.float64)[labelled]
        what = f"P({data.target} = {data.positive_class})"
    else:
        if data.score_kind != "probability":
            return CheckOutput.skip("the model gives labels only: top-label calibration needs class probabilities")
        proba = np.asarray(data.scores, dtype=np.float64)[labelled]
        classes = [str(c) for c in (data.classes or range(proba.shape[1]))]
        p = proba.max(axis=1)
        predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        y = (predicted == np.asarray(data.y, dtype=object)[labelled].astype(str)).astype(np.float64)
        what = "the top class's probability"
        notes.append("multiclass: top-label calibration (score = largest class probability, event = the predicted "
                     "class is right); the Brier decomposition is left out")
    n = len(p)
    if n == 0:
        return CheckOutput.skip(f"no row has a value of target '{data.target}'")
    if n < len(labelled):
        notes.append(f"{len(labelled) - n:,} of {len(labelled):,} rows have no target value and are left out")

    cal = BinnedCalibration.build(p, y, bins=params.bins, strategy=params.strategy)
    ece, mce = (float(v[0]) for v in cal.errors(np.ones((1, n))))
    method = (f"percentile bootstrap over rows, {params.bootstrap:,} resamples, {level_text(params.confidence)} level, "
              "bins held fixed") if params.bootstrap else None
    metrics: dict[str, Metric] = {}
    draws = (bootstrap(lambda C: np.column_stack(cal.errors(C)), n, resamples=params.bootstrap, rng=ctx.rng)
             if params.bootstrap else None)
    for j, (name, value) in enumerate((("ece", ece), ("mce", mce))):
        ci = percentile_interval(draws[:, j], params.confidence) if draws is not None else None
        metrics[name] = Metric(value, ci=ci, n=n, method=method if ci else None,
                               level=params.confidence if ci else None,
                               se=bootstrap_se(draws[:, j]) if ci and draws is not None else None)

    tables: dict[str, list[dict[str, Any]]] = {"bins": _bin_records(cal, params.confidence)}
    notes.append(f"ECE is biased upwards by sampling: a calibrated score would read about {ece_noise_floor(cal):.3g} "
                 "here (sum_b (n_b/n) sqrt(2 p_b (1 - p_b) / (pi n_b))); table groups gives each group's "
                 "ece_noise_floor, larger for small groups")
    if data.task == "binary":
        parts = brier_decomposition(cal)
        for name, value, note in (
                ("brier_score", parts.brier, None),
                ("brier_reliability", parts.reliability, "sum_b (n_b/n)(mean score - observed rate)^2; lower is better"),
                ("brier_resolution", parts.resolution, "sum_b (n_b/n)(observed rate - base rate)^2; higher is better"),
                ("brier_uncertainty", parts.uncertainty, "base rate x (1 - base rate): the outcomes' own")):
            metrics[name] = Metric(value, n=n, note=note)
        residual = parts.brier - (parts.reliability - parts.resolution + parts.uncertainty)
        tables["decomposition"] = [
            {"term": "brier_score", "value": parts.brier},
            {"term": "reliability", "value": parts.reliability},
            {"term": "resolution", "value": parts.resolution},
            {"term": "uncertainty", "value": parts.uncertainty},
            {"term": "within_bin_variance", "value": parts.within_bin_variance},
            {"term": "within_bin_covariance", "value": parts.within_bin_covariance},
            {"term": "reliability - resolution + uncertainty", "value": parts.reliability - parts.resolution
             + parts.uncertainty},
        ]
        notes.append(f"Brier decomposition over the {cal.n_bins} bins: brier - (reliability - resolution + "
                     f"uncertainty) = {residual:.3g}, the within-bin variance minus twice the within-bin covariance "
                     "of the scores (0 when the scores within a bin are equal)")

    plots = [_reliability_plot(tables["bins"], what, n, params.confidence)]
    attributes = params.attributes if params.attributes is not None else list(data.protected)
    if attributes:
        group_records, group_plot = _groups(ctx, params, cal, labelled, attributes, metrics, notes)
        tables["groups"] = group_records
        plots.extend(group_plot)
    counts, _ = np.histogram(p, bins=np.linspace(0, 1, 21))
    plots.append(Plot("hist", "Distribution of the scores", {
        "edges": [round(float(v), 4) for v in np.linspace(0, 1, 21)], "counts": [int(c) for c in counts],
        "x_label": what, "y_label": "rows", "n": n}))
    notes.append(f"{params.strategy} bins: edges {', '.join(f'{e:.4g}' for e in cal.edges)}")
    return CheckOutput(metrics=metrics, tables=tables, plots=plots, notes=notes)


def _bin_records(cal: BinnedCalibration, confidence: float) -> list[dict[str, Any]]:
    count, score, event, _ = cal.sums(np.ones((1, len(cal.p))))
    records = []
    for b in range(cal.n_bins):
        k = int(count[0, b])
        if k == 0:
            continue
        events = int(round(event[0, b]))
        mean_score, rate = score[0, b] / k, event[0, b] / k
        low, high = wilson_interval(events, k, confidence)
        records.append({"bin": b + 1, "lower": float(cal.edges[b]), "upper": float(cal.edges[b + 1]), "n": k,
                        "mean_score": float(mean_score), "observed_rate": float(rate),
                        "observed_rate_ci": [low, high], "gap": float(rate - mean_score)})
    return records


def _reliability_plot(records: list[dict[str, Any]], what: str, n: int, confidence: float) -> Plot:
    return Plot("line", f"Reliability curve with {level_text(confidence)} Wilson intervals", {
        "x_label": f"mean score in bin ({what})", "y_label": "observed event rate", "n": n, "level": confidence,
        "series": [
            {"name": "model", "x": [r["mean_score"] for r in records], "y": [r["observed_rate"] for r in records],
             "y_low": [r["observed_rate_ci"][0] for r in records],
             "y_high": [r["observed_rate_ci"][1] for r in records], "style": "bold"},
            {"name": "perfectly calibrated", "x": [0.0, 1.0], "y": [0.0, 1.0], "style": "dashed"}]})


def _groups(ctx: AuditContext, params: CalibrationParams, cal: BinnedCalibration, labelled: np.ndarray,
            attributes: list[str], metrics: dict[str, Metric], notes: list[str]
            ) -> tuple[list[dict[str, Any]], list[Plot]]:
    frame = ctx.data.frame.loc[labelled]
    records: list[dict[str, Any]] = []
    plots: list[Plot] = []
    method = (f"percentile bootstrap over the group's rows, {params.bootstrap:,} resamples, "
              f"{level_text(params.confidence)} level, overall bins") if params.bootstrap else None
    for attribute in attributes:
        grouping = make_grouping(frame, [attribute], {})
        eces: list[float] = []
        bars: dict[str, list[Any]] = {"labels": [], "values": [], "ci_low": [], "ci_high": []}
        for code, label in enumerate(grouping.labels):
            members = grouping.codes == code
            k = int(members.sum())
            sub = BinnedCalibration(p=cal.p[members], y=cal.y[members], ids=cal.ids[members], edges=cal.edges)
            record: dict[str, Any] = {"attribute": attribute, "group": label, "n": k}
            if k < params.min_group_size:
                record.update({"ece": None, "mce": None, "brier_score": None})
                records.append(record)
                notes.append(f"{attribute}={label}: {k} labelled rows, below min_group_size {params.min_group_size}: "
                             "no per-group figure")
                continue
            ece, mce = (float(v[0]) for v in sub.errors(np.ones((1, k))))
            ci = None
            if params.bootstrap:
                draws = bootstrap(lambda C: sub.errors(C)[0], k, resamples=params.bootstrap, rng=ctx.rng)
                ci = percentile_interval(draws, params.confidence)
            metrics[f"ece[{attribute}={label}]"] = Metric(ece, ci=ci, n=k, method=method if ci else None,
                                                          level=params.confidence if ci else None)
            record.update({"ece": ece, "ece_ci": list(ci) if ci else None, "ece_noise_floor": ece_noise_floor(sub),
                           "mce": mce,
                           "brier_score": float(np.mean((sub.p - sub.y) ** 2))})
            records.append(record)
            eces.append(ece)
            bars["labels"].append(label)
            bars["values"].append(ece)
            bars["ci_low"].append(ci[0] if ci else None)
            bars["ci_high"].append(ci[1] if ci else None)
        if len(eces) >= 2:
            metrics[f"ece_difference[{attribute}]"] = Metric(max(eces) - min(eces), n=sum(
                r["n"] for r in records if r["attribute"] == attribute and r["ece"] is not None),
                note=f"largest minus smallest ECE over {len(eces)} groups")
        else:
            metrics[f"ece_difference[{attribute}]"] = Metric(None, note="fewer than two groups large enough to compare")
        if bars["labels"]:
            plots.append(Plot("bar", f"ECE by {attribute} with {level_text(params.confidence)} bootstrap intervals", {
                **bars, "x_label": attribute, "y_label": "ECE", "level": params.confidence, "attribute": attribute}))
    return records, plots
