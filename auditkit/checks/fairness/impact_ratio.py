"""``impact_ratio``: the New York City Local Law 144 bias-audit calculation."""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
from pydantic import Field

from auditkit.methods import impact_counts, score_counts
from auditkit.methods.comparisons import attach, compare_groups, power_notes, worst
from auditkit.methods.group_keys import key_grouping
from auditkit.methods.groups import MISSING
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, RowSummary, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot


class ImpactRatioParams(CheckParams):
    attributes: Optional[list[str]] = Field(None, description="Categories to audit, e.g. [sex, race]; default: data.protected.")
    intersections: Optional[list[list[str]]] = Field(
        None, description="Default: the intersection of all attributes when there are two or more.")
    exclude_small: bool = Field(False, description="Leave categories under small_share of the data out of the ratios.")
    small_share: float = Field(0.02, gt=0, lt=1, description="The 2% rule of the audit rules.")
    favorable_scores: Optional[Literal["high", "low"]] = Field(
        None, description="Which side of the median (and of cutoff) is favourable; default: high when the favourable "
                          "decision is the positive class, else low (a risk score). Required with cutoff.")
    reference_group: dict[str, str] = Field(
        default_factory=dict, description="Per attribute, the category every impact ratio is taken against (default: "
                                          "the most-selected included category, as the audit rules do).")
    cutoff: Optional[float] = Field(
        None, description="Regression: a value of the prediction, in the model's units. A row is selected when its "
                          "prediction is on the favourable side: >= cutoff (favorable_scores: high) or < cutoff "
                          "(low).")


def _selection(data: Any, params: ImpactRatioParams
               ) -> str | tuple[np.ndarray, np.ndarray | None, str, str | None]:
    """Who is selected (a boolean per row), the scores of the scoring rate, the favourable side of
    them and a note on how a multiclass or regression task was turned into selections; or why
    the check cannot run (a sentence for ``skipped``)."""
    if data.task == "regression":
        if params.cutoff is None or params.favorable_scores is None:
            return ("impact_ratio on a regression model needs a cut-off: set params.cutoff (a value of the "
                    "prediction) and params.favorable_scores (high: a prediction at or above it is favourable; low: "
                    "below it)")
        prediction = np.asarray(data.scores, dtype=np.float64).reshape(len(data.frame))
        above = prediction >= params.cutoff
        selected = above if params.favorable_scores == "high" else ~above & ~np.isnan(prediction)
        side = "at or above" if params.favorable_scores == "high" else "below"
        return (selected, prediction, params.favorable_scores,
                f"regression: selected = prediction {side} the cut-off {params.cutoff:g} (params.cutoff), "
                f"the favourable side (params.favorable_scores: {params.favorable_scores})")
    if data.decisions is None:
        return f"impact_ratio needs the model's decisions; this {data.task} task has none"
    if data.task == "multiclass":
        classes = [str(c) for c in (data.classes or range(np.shape(data.scores)[1]))]
        if data.favorable_class is None:
            return ("impact_ratio on a multiclass model needs the favourable class: set data.favorable_label to one "
                    f"of the classes ({', '.join(classes)}); group_fairness audits every class one-vs-rest")
        selected = np.asarray(data.decisions).astype(str) == data.favorable_class
        scores = (np.asarray(data.scores, dtype=np.float64)[:, classes.index(data.favorable_class)]
                  if data.score_kind != "label" and np.ndim(data.scores) == 2 else None)
        return (selected, scores, params.favorable_scores or "high",
                f"multiclass: selected = predicted class '{data.favorable_class}' (data.favorable_label); the "
                "scoring rate is on that class's probability")
    selected = np.asarray(data.decisions) == data.favorable_decision
    scores = data.scores if data.score_kind not in ("label",) else None
    return selected, scores, params.favorable_scores or ("high" if data.favorable_decision == 1 else "low"), None


def _reference(grouping: Any, params: ImpactRatioParams, included: np.ndarray) -> int | None:
    """The index of ``params.reference_group[attribute]``, which must be an included category."""
    wanted = params.reference_group.get(grouping.attribute)
    if wanted is None:
        return None
    if wanted not in grouping.labels:
        raise CheckError(f"params.reference_group[{grouping.attribute}] = '{wanted}' is not a category of it; "
                         f"categories: {', '.join(grouping.labels)}")
    index = grouping.labels.index(wanted)
    if not included[index]:
        raise CheckError(f"params.reference_group[{grouping.attribute}] = '{wanted}' is excluded (small or unknown): "
                         "choose an included category")
    return index


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    metric = finding["metric"]
    if "[" not in metric or finding.get("value") is None:
        return None
    name, attribute = metric[:-1].split("[", 1)
    column = "impact_ratio" if name == "impact_ratio" else "scoring_impact_ratio"
    rows = [r for r in result.get("tables", {}).get("categories", [])
            if r["attribute"] == attribute and not r.get("excluded") and r.get(column) is not None]
    if not rows:
        return None
    worst = min(rows, key=lambda r: r[column])
    wanted = ((result.get("params") or {}).get("reference_group") or {}).get(attribute)
    best = next((r for r in rows if r["category"] == wanted), None) or max(rows, key=lambda r: r[column])
    what = "selected" if column == "impact_ratio" else "scored on the favourable side of the median"
    params = result.get("params") or {}
    if column == "impact_ratio" and params.get("cutoff") is not None:  # a regression: selected = past the cut-off
        side = "at or above" if params.get("favorable_scores") == "high" else "below"
        what = f"predicted {side} {params['cutoff']:g}"
    return (f"Category '{worst['category']}' of {attribute} was {what} at {worst[column]:.2f} times the rate of "
            f"'{best['category']}' ({worst['n']:,} and {best['n']:,} people); the policy requires at least "
            f"{finding.get('min', 0):.2f}.")


CAVEATS = (
    'The impact ratio compares each category with the most selected one; it says nothing of why rates differ or whether the difference is justified by job-related factors.',
)


def _columns(data: Any, params: ImpactRatioParams) -> list[str]:
    """The attribute columns every grouping of the check reads."""
    attributes = params.attributes if params.attributes is not None else list(data.protected)
    intersections = params.intersections if params.intersections is not None else (
        [attributes] if len(attributes) >= 2 else [])
    return list(dict.fromkeys([*attributes, *(part for parts in intersections for part in parts)]))


def _summarise(frame: Any, data: Any, params: ImpactRatioParams) -> impact_counts.ImpactCounts:
    """The counts of a block of audit rows (a dataset's partition, on the Dask executor)."""
    selection = _selection(data, params)
    if isinstance(selection, str):  # the check skips, with the reason
        return impact_counts.summarise(frame.iloc[:0], [], np.zeros(0, dtype=bool), None)
    selected, scores, _, _ = selection
    return impact_counts.summarise(frame, _columns(data, params), selected, scores)


@check("impact_ratio", caveats=CAVEATS, family="fairness", params=ImpactRatioParams, reading=_reading,
       metrics=["impact_ratio[*]", "scoring_impact_ratio[*]", "categories_excluded[*]"],
       summary=RowSummary(_summarise, impact_counts.combine),
       example={"params": {"attributes": ["sex", "race"], "exclude_small": True},
                "thresholds": {"impact_ratio": {"min": 0.8}}})
def impact_ratio(ctx: AuditContext, params: ImpactRatioParams) -> CheckOutput:
    """Selection rate and impact ratio per category, as NYC Local Law 144 bias audits compute them.

    ``selection_rate`` = share of a category given the favourable decision; ``impact_ratio`` =
    that rate / the highest selection rate among included categories of the attribute (1 =
    the most-selected category; lower is worse). With scores: ``scoring_rate`` = share of a
    category scoring on the favourable side of the whole sample's median (strictly above it
    for high-is-favourable scores) and its ``scoring_impact_ratio``. Metric
    ``impact_ratio[attribute]`` is the smallest included impact ratio. With
    ``params.reference_group`` every ratio is taken against that category instead (a ratio
    above 1: selected more often than the reference). With
    ``params.exclude_small`` categories under 2% of the data are listed but left out of the
    ratios, as the rules allow; unknown values are listed as ``(missing)`` and left out.

    Table ``comparisons`` (as ``group_fairness`` writes it): each included category against
    the most-selected one (and, with scores, the top-scoring one), with the two-sided
    two-proportion z test's p-value (Fisher's exact test where an expected count is under 5),
    the minimum detectable ratio at the policy's ``statistics.alpha`` and ``power`` and
    ``underpowered`` (under 0.8); the engine adds ``p_adjusted`` across the whole audit.

    Multiclass models: selected = the predicted class is ``data.favorable_label`` (the check is
    skipped without one), scored on that class's probability. Regression models: selected = the
    prediction is on the favourable side of ``params.cutoff`` (``favorable_scores: high``: at or
    above it; ``low``: below it), e.g. an interest rate below 15%; the scoring rate uses the
    median prediction on the same side.

    References: NYC Admin. Code 20-870; Rules of the City of New York, Title 6, 5-300 and 5-301
    (bias audit calculations).
    """
    data = ctx.data
    selection = _selection(data, params)
    if isinstance(selection, str):
        return CheckOutput.skip(selection)
    favorable, scores, side, how = selection
    attributes = params.attributes if params.attributes is not None else list(data.protected)
    if not attributes:
        raise CheckError("no attribute: set data.protected or params.attributes")
    intersections = params.intersections if params.intersections is not None else (
        [attributes] if len(attributes) >= 2 else [])
    notes: list[str] = [how] if how else []
    # counts per combination of categories: of every row here, or combined from a dataset's partitions
    counts = data.row_summaries.get(ctx.check_id) or impact_counts.summarise(data.frame, _columns(data, params),
                                                                             favorable, scores)
    if counts.scores is not None:
        median = score_counts.median(counts.scores)
        favourable_score = impact_counts.favourable_scores(counts, median, high=side == "high")  # per key
        notes.append(f"scoring rate: share scoring {'above' if side == 'high' else 'below'} the sample median "
                     f"score {median:.4g}")
    n_total = counts.rows
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    plots: list[Plot] = []
    for parts in [[a] for a in attributes] + [list(i) for i in intersections]:
        grouping = key_grouping(counts.keys, parts)  # codes: each key's category
        sizes = impact_counts.per_group(counts.sizes, grouping).astype(np.int64)
        selected = impact_counts.per_group(counts.selected, grouping)
        rate = selected / np.maximum(sizes, 1)
        excluded = np.array([any(v == MISSING for v in values) for values in grouping.values])
        if params.exclude_small:
            excluded |= sizes / n_total < params.small_share
        included = ~excluded & (sizes > 0)
        if included.sum() == 0:
            raise CheckError(f"{grouping.attribute}: no category is left once small and unknown ones are excluded")
        reference = _reference(grouping, params, included)
        top = rate[included].max() if reference is None else rate[reference]
        ratios = np.where(included, rate / top if top > 0 else np.nan, np.nan)
        scoring = scoring_ratio = None
        if counts.scores is not None:
            scoring = impact_counts.per_group(favourable_score, grouping) / np.maximum(sizes, 1)
            top_scoring = scoring[included].max() if reference is None else scoring[reference]
            scoring_ratio = np.where(included, scoring / top_scoring if top_scoring > 0 else np.nan, np.nan)
        for g, label in enumerate(grouping.labels):
            record: dict[str, Any] = {"attribute": grouping.attribute, "category": label, "n": int(sizes[g]),
                                      "share": float(sizes[g] / n_total), "selected": int(selected[g]),
                                      "selection_rate": float(rate[g]),
                                      "impact_ratio": None if not np.isfinite(ratios[g]) else float(ratios[g]),
                                      "excluded": bool(excluded[g])}
            if scoring is not None:
                record["scoring_rate"] = float(scoring[g])
                record["scoring_impact_ratio"] = None if not np.isfinite(scoring_ratio[g]) else float(scoring_ratio[g])
            records.append(record)
        finite = ratios[np.isfinite(ratios)]
        found = compare_groups(grouping.attribute, grouping.labels, selected, sizes.astype(float),
                               rate="selection_rate", included=included, reference=reference, alpha=data.alpha,
                               power=data.power)
        metric = metrics[f"impact_ratio[{grouping.attribute}]"] = Metric(
            float(finite.min()) if finite.size else None, n=int(sizes[included].sum()),
            note=None if finite.size else "no included category was selected")
        attach(metric, worst(found, attribute=grouping.attribute, rate="selection_rate", kind="ratio"), found,
               attribute=grouping.attribute, rates=["selection_rate"])
        if scoring_ratio is not None:
            finite_s = scoring_ratio[np.isfinite(scoring_ratio)]
            scored = compare_groups(grouping.attribute, grouping.labels,
                                    impact_counts.per_group(favourable_score, grouping),
                                    sizes.astype(float), rate="scoring_rate", included=included, reference=reference,
                                    alpha=data.alpha, power=data.power)
            metric = metrics[f"scoring_impact_ratio[{grouping.attribute}]"] = Metric(
                float(finite_s.min()) if finite_s.size else None, n=int(sizes[included].sum()))
            attach(metric, worst(scored, attribute=grouping.attribute, rate="scoring_rate", kind="ratio"), scored,
                   attribute=grouping.attribute, rates=["scoring_rate"])
            found += scored
        comparisons.extend(found)
        metrics[f"categories_excluded[{grouping.attribute}]"] = Metric(float(excluded.sum()), n=int(sizes.sum()))
        if excluded.any():
            notes.append(f"{grouping.attribute}: listed but left out of the ratios: "
                         + ", ".join(f"{l} ({s:,})" for l, s, e in zip(grouping.labels, sizes, excluded) if e))
        plots.append(Plot("bar", f"Impact ratio by {grouping.attribute}", {
            "labels": [l for l, ok in zip(grouping.labels, included) if ok],
            "values": [float(r) for r, ok in zip(ratios, included) if ok],
            "y_label": "impact ratio", "thresholds": {"min": 0.8}, "threshold_label": "four-fifths",
            "attribute": grouping.attribute, "n": int(sizes.sum())}))
    notes.extend(power_notes(comparisons, alpha=data.alpha, power=data.power))
    return CheckOutput(metrics=metrics, tables={"categories": records, "comparisons": comparisons}, plots=plots,
                       notes=notes)
