"""The table ``comparisons`` that fairness checks write: each group against the reference group.

One record per attribute, rate and compared group: the two groups' counts and rates, the
test and its raw two-sided p-value, and what the test can detect (the minimum detectable
ratio at the policy's alpha and power). After every check has run, the engine adds
``p_adjusted`` to each record, corrected across every comparison of the audit
(``results.multiplicity``). A metric that rests on one of them names it
(:func:`attach`), so its p-values and its too-small groups travel with the figure.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from auditkit.methods.proportions import DETECTABLE_RATIO, compare_proportions, min_detectable_ratio, underpowered
from auditkit.results.model import Metric

# what a metric's ``method`` says of its p-value; each record's ``test`` says which one ran
TEST_METHOD = ("p-value: two-sided two-proportion z test (Fisher's exact test where an expected count is under 5), "
               "worst group against the reference group")
RATE_WORDS = {"selection_rate": "selection rate", "true_positive_rate": "true positive rate",
              "false_positive_rate": "false positive rate", "scoring_rate": "scoring rate"}


def compare_groups(attribute: str, labels: Sequence[str], hits: npt.NDArray[np.float64],
                   sizes: npt.NDArray[np.float64], *, rate: str, included: npt.NDArray[np.bool_],
                   reference: int | None, alpha: float, power: float) -> list[dict[str, Any]]:
    """Each included group with a non-empty denominator against the reference group.

    ``hits / sizes`` is each group's rate (``sizes`` its denominator: the group's rows for a
    selection rate, its positives for a true positive rate). The reference is ``reference``
    when given, else the included group with the highest rate (the first on a tie), which is
    the denominator of a smallest-over-largest ratio.
    """
    eligible = included & (sizes > 0)
    if eligible.sum() < 2:
        return []
    rates = np.where(eligible, hits / np.where(sizes > 0, sizes, 1.0), -np.inf)
    if reference is None:
        reference = int(np.argmax(rates))
    elif not eligible[reference]:
        return []
    x0, n0 = int(hits[reference]), int(sizes[reference])
    p0 = x0 / n0
    records = []
    for g in np.flatnonzero(eligible):
        if g == reference:
            continue
        x, n = int(hits[g]), int(sizes[g])
        p_value, test = compare_proportions(x, n, x0, n0)
        detectable = min_detectable_ratio(n, n0, p0, alpha=alpha, power=power)
        records.append({"attribute": attribute, "rate": rate, "group": labels[g],
                        "reference_group": labels[reference], "n": n, "reference_n": n0,
                        "group_rate": x / n, "reference_rate": p0,
                        "ratio": (x / n) / p0 if p0 > 0 else None, "difference": x / n - p0,
                        "test": test, "p_value": p_value, "min_detectable_ratio": detectable,
                        "underpowered": underpowered(detectable)})
    return records


def worst(records: Iterable[dict[str, Any]], *, attribute: str, rate: str, kind: str) -> dict[str, Any] | None:
    """The comparison behind ``<rate>_<kind>[attribute]``: the smallest ratio, or the largest
    absolute difference, from the reference group (the first on a tie, as ``numpy.argmin``)."""
    candidates = [r for r in records if r["attribute"] == attribute and r["rate"] == rate]
    if kind == "ratio":
        candidates = [r for r in candidates if r["ratio"] is not None]
        return min(candidates, key=lambda r: r["ratio"]) if candidates else None
    return max(candidates, key=lambda r: abs(r["difference"])) if candidates else None


def attach(metric: Metric, record: dict[str, Any] | None, records: Iterable[dict[str, Any]], *, attribute: str,
           rates: Sequence[str]) -> None:
    """Give a metric its comparison's raw p-value and the groups of ``rates`` too small to test."""
    if metric.value is None:
        return
    if record is not None and record["p_value"] is not None:
        metric.p_value = record["p_value"]
        metric.comparison = {key: record[key] for key in ("attribute", "rate", "group", "reference_group", "class")
                             if key in record}
        metric.method = f"{metric.method}; {TEST_METHOD}" if metric.method else TEST_METHOD
    metric.underpowered = [
        {key: r[key] for key in ("group", "rate", "n", "reference_group", "reference_n", "min_detectable_ratio")}
        for r in records if r["attribute"] == attribute and r["rate"] in rates and r["underpowered"]]


def power_notes(records: Iterable[dict[str, Any]], *, alpha: float, power: float) -> list[str]:
    """One note per attribute and rate naming the groups too small to detect a four-fifths disparity."""
    by_key: dict[tuple[str, str, Any], list[dict[str, Any]]] = {}
    for record in records:
        if record["underpowered"]:
            by_key.setdefault((record["attribute"], record["rate"], record.get("class")), []).append(record)
    notes = []
    for (attribute, rate, klass), small in by_key.items():
        groups = "; ".join(
            f"'{r['group']}' (n = {r['n']:,}): "
            + (f"only a ratio of {r['min_detectable_ratio']:.3f} or lower" if r["min_detectable_ratio"] is not None
               else "no ratio at all")
            for r in small)
        where = f"{attribute}, class '{klass}'" if klass is not None else attribute  # a multiclass model's class
        notes.append(f"{where}, {RATE_WORDS.get(rate, rate)}: too small to detect a {DETECTABLE_RATIO:g} ratio "
                     f"against '{small[0]['reference_group']}' (n = {small[0]['reference_n']:,}) with "
                     f"{power:.0%} power at alpha {alpha:g} — {groups}. A pass on these groups is weak evidence.")
    return notes
