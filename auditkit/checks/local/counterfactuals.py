"""``counterfactuals``: for each unfavourable decision, the nearest actionable change that flips it.

The search, its constraints and the comparison between groups live in
:mod:`auditkit.methods.recourse`; this module holds the params, the check and its reading.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.params import IntervalParams, RowSelectionParams
from auditkit.core.registry import check
from auditkit.engine.context import AuditContext, AuditData
from auditkit.errors import CheckError, did_you_mean
from auditkit.methods.probes import is_numeric
from auditkit.methods.recourse.burden import GroupRecourse, compare_groups, mean_or_none, median_or_none
from auditkit.methods.recourse.constraints import Space, favourable_score, immutable_features, is_favourable
from auditkit.methods.recourse.search import Recourse, SearchSettings, search
from auditkit.methods.rows import select_positions, validate_selection
from auditkit.methods.sensitive import EXCLUDE_DESCRIPTION, ExcludeFromReasons, excluded_features, validate_excluded
from auditkit.methods.stats import level_text
from auditkit.results.model import CheckOutput, Metric, Plot

Direction = Literal["increase", "decrease"]
METRICS = ["recourse_rate", "mean_changed_features", "median_changed_features", "mean_distance"]
PER_ATTRIBUTE = ["recourse_rate_ratio", "recourse_burden_ratio"]


class CounterfactualsParams(RowSelectionParams, IntervalParams):  # rows / query / sample; bootstrap / confidence
    sample: int = Field(100, ge=1, le=5_000, description="How many rows: the size of the seeded sample of rows with "
                                                         "the unfavourable decision when neither rows nor query is "
                                                         "given, and the most rows taken from a query's result (a "
                                                         "seeded sample). Rows (given, or from a query) with the "
                                                         "favourable decision already are not explained.")
    immutable: Optional[list[str]] = Field(
        None, description="Columns the search never changes, on top of the protected attributes (always immutable). "
                          "Default: every feature whose name says age or birth (age, age_band, date_of_birth, ...); "
                          "a list given here replaces that default.")
    directions: dict[str, Direction] = Field(
        default_factory=dict, description="Numeric features that may only increase or only decrease, "
                                          "e.g. {income: increase, credit_history_years: increase}.")
    sparsity: float = Field(1.0, ge=0, description="Cost of each changed feature, in distance units, when choosing "
                                                   "a row's counterfactual: the one reported minimises distance + "
                                                   "sparsity x changed features (0: nearest; 1000: fewest features "
                                                   "first).")
    seeds: int = Field(20, ge=0, le=500, description="Nearest observed rows with the favourable decision (moved "
                                                     "into the constraints) tried as starting points, per row.")
    candidates: int = Field(100, ge=10, le=5_000, description="Growing-spheres candidates per row and round.")
    max_rounds: int = Field(20, ge=1, le=60, description="Growing-spheres rounds (radius x1.5 each, from 0.1).")
    min_group_size: int = Field(5, ge=1, description="Groups with fewer explained rows are listed but left out of "
                                                     "the ratios.")
    bootstrap: int = Field(1000, ge=0, le=20_000, description="Resamples (within each group) behind the intervals of "
                                                              "the ratios between groups; 0 for none.")
    bins: dict[str, list[float]] = Field(default_factory=dict, description="Bin edges for continuous protected "
                                                                           "attributes.")
    exclude_from_reasons: ExcludeFromReasons = Field(False, description=EXCLUDE_DESCRIPTION)


def immutables(params: CounterfactualsParams, data: AuditData) -> dict[str, str]:
    """Model inputs the search keeps, and why: params.immutable (or its default), the protected
    attributes, and the features excluded from reasons (a proxy is not recourse either)."""
    reasons = immutable_features(params.immutable, data)
    for name, why in excluded_features(params.exclude_from_reasons, data).items():
        if name in data.features:
            reasons.setdefault(name, f"exclude_from_reasons: {why}")
    return reasons


def validate(params: CounterfactualsParams, data: AuditData) -> None:
    """Params that do not fit the data: raised before anything runs (exit 2 with the policy's line)."""
    columns = [str(c) for c in data.frame.columns]
    for name in params.immutable or []:
        if name not in data.frame.columns:
            raise CheckError(f"params.immutable: '{name}' is not a column of the data; {did_you_mean(name, columns)}")
    validate_excluded(params.exclude_from_reasons, data)
    immutable = immutables(params, data)
    for name in params.directions:
        if name not in data.features:
            raise CheckError(f"params.directions: '{name}' is not a model feature; "
                             f"{did_you_mean(name, data.features)}")
        if not is_numeric(data.frame[name]):
            raise CheckError(f"params.directions: '{name}' is categorical; a direction applies to numeric features "
                             f"only (a categorical feature may change to any observed category unless immutable)")
        if name in immutable:
            hint = ("; give params.immutable explicitly, without it, to let it change"
                    if immutable[name].startswith("default") else "")
            raise CheckError(f"params.directions: '{name}' is immutable ({immutable[name]}), so it has no "
                             f"direction{hint}")
    validate_selection(params, data)


def _produces(params: CounterfactualsParams, policy: Any) -> list[str]:
    attributes = list(getattr(policy.data, "protected", []) or [])
    return METRICS + PER_ATTRIBUTE + [f"{m}[{a}]" for m in PER_ATTRIBUTE for a in attributes]


# ---------------------------------------------------------------------------- shaping the result


def _explained_rows(ctx: AuditContext, params: CounterfactualsParams) -> tuple[np.ndarray, str | None]:
    """Positions of the rows to explain (the selected rows with the unfavourable decision), and a note."""
    data = ctx.data
    unfavourable = ~is_favourable(data, data.decisions)
    positions = select_positions(data, params, ctx.rng, among=unfavourable)
    if params.rows is None and params.query is None:
        total = int(unfavourable.sum())
        if total > params.sample:
            return positions, (f"a seeded sample of {params.sample:,} of the {total:,} rows with the unfavourable "
                               f"decision")
        return positions, f"every row with the unfavourable decision ({total:,})"
    kept = positions[unfavourable[positions]]
    if len(kept) == len(positions):
        return kept, None
    return kept, (f"{len(positions) - len(kept):,} of the {len(positions):,} selected rows have the favourable "
                  f"decision already and are not explained")


def _records(data: AuditData, positions: np.ndarray, X: pd.DataFrame, space: Space,
             found: Recourse) -> list[dict[str, Any]]:
    """Table ``counterfactuals``: a record per explained row (``X``), its changes ``{feature: [from, to]}``."""
    records: list[dict[str, Any]] = []
    for i, position in enumerate(positions):
        record: dict[str, Any] = {"row": int(data.frame.index[position]), "found": bool(found.found[i]),
                                  "score_before": favourable_score(data, position),
                                  "score_after": float(found.scores_after[i]) if found.found[i] else None,
                                  "changes": {}, "n_changed": None, "distance": None}
        if found.found[i]:
            original = X.iloc[i]
            for j, after in found.changes(space, i).items():
                before = original[space.features[j]]
                record["changes"][space.features[j]] = [before.item() if hasattr(before, "item") else before, after]
            record["n_changed"] = int(found.n_changed[i])
            record["distance"] = float(found.distance[i])
        records.append(record)
    return records


def _overall(found: Recourse) -> dict[str, Metric]:
    n, hits = len(found.found), int(found.found.sum())
    changed = found.n_changed[found.found].astype(np.float64)
    distance = found.distance[found.found]
    none_found = "no counterfactual found" if n else "no row with the unfavourable decision to explain"
    return {
        "recourse_rate": Metric(float(found.found.mean()) if n else None, n=n,
                                note=None if n else "no row with the unfavourable decision to explain"),
        "mean_changed_features": Metric(mean_or_none(changed), n=hits, note=None if hits else none_found),
        "median_changed_features": Metric(median_or_none(changed), n=hits, note=None if hits else none_found),
        "mean_distance": Metric(mean_or_none(distance), n=hits,
                                note="L1 in MADs + 1 per changed category" if hits else none_found),
    }


def _ratio_metrics(attribute: str, compared: GroupRecourse, found: Recourse,
                   params: CounterfactualsParams) -> dict[str, Metric]:
    method = (f"stratified bootstrap within groups, {params.bootstrap} resamples, "
              f"{level_text(params.confidence)} percentile")
    out: dict[str, Metric] = {}
    for name, ratio, n in (("recourse_rate_ratio", compared.rate_ratio, len(found.found)),
                           ("recourse_burden_ratio", compared.burden_ratio, int(found.found.sum()))):
        out[f"{name}[{attribute}]"] = Metric(ratio.value, n=n, note=ratio.note, ci=ratio.ci,
                                             method=method if ratio.ci is not None else None,
                                             level=params.confidence if ratio.ci is not None else None)
    return out


def _plots(space: Space, found: Recourse, burden_plots: list[Plot]) -> list[Plot]:
    """Distance of each counterfactual, features changed, then recourse burden per group."""
    hits = int(found.found.sum())
    if not hits:
        return burden_plots
    share = found.changed_share(space)
    order = [j for j in np.argsort(-share, kind="stable") if space.mutable[:, j].any()]
    counts, edges = np.histogram(found.distance[found.found], bins=min(20, max(5, hits // 5)))
    return [Plot("hist", "Distance of each counterfactual", {
                "edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
                "x_label": "distance (MADs of change + changed categories)", "y_label": "rows", "n": hits}),
            Plot("bar", "Features changed by the counterfactuals (share of rows with one)", {
                "labels": [space.features[j] for j in order], "values": [float(share[j]) for j in order],
                "y_label": "share of counterfactuals", "horizontal": True, "n": hits}),
            *burden_plots]


def _burden_plot(groups: list[dict[str, Any]], n: int, min_group_size: int) -> Plot | None:
    """Mean distance of the counterfactual per group, one section per protected attribute (one
    chart, not one per attribute); none when no attribute has two groups large enough to compare."""
    rows = [g for g in groups if g.get("mean_distance") is not None]
    large = [g["attribute"] for g in rows if g["n"] >= min_group_size]
    if not any(large.count(attribute) >= 2 for attribute in set(large)):
        return None
    return Plot("bar", "Recourse burden per group: mean distance of the counterfactual", {
        "labels": [g["group"] for g in rows], "values": [g["mean_distance"] for g in rows],
        "sections": [g["attribute"] for g in rows], "included": [g["n"] >= min_group_size for g in rows],
        "y_label": "mean distance (MADs + categories)", "n": n})


def _search_notes(space: Space, found: Recourse, reasons: dict[str, str], params: CounterfactualsParams,
                  queries: int) -> list[str]:
    notes = ["immutable: " + (", ".join(f"{f} ({why})" for f, why in reasons.items()) or "none")
             + "; directions: " + (", ".join(f"{f} {d}" for f, d in params.directions.items()) or "none")]
    n = len(found.found)
    if not n:
        return notes
    mutable = [f for j, f in enumerate(space.features) if space.mutable[:, j].any()]
    notes.append(f"mutable features: {', '.join(mutable) or 'none'}; scales (MAD): "
                 + ", ".join(f"{f} {space.scale[j]:.4g}" for j, f in enumerate(space.features) if space.numeric[j]))
    missing_fixed = int((np.isnan(space.X0) & ~space.fixed).any(axis=1).sum())
    if missing_fixed:
        notes.append(f"{missing_fixed} explained row(s) have a missing feature; it stays missing")
    notes.append(f"{n - int(found.found.sum())} of {n} rows without a counterfactual; {found.rounds} growing-spheres "
                 f"round(s); {queries:,} model rows predicted ({queries / n:,.0f} per explained row)")
    return notes


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    """One plain-language sentence for a failing or warning figure."""
    metric, value = finding["metric"], finding.get("value")
    if value is None:
        return None
    # the figure itself, with its interval (a finding `on` a bound carries the bound as value)
    figure = (result.get("metrics", {}).get(metric) or {})
    ci = figure.get("ci")
    if figure.get("value") is not None:
        value = figure["value"]
    level = level_text(figure.get("level") or 0.95)  # results written before the level was recorded: 95%
    interval = f", {level} CI {ci[0]:.2f}-{ci[1]:.2f}" if isinstance(ci, (list, tuple)) and len(ci) == 2 else ""
    if metric == "recourse_rate":
        return (f"For {1 - value:.0%} of the explained unfavourable decisions, no change of the mutable features "
                f"within the observed ranges turns the decision around.")
    if "[" not in metric:
        return None
    name, attribute = metric[:-1].split("[", 1)
    smallest = result.get("params", {}).get("min_group_size", 1)
    groups = [g for g in result.get("tables", {}).get("groups", [])
              if g.get("attribute") == attribute and (g.get("n") or 0) >= smallest]
    key = {"recourse_rate_ratio": "recourse_rate", "recourse_burden_ratio": "mean_distance"}.get(name)
    ranked = sorted((g for g in groups if g.get(key) is not None), key=lambda g: g[key]) if key else []
    if name == "recourse_rate_ratio" and len(ranked) >= 2:
        low, high = ranked[0], ranked[-1]
        return (f"Declined applicants in group '{low['group']}' of {attribute} can change the decision in "
                f"{low['recourse_rate']:.0%} of cases, against {high['recourse_rate']:.0%} in group "
                f"'{high['group']}' (ratio {value:.2f}{interval}).")
    if name == "recourse_burden_ratio" and len(ranked) >= 2:
        low, high = ranked[0], ranked[-1]
        return (f"To turn the decision around, group '{high['group']}' of {attribute} needs a change of "
                f"{high['mean_distance']:.2f} on average (distance in MADs plus changed categories), group "
                f"'{low['group']}' {low['mean_distance']:.2f} (ratio {value:.2f}{interval}): recourse costs some groups more.")
    return None


# ---------------------------------------------------------------------------- the check


CAVEATS = (
    'A counterfactual is one actionable change the search found, not the only or the cheapest possible one; its cost is measured in MADs of change, which may not match the effort the change costs a person.',
)


@check("counterfactuals", probes_inputs=True, caveats=CAVEATS, family="local", params=CounterfactualsParams, needs_model=True,
       case_file=(("recourse", "counterfactuals"),),
       metrics=METRICS + [f"{m}[*]" for m in PER_ATTRIBUTE], produces=_produces, validate=validate, reading=_reading,
       example={"params": {"sample": 20, "directions": {"income": "increase"}},
                "thresholds": {"recourse_rate": {"min": 0.9}, "recourse_burden_ratio": {"min": 0.5, "severity": "warn"}}})
def counterfactuals(ctx: AuditContext, params: CounterfactualsParams) -> CheckOutput:
    """For each row with the unfavourable decision, the nearest actionable change that flips it.

    Rows: ``params.rows`` or ``params.query`` (those of them with the unfavourable decision;
    at most ``params.sample`` from a query, a seeded sample), else a seeded sample of
    ``params.sample`` rows with the unfavourable decision.
    Constraints: protected attributes never change, nor ``params.immutable`` (default: every
    feature named like an age: ``age``, ``age_band``, ``date_of_birth``), nor the features of
    ``params.exclude_from_reasons`` (true: data.proxies too); a missing value stays
    missing; ``params.directions`` lets a numeric feature only increase or only decrease;
    numeric values stay within the observed minimum and maximum and on the data's resolution
    (integer columns stay integers, a ratio written with 3 decimals keeps 3); a categorical
    feature may take any observed category. Distance of a change from row x to x':
    :math:`d = \\sum_{numeric} |x'_j - x_j| / MAD_j + \\#\\{categorical\\ j: x'_j \\ne x_j\\}`,
    MAD_j the median absolute deviation of feature j over the audit rows (its mean absolute
    deviation when the MAD is 0), so one MAD of change costs as much as one changed category.
    A row's counterfactual minimises :math:`d + \\lambda \\cdot n_{changed}` with
    :math:`\\lambda` = ``params.sparsity`` (sparse changes are preferred).
    Search (model-agnostic, all candidates of all rows predicted in batches): every feature
    alone over its observed values and categories, bisected to the boundary; the nearest
    observed rows with the favourable decision, moved into the constraints; growing spheres
    of random sparse changes in the scaled L1 norm; then greedy sparsification (features put
    back while the decision holds) and bisection of the changes towards the row. Every
    counterfactual reported is predicted again and checked against every constraint; one that
    fails is reported as not found. The search gives an upper bound on the nearest change.

    Metrics: ``recourse_rate`` = share of explained rows with a counterfactual, in [0, 1],
    higher = more recourse; ``mean_changed_features`` / ``median_changed_features`` and
    ``mean_distance`` (d above) over the rows with one, lower = easier recourse. By protected
    attribute (groups of at least ``params.min_group_size`` explained rows):
    ``recourse_rate_ratio[attribute]`` = lowest group recourse rate / highest, and
    ``recourse_burden_ratio[attribute]`` = smallest group mean distance / largest; both in
    [0, 1], 1 = every group equal, lower = recourse rarer or costlier for some group (a group
    without any counterfactual counts in the rate ratio only). Both carry a percentile
    bootstrap interval at level ``params.confidence`` (``params.bootstrap`` resamples of the
    explained rows within each group; the search is not re-run): with small groups the
    interval is wide, and a threshold with ``on: upper`` flags only a gap the sample supports.
    Table ``counterfactuals``: ``row``, ``found``, ``score_before``, ``score_after``,
    ``changes`` (``{feature: [from, to]}``), ``n_changed``, ``distance``; table ``groups``:
    ``attribute``, ``group``, ``n``, ``recourse_rate``, ``mean_distance``, ``median_changed``.

    References: Wachter, Mittelstadt and Russell (2017), Counterfactual explanations without
    opening the black box; Laugel et al. (2018), Comparison-based inverse classification for
    interpretability in machine learning (growing spheres); Ustun, Spangher and Liu (2019),
    Actionable recourse in linear classification; Mothilal, Sharma and Tan (2020), Explaining
    machine learning classifiers through diverse counterfactual explanations (DiCE).
    """
    data = ctx.data
    if data.task == "regression":
        return CheckOutput.skip("counterfactuals look for the smallest change that turns an unfavourable decision into "
                                "a favourable one; a regressor makes no decision (it predicts a number in the "
                                "target's units), so there is no recourse to measure")
    if data.task == "multiclass" and data.favorable_class is None:
        return CheckOutput.skip("counterfactuals look for the smallest change that gives a row the favourable "
                                "decision; for a multiclass model name that class with data.favorable_label")
    if data.decisions is None:
        return CheckOutput.skip("no decisions: the model has no threshold")
    validate(params, data)
    positions, rows_note = _explained_rows(ctx, params)
    notes = [rows_note] if rows_note else []
    reasons = immutables(params, data)
    extra = [c for c in (params.immutable or []) if c not in data.features]
    if extra:
        notes.append(f"immutable columns that are not model inputs (nothing to keep): {', '.join(extra)}")

    X = data.frame.iloc[positions][data.features]
    space = Space(data, ctx.model, X, set(reasons), dict(params.directions))
    start = ctx.model.rows_predicted
    settings = SearchSettings(sparsity=params.sparsity, seeds=params.seeds, candidates=params.candidates,
                              max_rounds=params.max_rounds)
    found = search(space, data, ctx.rng, settings)
    queries = ctx.model.rows_predicted - start
    if found.broken:
        notes.append(f"{found.broken} counterfactual(s) did not hold when predicted again and are reported as not "
                     f"found")

    metrics = _overall(found)
    groups: list[dict[str, Any]] = []
    explained = data.frame.iloc[positions]
    for attribute in data.protected:
        if not len(positions):
            metrics.update({f"{name}[{attribute}]": Metric(None, n=0, note="no row explained")
                            for name in PER_ATTRIBUTE})
            continue
        compared = compare_groups(explained, attribute, params.bins, found.found, found.distance, found.n_changed,
                                  min_group_size=params.min_group_size, rng=ctx.rng, bootstrap=params.bootstrap,
                                  confidence=params.confidence)
        groups.extend(compared.groups)
        metrics.update(_ratio_metrics(attribute, compared, found, params))

    burden = _burden_plot(groups, len(positions), params.min_group_size)
    burden_plots: list[Plot] = [burden] if burden is not None else []
    notes.extend(_search_notes(space, found, reasons, params, queries))
    tables = {"counterfactuals": _records(data, positions, X, space, found), **({"groups": groups} if groups else {})}
    return CheckOutput(metrics=metrics, tables=tables, plots=_plots(space, found, burden_plots), notes=notes)
