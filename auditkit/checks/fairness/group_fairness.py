"""``group_fairness``: favourable-decision and error rates per group, their gaps, with intervals."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Optional

import numpy as np
from pydantic import Field

from auditkit.methods import fairness_counts
from auditkit.methods.comparisons import TEST_METHOD, attach, compare_groups, power_notes, worst
from auditkit.methods.group_means import compare_means, group_means, stratified_mean_draws
from auditkit.methods.group_keys import Keys, key_grouping
from auditkit.methods.groups import Grouping, make_grouping
from auditkit.methods.rates import (D0Y0, D0Y1, D1Y0, D1Y1, LABEL_RATES, RATES, rates_from_counts,
                                    spread, stratified_resamples)
from auditkit.engine.context import AuditContext
from auditkit.core.wording import Wording
from auditkit.core.params import IntervalParams
from auditkit.core.registry import RowSummary, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot
from auditkit.methods.stats import bootstrap_se, percentile_interval

AGGREGATES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
              "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio",
              "average_odds_difference", "predictive_parity_difference")
SPREAD_RATES = tuple(r for r in RATES if r != "base_rate") + ("base_rate",)
METRICS = ([f"{r}_ratio[*]" for r in SPREAD_RATES] + [f"{r}_difference[*]" for r in SPREAD_RATES]
           + [f"{a}[*]" for a in AGGREGATES] + ["selection_rate_p_value[*]", "groups_compared[*]"]
           # regression: group means of the prediction, the absolute error and the residual
           + ["mean_prediction_ratio[*]", "mean_prediction_difference[*]", "mae_ratio[*]", "mae_difference[*]",
              "mean_residual_difference[*]"])
WELCH_METHOD: Final = "p-value: two-sided Welch's t test, worst group against the reference group"
PLOTTED = ("selection_rate", "true_positive_rate", "false_positive_rate", "positive_predictive_value")


class GroupFairnessParams(IntervalParams):
    """``bootstrap`` resamples are stratified by group."""

    attributes: Optional[list[str]] = Field(None, description="Protected attributes; default: data.protected.")
    intersections: list[list[str]] = Field(default_factory=list, description="Combinations, e.g. [[sex, race]].")
    reference_group: dict[str, str] = Field(
        default_factory=dict, description="Per attribute, the group others are compared with (default: min/max).")
    min_group_size: int = Field(30, ge=1, description="Smaller groups are listed but left out of ratios and differences.")
    bins: dict[str, list[float]] = Field(default_factory=dict, description="Bin edges for continuous attributes.")
    calibration_bins: int = Field(10, ge=2, le=100, description="Equal-width score bins for the ECE.")


_MEASURE_WORDS: Final = {"mae": "mean absolute error"}


def _parse_bracket(bracket: str) -> tuple[str, str | None]:
    """``sex`` -> (sex, None); ``sex, class=B`` -> (sex, B): the inverse of :func:`metric_key`."""
    attribute, sep, klass = bracket.rpartition(", class=")
    return (attribute, klass) if sep else (bracket, None)


def _reading(finding: dict[str, Any], result: dict[str, Any], words: Wording = Wording()) -> str | None:
    """One plain-language sentence for a failing or warning figure, in the policy's words."""
    metric = finding["metric"]
    if "[" not in metric or finding.get("value") is None:
        return None
    name, bracket = metric[:-1].split("[", 1)
    attribute, klass = _parse_bracket(bracket)
    record = next((r for r in result.get("tables", {}).get("disparities", [])
                   if r["attribute"] == attribute and r["metric"] == name
                   and (r.get("class") == klass if klass is not None else r.get("favourable", True))), None)
    if record is None:
        return None
    ci = record.get("value_ci")
    ci_text = f" ({result.get('params', {}).get('confidence', 0.95):.0%} CI {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
    bound = (f"the policy requires at least {finding['min']:.2f}" if finding.get("min") is not None
             and finding["value"] < finding["min"] else f"the policy allows at most {finding['max']:.2f}")
    low, high = record.get("low_group"), record.get("high_group")
    raw_rate = record.get("rate", name)
    rate = _MEASURE_WORDS.get(raw_rate, raw_rate).replace("_", " ")
    # one class of a multiclass model against the rest: say which, in the policy's words if it names it
    where = ""
    if klass is not None:
        named = words.decision_names.get(klass)
        where = f" (class '{klass}'{f', {named}' if named else ''}, one-vs-rest)"
    if name.endswith("_ratio") and low and high:
        is_selection = rate.startswith("selection rate") or rate.startswith("demographic parity")
        if is_selection and klass is None:
            return (f"{words.subjects_capitalised()} in {attribute} group '{low}' were {words.favorable_outcome} at "
                    f"{finding['value']:.2f} times the rate of group '{high}'{ci_text}; {bound}.")
        if is_selection:
            named = words.decision_names.get(klass)
            return (f"{words.subjects_capitalised()} in {attribute} group '{low}' were predicted class '{klass}'"
                    f"{f' ({named})' if named else ''} at {finding['value']:.2f} times the rate of group "
                    f"'{high}'{ci_text}; {bound}.")
        gloss = words.rate_gloss(rate)
        return (f"For {attribute}{where}, group '{low}' had {finding['value']:.2f} times the {rate}"
                f"{f' ({gloss})' if gloss else ''} of group '{high}'{ci_text}; {bound}.")
    if low and high:
        gloss = words.rate_gloss(rate)
        units = " (in the model's units)" if raw_rate in _MEASURES else ""
        return (f"For {attribute}{where}, the {rate}{f' ({gloss})' if gloss else ''} of group '{high}' exceeds that "
                f"of group '{low}' by {finding['value']:.2f}{units}{ci_text}; {bound}.")
    return None


CAVEATS = (
    'Each group comparison is judged against its threshold separately; with many groups and rates some misses or passes can arise by chance (see the multiple-comparisons note).',
    'Group fairness metrics can conflict: when base rates differ, equal selection rates, equal error rates and calibration cannot all hold at once (Kleinberg et al., 2016; Chouldechova, 2017).',
    'Error-rate metrics use the observed outcomes, which may themselves carry historical bias.',
)


def _summarise(frame: Any, data: Any, params: GroupFairnessParams) -> fairness_counts.FairnessCounts:
    """A classifier's counts per combination of the attributes' groups, for each decision audited
    (:mod:`auditkit.methods.fairness_counts`): of every audit row, or of a dataset's partition."""
    attributes = params.attributes if params.attributes is not None else list(data.protected)
    columns = list(dict.fromkeys([*attributes, *(part for parts in params.intersections for part in parts)]))
    y = None if data.y is None else np.asarray(data.y, dtype=np.float64 if data.task == "binary" else object)
    if data.task == "binary":
        variants = [(None, np.asarray(data.decisions, dtype=np.int64), y, data.scores)]
    else:  # each class one-vs-rest, as the check's loop over classes
        classes = [str(c) for c in (data.classes or range(np.shape(data.scores)[1]))]
        predicted = np.asarray(data.decisions).astype(str)
        missing = None if y is None else np.equal(y, None)
        variants = [(klass, (predicted == klass).astype(np.int64),
                     None if y is None else np.where(missing, np.nan, (y.astype(str) == klass).astype(np.float64)),
                     np.asarray(data.scores, dtype=np.float64)[:, j] if np.ndim(data.scores) == 2 else data.scores)
                    for j, klass in enumerate(classes)]
    return fairness_counts.summarise(frame, columns, params.bins, variants,
                                     probability=data.score_kind == "probability",
                                     calibration_bins=params.calibration_bins)


@check("group_fairness", caveats=CAVEATS, family="fairness", params=GroupFairnessParams, metrics=METRICS, reading=_reading,
       summary=RowSummary(_summarise, fairness_counts.combine, applies=lambda data, params: data.task != "regression"),
       example={"params": {"attributes": ["sex", "race"], "intersections": [["sex", "race"]], "min_group_size": 30},
                "thresholds": {"selection_rate_ratio": {"min": 0.8}, "equalized_odds_difference": {"max": 0.1}}})
def group_fairness(ctx: AuditContext, params: GroupFairnessParams) -> CheckOutput:
    """Rates of the favourable decision and of errors per group, and their gaps across groups.

    Per group (fairlearn's names): ``selection_rate`` (rate of the favourable decision,
    ``data.favorable_label``), ``base_rate``, ``true_positive_rate``, ``false_positive_rate``,
    ``false_negative_rate``, ``true_negative_rate``, ``positive_predictive_value``,
    ``negative_predictive_value``, ``accuracy`` — error rates about the positive class and the
    target — with ``n`` and ``share``; with probability scores also ``auc``, ``mean_score``,
    ``observed_rate`` and ``ece`` (expected calibration error). A rate whose denominator is
    empty is null, never 0.

    Across the groups of each attribute: ``<rate>_ratio[attribute]`` = smallest / largest
    (1 = parity, in [0, 1]) and ``<rate>_difference[attribute]`` = largest - smallest (0 =
    parity); with ``params.reference_group`` the worst ratio to, and largest absolute
    difference from, that group. fairlearn's aggregates: ``demographic_parity_ratio`` /
    ``_difference`` (= selection rate's), ``equalized_odds_difference`` (the larger of the TPR
    and FPR differences), ``equalized_odds_ratio`` (the smaller of their ratios),
    ``equal_opportunity_difference`` / ``_ratio`` (TPR's), ``average_odds_difference`` (mean
    of the TPR and FPR differences), ``predictive_parity_difference`` (PPV's). The
    four-fifths rule is ``selection_rate_ratio >= 0.8``. Every ratio and difference has a
    stratified bootstrap interval (groups resampled separately, sizes kept);
    ``selection_rate_p_value`` is the chi-square test of independence of group and decision
    (Fisher's exact test for a 2 x 2 table with an expected count under 5).

    Groups under ``params.min_group_size`` rows are listed but left out of ratios and
    differences; missing attribute values form the group ``(missing)``.

    Table ``comparisons``: for the selection rate and, with a target, the true and false
    positive rates, each included group against the reference group (``params.reference_group``,
    else the group with the highest rate): both rates and sizes, the two-sided two-proportion z
    test's p-value (Fisher's exact test where an expected count is under 5), the minimum
    detectable ratio (the largest ratio below 1 that the test finds with the policy's
    ``statistics.power`` at its ``alpha``) and ``underpowered`` (that ratio is under 0.8: a
    four-fifths disparity could go unseen). The ratio and difference metrics of those rates
    (and demographic parity, equal opportunity, equalized odds) carry the p-value of their
    worst group and the groups that are underpowered; the engine adds ``p_adjusted``, corrected
    across every comparison of the audit (``statistics.multiple_comparisons``).

    Multiclass models: the decision is the predicted class (the largest probability). Each
    class is audited one-vs-rest, as a binary model whose decision is "predicted this class"
    and whose outcome is "observed this class": the figures above, named
    ``<metric>[attribute, class=<class>]`` (``selection_rate_ratio[sex, class=C]``), every record
    of tables ``groups``, ``disparities`` and ``comparisons`` with its ``class``. The class that
    benefits the person is ``data.favorable_label``: its figures carry the binary names
    (``selection_rate_ratio[sex]``, the four-fifths rule on the favourable prediction) and its
    records ``favourable: true``. A threshold on ``selection_rate_ratio`` applies to every class.

    Regression models: groups are compared on the mean of a per-row value, in the model's units:
    ``mean_prediction`` (demographic parity's analogue), ``mae`` (mean absolute error) and
    ``mean_residual`` (prediction minus outcome; above 0 = the group is over-predicted), the last
    two with a target. Per attribute ``mean_prediction_ratio`` and ``mae_ratio`` (smallest /
    largest, only when every compared mean is above 0), ``mean_prediction_difference``,
    ``mae_difference`` and ``mean_residual_difference`` (largest - smallest, 0 = parity), each
    with a stratified bootstrap interval; table ``comparisons`` tests each group against the
    reference group (``params.reference_group``, else the largest mean) with Welch's t test and
    states its ``min_detectable_difference``. For the share of each group above a cut-off, see
    ``impact_ratio`` with ``params.cutoff``.

    References: fairlearn.metrics (MetricFrame, demographic_parity_ratio,
    equalized_odds_difference); EEOC Uniform Guidelines, 29 CFR 1607.4(D) (four-fifths rule).
    """
    data = ctx.data
    attributes = params.attributes if params.attributes is not None else list(data.protected)
    if not attributes and not params.intersections:
        raise CheckError("no protected attribute: set data.protected or params.attributes")
    if data.task == "regression":
        groupings = _groupings(data.frame, attributes, params)
        return _regression(ctx, params, groupings)
    if data.decisions is None:
        return CheckOutput.skip(f"group_fairness needs the model's decisions; this {data.task} task has none")
    # counts per combination of groups: of every row here, or combined from a dataset's partitions
    counts = data.row_summaries.get(ctx.check_id) or _summarise(data.frame, data, params)
    groupings = _groupings(data.frame, attributes, params, keys=counts.keys)
    out = _Figures()
    if data.task == "binary":
        y = None if data.y is None else np.asarray(data.y, dtype=np.float64)
        _classification(ctx, params, groupings, out, decisions=np.asarray(data.decisions, dtype=np.int64), y=y,
                        scores=data.scores, favorable=data.favorable_decision, klass=None, keyed=False, counts=counts)
    else:
        classes = [str(c) for c in (data.classes or range(np.shape(data.scores)[1]))]
        predicted = np.asarray(data.decisions).astype(str)
        truth = None if data.y is None else np.asarray(data.y, dtype=object)
        favourable = data.favorable_class
        if favourable is None:
            out.notes.append("multiclass: every class is audited one-vs-rest (decision = the predicted class is it, "
                             "outcome = the observed class is it), figures named <metric>[attribute, class=<class>]. "
                             "No favourable class is declared (data.favorable_label), so no figure is the "
                             "favourable decision's")
        else:
            out.notes.append(f"multiclass: the favourable decision is predicted class '{favourable}' "
                             "(data.favorable_label): its figures carry the binary names (<metric>[attribute]); "
                             "every other class is audited one-vs-rest as <metric>[attribute, class=<class>]")
        for j, klass in enumerate(classes):
            y = None if truth is None else np.array(
                [np.nan if v is None else float(str(v) == klass) for v in truth], dtype=np.float64)
            scores = np.asarray(data.scores, dtype=np.float64)[:, j] if np.ndim(data.scores) == 2 else data.scores
            _classification(ctx, params, groupings, out, decisions=(predicted == klass).astype(np.int64), y=y,
                            scores=scores, favorable=1, klass=klass, keyed=klass != favourable, counts=counts)
    out.plots = _rate_plots(out.groups, data.y is not None, params.confidence, counts.rows,
                            only_selection=data.task == "multiclass")
    if params.bootstrap:
        out.notes.append(f"intervals: {_method(params)} (seeded)")
    out.notes.extend(power_notes(out.comparisons, alpha=data.alpha, power=data.power))
    return CheckOutput(metrics=out.metrics, tables={"groups": out.groups, "disparities": out.disparities,
                                                    "comparisons": out.comparisons},
                       plots=out.plots, notes=list(dict.fromkeys(out.notes)))


@dataclass
class _Figures:
    """What the check writes, filled attribute by attribute (and class by class)."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    disparities: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _groupings(frame: Any, attributes: list[str], params: GroupFairnessParams, keys: Keys | None = None) -> list[Grouping]:
    """The groupings of the rows of ``frame``, or with ``keys`` of the counts' keys (codes: each key's group)."""
    def make(parts: list[str]) -> Grouping:
        return make_grouping(frame, parts, params.bins) if keys is None else key_grouping(keys, parts)

    groupings = [make([a]) for a in attributes]
    groupings += [make(list(parts)) for parts in params.intersections]
    for grouping in groupings:
        if len(grouping.labels) < 2:
            raise CheckError(f"attribute '{grouping.attribute}' has a single group ({grouping.labels[0]}): "
                             "there is nothing to compare")
    return groupings


def metric_key(attribute: str, klass: str | None) -> str:
    """The bracket of a figure's name: ``sex``, or ``sex, class=B`` for class B of a multiclass model
    audited one-vs-rest (a threshold on ``selection_rate_ratio`` applies to both)."""
    return attribute if klass is None else f"{attribute}, class={klass}"


def _method(params: IntervalParams) -> str | None:
    return (f"stratified bootstrap by group, {params.bootstrap:,} resamples, {params.confidence:.0%} percentile"
            if params.bootstrap else None)


def _reference_of(grouping: Grouping, params: GroupFairnessParams) -> int | None:
    wanted = params.reference_group.get(grouping.attribute)
    if wanted is None:
        return None
    if wanted not in grouping.labels:
        raise CheckError(f"params.reference_group[{grouping.attribute}] = '{wanted}' is not a group "
                         f"of it; groups: {', '.join(grouping.labels)}")
    return grouping.labels.index(wanted)


def _included(grouping: Grouping, sizes: np.ndarray, params: GroupFairnessParams, notes: list[str]) -> np.ndarray:
    included = sizes >= params.min_group_size
    small = [label for label, ok in zip(grouping.labels, included) if not ok]
    if small:
        notes.append(f"{grouping.attribute}: groups under {params.min_group_size} rows are listed but left out "
                     f"of ratios and differences: {', '.join(small)}")
    return included


def _classification(ctx: AuditContext, params: GroupFairnessParams, groupings: list[Grouping], out: _Figures, *,
                    decisions: np.ndarray, y: np.ndarray | None, scores: np.ndarray, favorable: int,
                    klass: str | None, keyed: bool, counts: fairness_counts.FairnessCounts) -> None:
    """The binary figures of one decision (a binary model's, or one class of a multiclass model
    against the rest), for every grouping, added to ``out``. ``klass`` is written in the records
    (a multiclass model's class); ``keyed`` puts it in the metric names too. The groupings' codes
    are keys of ``counts``, which hold every figure's counts."""
    data = ctx.data
    probability = data.score_kind == "probability"
    notes = out.notes
    if y is None:
        notes.append("no target (data.target): only selection rates are computed; label-based rates are null")
    method = _method(params)
    # a multiclass record names its class, and whether it is the favourable one (named without it)
    tag: dict[str, Any] = {} if klass is None else {"class": klass, "favourable": not keyed}
    for grouping in groupings:
        key = metric_key(grouping.attribute, klass if keyed else None)
        cells = fairness_counts.group_cells(counts, grouping, klass)
        sizes = cells.sum(axis=1)
        point = rates_from_counts(cells, favorable)
        included = _included(grouping, sizes, params, notes)
        reference = _reference_of(grouping, params)
        draws = (rates_from_counts(stratified_resamples(cells, params.bootstrap, ctx.rng), favorable)
                 if params.bootstrap else None)

        per_group_ci = {name: np.array([percentile_interval(draws[name][:, g], params.confidence)
                                        if draws is not None else None for g in range(len(grouping.labels))],
                                       dtype=object) for name in RATES}
        extra = fairness_counts.score_figures(counts, grouping, klass, labelled=y is not None, probability=probability)
        p_values = _pairwise_p_values(cells, favorable, included)
        for g, label in enumerate(grouping.labels):
            record: dict[str, Any] = {"attribute": grouping.attribute, **tag, "group": label,
                                      "group_values": list(grouping.values[g]), "n": int(sizes[g]),
                                      "share": float(sizes[g] / sizes.sum()), "included": bool(included[g])}
            for name in RATES:
                value = point[name][g]
                record[name] = None if not np.isfinite(value) else float(value)
                ci = per_group_ci[name][g]
                if ci is not None and record[name] is not None:
                    record[f"{name}_ci"] = list(ci)
            record.update(extra[g])
            record["selection_rate_p_value"] = p_values[g]
            out.groups.append(record)

        spreads: dict[str, tuple[float, float]] = {}
        boot: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in SPREAD_RATES:
            ratio, difference = spread(point[name], included, reference)
            spreads[name] = (float(ratio), float(difference))
            if draws is not None:
                boot[name] = spread(draws[name], included, reference)
        aggregate_point = _aggregates({k: (np.array(v[0]), np.array(v[1])) for k, v in spreads.items()})
        aggregate_boot = _aggregates(boot) if draws is not None else {}
        for name in SPREAD_RATES:
            for kind, index in (("ratio", 0), ("difference", 1)):
                _add(out.metrics, out.disparities, grouping, key, tag, f"{name}_{kind}", name, spreads[name][index],
                     boot[name][index] if draws is not None else None, params, method,
                     y is None and name in LABEL_RATES, point[name], included, reference, rows=counts.rows)
        for metric_name, value in aggregate_point.items():
            source = _AGGREGATE_SOURCE[metric_name]
            _add(out.metrics, out.disparities, grouping, key, tag, metric_name, source, float(value),
                 aggregate_boot.get(metric_name), params, method, y is None and metric_name not in (
                     "demographic_parity_difference", "demographic_parity_ratio"),
                 point[source], included, reference, rows=counts.rows)
        found = _comparisons(grouping, cells, favorable, included, reference, labelled=y is not None,
                             alpha=data.alpha, power=data.power)
        for record in found:
            record.update(tag)
        _link(out.metrics, key, grouping.attribute, found)
        out.comparisons.extend(found)
        out.metrics[f"selection_rate_p_value[{key}]"] = _omnibus(cells, favorable, included)
        out.metrics[f"groups_compared[{key}]"] = Metric(float(included.sum()), n=int(sizes.sum()))


# ---------------------------------------------------------------- regression

#: measure -> (the per-row value it averages, whether it needs the target, whether a ratio means anything)
_MEASURES: Final = {"mean_prediction": (False, True), "mae": (True, True), "mean_residual": (True, False)}


def _regression(ctx: AuditContext, params: GroupFairnessParams, groupings: list[Grouping]) -> CheckOutput:
    """Group means of the prediction, the absolute error and the residual, and their gaps."""
    data = ctx.data
    prediction = np.asarray(data.scores, dtype=np.float64).reshape(len(data.frame))
    y = None if data.y is None else np.asarray(data.y, dtype=np.float64)
    residual = prediction - y if y is not None else np.full(len(prediction), np.nan)
    values = np.column_stack([prediction, np.abs(residual), residual])
    out = _Figures()
    if y is None:
        out.notes.append("no target (data.target): only the mean prediction is compared; the error figures are null")
    out.notes.append("regression: groups are compared on their mean prediction, mean absolute error (mae) and mean "
                     "residual (prediction minus outcome; above 0: over-predicted), in the model's units")
    method = _method(params)
    for grouping in groupings:
        n_groups = len(grouping.labels)
        sizes = np.bincount(grouping.codes, minlength=n_groups).astype(np.float64)
        included = _included(grouping, sizes, params, out.notes)
        reference = _reference_of(grouping, params)
        point = group_means(grouping.codes, n_groups, values)
        draws = (stratified_mean_draws(grouping.codes, n_groups, values, params.bootstrap, ctx.rng)
                 if params.bootstrap else None)
        labelled = np.bincount(grouping.codes, weights=np.isfinite(residual).astype(np.float64), minlength=n_groups)
        for g, label in enumerate(grouping.labels):
            record: dict[str, Any] = {"attribute": grouping.attribute, "group": label,
                                      "group_values": list(grouping.values[g]), "n": int(sizes[g]),
                                      "share": float(sizes[g] / sizes.sum()), "included": bool(included[g]),
                                      "n_labelled": int(labelled[g])}
            for j, measure in enumerate(_MEASURES):
                value = point[g, j]
                record[measure] = float(value) if np.isfinite(value) else None
                ci = percentile_interval(draws[:, g, j], params.confidence) if draws is not None else None
                if ci is not None and record[measure] is not None:
                    record[f"{measure}_ci"] = list(ci)
            if y is not None:
                member = (grouping.codes == g) & np.isfinite(y)
                record["mean_target"] = float(y[member].mean()) if member.any() else None
            out.groups.append(record)
        found: list[dict[str, Any]] = []
        for j, (measure, (needs_target, has_ratio)) in enumerate(_MEASURES.items()):
            column = point[:, j]
            defined = included & np.isfinite(column)
            # the reference of the tests: the policy's, else the group with the largest mean, as the
            # denominator of a smallest-over-largest ratio
            ref = reference if reference is not None else (
                int(np.nanargmax(np.where(defined, column, np.nan))) if defined.any() else None)
            if ref is not None and not (y is None and needs_target):
                found += compare_means(grouping.attribute, grouping.labels, grouping.codes, values[:, j],
                                       measure=measure, included=included, reference=ref, alpha=data.alpha,
                                       power=data.power, ratio=has_ratio)
            ratio, difference = spread(column, included, reference)
            boot = spread(draws[:, :, j], included, reference) if draws is not None else None
            # a ratio of means is a disparity only for positive quantities
            positive = bool((column[defined] > 0).all()) if defined.any() else False
            kinds = (("ratio", 0), ("difference", 1)) if has_ratio else (("difference", 1),)
            for kind, index in kinds:
                value = (ratio, difference)[index]
                if kind == "ratio" and not positive and np.isfinite(value):
                    out.metrics[f"{measure}_ratio[{grouping.attribute}]"] = Metric(
                        None, n=int(sizes.sum()), note="a ratio of means needs every compared group's mean above 0")
                    continue
                _add(out.metrics, out.disparities, grouping, grouping.attribute, {}, f"{measure}_{kind}", measure,
                     float(value), boot[index] if boot is not None else None, params, method,
                     y is None and needs_target, column, included, reference)
        _link_measures(out.metrics, grouping.attribute, found)
        out.comparisons.extend(found)
        out.metrics[f"groups_compared[{grouping.attribute}]"] = Metric(float(included.sum()), n=int(sizes.sum()))
    out.plots = _mean_plots(out.groups, y is not None, params.confidence, len(prediction))
    if method:
        out.notes.append(f"intervals: {method} (seeded)")
    out.notes.append("comparisons: each group against the reference group (params.reference_group, else the group "
                     "with the largest mean), Welch's t test; min_detectable_difference is the smallest difference "
                     f"of means found with {data.power:.0%} power at alpha {data.alpha:g}")
    return CheckOutput(metrics=out.metrics, tables={"groups": out.groups, "disparities": out.disparities,
                                                    "comparisons": out.comparisons},
                       plots=out.plots, notes=list(dict.fromkeys(out.notes)))


def _link_measures(metrics: dict[str, Metric], attribute: str, records: list[dict[str, Any]]) -> None:
    for measure in _MEASURES:
        for kind in ("ratio", "difference"):
            metric = metrics.get(f"{measure}_{kind}[{attribute}]")
            if metric is not None and metric.value is not None:
                attach(metric, worst(records, attribute=attribute, rate=measure, kind=kind), records,
                       attribute=attribute, rates=[measure])
                if metric.p_value is not None and metric.method:
                    metric.method = metric.method.replace(TEST_METHOD, WELCH_METHOD)


def _mean_plots(groups_table: list[dict[str, Any]], labelled: bool, level: float, n: int) -> list[Plot]:
    plots = []
    for measure, title, y_label in (("mean_prediction", "Mean prediction per group", "mean prediction"),
                                    ("mae", "Mean absolute error per group", "mean absolute error"),
                                    ("mean_residual", "Mean residual (prediction - outcome) per group",
                                     "mean residual")):
        if not labelled and measure != "mean_prediction":
            continue
        rows = [r for r in groups_table if r.get(measure) is not None]
        if not rows:
            continue
        data: dict[str, Any] = {
            "labels": [r["group"] for r in rows], "values": [r[measure] for r in rows],
            "ci_low": [r.get(f"{measure}_ci", [None, None])[0] for r in rows],
            "ci_high": [r.get(f"{measure}_ci", [None, None])[1] for r in rows],
            "included": [r["included"] for r in rows], "sections": [r["attribute"] for r in rows],
            "y_label": y_label, "rate": measure,
            "difference_metric": [f"{measure}_difference[{r['attribute']}]" for r in rows], "n": n, "level": level}
        if measure != "mean_residual":
            data["ratio_metric"] = [f"{measure}_ratio[{r['attribute']}]" for r in rows]
        plots.append(Plot("bar", title, data))
    return plots


# The rates whose group comparisons are tested, each as (hits, denominator) cells of cell_counts:
# selection rate (demographic parity, the four-fifths rule) and the two rates of equalized odds.
_LABEL_COMPARED = {"true_positive_rate": ((D1Y1,), (D1Y1, D0Y1)), "false_positive_rate": ((D1Y0,), (D1Y0, D0Y0))}
# metric -> the rates behind it; the first is the one whose ratio / difference the metric is,
# except for equalized odds, whose figure is the worse of its two
_LINKED = {"selection_rate": ("selection_rate",), "demographic_parity": ("selection_rate",),
           "true_positive_rate": ("true_positive_rate",), "equal_opportunity": ("true_positive_rate",),
           "false_positive_rate": ("false_positive_rate",),
           "equalized_odds": ("true_positive_rate", "false_positive_rate")}


def _comparisons(grouping: Grouping, counts: np.ndarray, favorable: int, included: np.ndarray,
                 reference: int | None, *, labelled: bool, alpha: float, power: float) -> list[dict[str, Any]]:
    """Each included group against the reference group (or the highest rate's group), per compared rate."""
    selected = _selected_table(counts, favorable)
    out = compare_groups(grouping.attribute, grouping.labels, selected[:, 0], counts.sum(axis=1),
                         rate="selection_rate", included=included, reference=reference, alpha=alpha, power=power)
    if labelled:
        for rate, (hits, denominator) in _LABEL_COMPARED.items():
            out += compare_groups(grouping.attribute, grouping.labels, counts[:, list(hits)].sum(axis=1),
                                  counts[:, list(denominator)].sum(axis=1), rate=rate, included=included,
                                  reference=reference, alpha=alpha, power=power)
    return out


def _link(metrics: dict[str, Metric], key: str, attribute: str, records: list[dict[str, Any]]) -> None:
    """Each metric that rests on a tested comparison gets its p-value and its too-small groups
    (``key``: the bracket of the metrics' names, ``attribute`` that of the records)."""
    for prefix, rates in _LINKED.items():
        for kind in ("ratio", "difference"):
            metric = metrics.get(f"{prefix}_{kind}[{key}]")
            if metric is None or metric.value is None:
                continue
            rate = rates[0]
            if len(rates) == 2:  # equalized odds: the worse of the two rates' figures
                first, second = (metrics.get(f"{r}_{kind}[{key}]") for r in rates)
                if first is not None and second is not None and first.value is not None and second.value is not None:
                    worse_second = second.value < first.value if kind == "ratio" else second.value > first.value
                    rate = rates[1] if worse_second else rates[0]
            attach(metric, worst(records, attribute=attribute, rate=rate, kind=kind), records, attribute=attribute,
                   rates=rates)


def _rate_plots(groups_table: list[dict[str, Any]], labelled: bool, level: float, n: int, *,
                only_selection: bool = False) -> list[Plot]:
    """One chart per rate with every group of every attribute, a section per attribute: four
    charts whatever the number of attributes (a chart per rate and attribute made a dozen).
    Each bar names the ratio and difference metrics of its attribute, so the engine can draw
    each section's threshold line."""
    plots = []
    for name in PLOTTED:
        # a multiclass model has a chart section per class and attribute: the selection rates alone
        if (not labelled or only_selection) and name != "selection_rate":
            continue
        rows = [r for r in groups_table if r.get(name) is not None]
        if not rows:
            continue
        words = name.replace("_", " ")
        plots.append(Plot("bar", f"{words[0].upper()}{words[1:]} per group", {
            "labels": [r["group"] for r in rows], "values": [r[name] for r in rows],
            "ci_low": [r.get(f"{name}_ci", [None, None])[0] for r in rows],
            "ci_high": [r.get(f"{name}_ci", [None, None])[1] for r in rows],
            "included": [r["included"] for r in rows], "sections": [_section(r) for r in rows],
            "y_label": words, "rate": name,
            "ratio_metric": [f"{name}_ratio[{_section(r, named=True)}]" for r in rows],
            "difference_metric": [f"{name}_difference[{_section(r, named=True)}]" for r in rows],
            "n": n, "level": level}))
    return plots


def _section(record: dict[str, Any], *, named: bool = False) -> str:
    """A group record's chart section (its attribute, and class for a multiclass model), or with
    ``named`` the bracket of its metrics (the favourable class's carry the attribute alone)."""
    klass = record.get("class")
    if klass is None or (named and record.get("favourable")):
        return str(record["attribute"])
    return metric_key(str(record["attribute"]), str(klass))


_AGGREGATE_SOURCE = {
    "demographic_parity_difference": "selection_rate", "demographic_parity_ratio": "selection_rate",
    "equalized_odds_difference": "true_positive_rate", "equalized_odds_ratio": "true_positive_rate",
    "equal_opportunity_difference": "true_positive_rate", "equal_opportunity_ratio": "true_positive_rate",
    "average_odds_difference": "true_positive_rate", "predictive_parity_difference": "positive_predictive_value",
}


def _aggregates(spreads: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    tpr_ratio, tpr_diff = spreads["true_positive_rate"]
    fpr_ratio, fpr_diff = spreads["false_positive_rate"]
    with np.errstate(invalid="ignore"):
        return {
            "demographic_parity_difference": spreads["selection_rate"][1],
            "demographic_parity_ratio": spreads["selection_rate"][0],
            # fairlearn: the worse of the two (NaN if either is undefined)
            "equalized_odds_difference": np.maximum(tpr_diff, fpr_diff),
            "equalized_odds_ratio": np.minimum(tpr_ratio, fpr_ratio),
            "equal_opportunity_difference": tpr_diff,
            "equal_opportunity_ratio": tpr_ratio,
            "average_odds_difference": (tpr_diff + fpr_diff) / 2,
            "predictive_parity_difference": spreads["positive_predictive_value"][1],
        }


def _add(metrics: dict[str, Metric], disparities: list[dict[str, Any]], grouping: Grouping, bracket: str,
         tag: dict[str, Any], metric_name: str, rate: str, value: float, draws: np.ndarray | None,
         params: GroupFairnessParams, method: str | None, needs_target: bool, per_group: np.ndarray,
         included: np.ndarray, reference: int | None, *, rows: int | None = None) -> None:
    key = f"{metric_name}[{bracket}]"
    n = int(len(grouping.codes)) if rows is None else rows  # rows: the grouping's codes are keys of counts
    if needs_target:
        metrics[key] = Metric(None, n=n, note="needs the target (data.target), which this audit has not")
        return
    if not np.isfinite(value):
        metrics[key] = Metric(None, n=n, note="undefined: fewer than two included groups have this rate "
                                              "(a group with no rows in the denominator has no rate)")
        return
    ci = percentile_interval(draws, params.confidence) if draws is not None else None
    se = bootstrap_se(draws) if ci is not None and draws is not None else None
    metrics[key] = Metric(value, ci=ci, n=n, method=method if ci else None, level=params.confidence if ci else None,
                          se=se)
    masked = np.where(included & np.isfinite(per_group), per_group, np.nan)
    if reference is None and np.isfinite(masked).sum() >= 2:
        low, high = grouping.labels[int(np.nanargmin(masked))], grouping.labels[int(np.nanargmax(masked))]
    elif reference is not None:
        others = masked.copy()
        others[reference] = np.nan
        worst = int(np.nanargmax(np.abs(others - masked[reference]))) if np.isfinite(others).any() else reference
        low, high = (grouping.labels[worst], grouping.labels[reference])
    else:
        low = high = None
    disparities.append({"attribute": grouping.attribute, **tag, "metric": metric_name, "rate": rate, "value": value,
                        **({"value_ci": list(ci)} if ci else {}), "low_group": low, "high_group": high,
                        "reference_group": grouping.labels[reference] if reference is not None else None,
                        "groups_compared": int(included.sum())})


def _selected_table(counts: np.ndarray, favorable: int) -> np.ndarray:
    selected = counts[:, 3:].sum(axis=1) if favorable == 1 else counts[:, :3].sum(axis=1)
    return np.column_stack([selected, counts.sum(axis=1) - selected])


def _test(table: np.ndarray) -> tuple[float, str]:
    from scipy import stats

    if table.shape[0] == 2:
        expected = stats.contingency.expected_freq(table)
        if expected.min() < 5:
            return float(stats.fisher_exact(table).pvalue), "Fisher's exact test"
    chi2 = stats.chi2_contingency(table, correction=False)
    return float(chi2.pvalue), "chi-square test of independence"


def _omnibus(counts: np.ndarray, favorable: int, included: np.ndarray) -> Metric:
    table = _selected_table(counts, favorable)[included]
    if len(table) < 2 or (table.sum(axis=0) == 0).any():
        return Metric(None, note="no test: fewer than two included groups, or every row has the same decision")
    p, how = _test(table)
    return Metric(p, n=int(table.sum()), method=f"{how}, groups x favourable decision")


def _pairwise_p_values(counts: np.ndarray, favorable: int, included: np.ndarray) -> list[float | None]:
    """Each group against the most-selected included group (None for that group itself)."""
    table = _selected_table(counts, favorable)
    rates = np.where(included, table[:, 0] / np.maximum(table.sum(axis=1), 1), -1.0)
    top = int(np.argmax(rates))
    out: list[float | None] = []
    for g in range(len(table)):
        pair = table[[g, top]]
        if g == top or (pair.sum(axis=0) == 0).any() or pair.sum(axis=1).min() == 0:
            out.append(None)
        else:
            out.append(_test(pair)[0])
    return out
