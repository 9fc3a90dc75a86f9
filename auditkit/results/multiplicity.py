"""Group comparisons judged across the whole audit: adjusted p-values, and passes that cannot fail.

An audit compares many groups (each attribute, each rate, each fairness check); at a 5%
level one in twenty equal groups looks different by chance. Each check tests its own
comparisons in its own process (table ``comparisons``, raw two-sided ``p_value``); once
every check has run, :func:`apply_statistics` corrects all of them together (the family is
every comparison of the audit, not of one check) and writes ``p_adjusted`` next to each
raw p-value, in the tables and on the metrics that rest on them. A pass whose figure
rests on a group too small to detect a four-fifths disparity is marked and says so.

Pure: results in, results out; nothing is read or written.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Final, Literal, Sequence

import numpy as np

from auditkit.results.model import CheckResult, Metric

Correction = Literal["holm", "bh", "none"]
COMPARISONS_TABLE: Final = "comparisons"
CORRECTION_NAMES: Final = {"holm": "Holm's step-down (family-wise error rate)",
                           "bh": "Benjamini-Hochberg (false discovery rate)", "none": "no correction"}
# "class": a multiclass model's comparisons repeat attribute, rate and groups once per class
_KEY: Final = ("attribute", "rate", "group", "reference_group", "class")


def adjust_p_values(p_values: Sequence[float], method: Correction) -> list[float]:
    """``p_values`` adjusted for their number, in their order (as statsmodels' ``multipletests``).

    holm: the i-th smallest of m becomes max over j <= i of min(1, (m - j + 1) p_(j)) (Holm
    1979). bh: the i-th smallest becomes min over j >= i of min(1, m p_(j) / j) (Benjamini and
    Hochberg 1995). none: unchanged.

    >>> adjust_p_values([0.01, 0.04, 0.03], "holm")
    [0.03, 0.06, 0.06]
    >>> [round(p, 6) for p in adjust_p_values([0.01, 0.04, 0.03], "bh")]
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0 or method == "none":
        return [float(v) for v in p]
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        stepped = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        stepped = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}; expected holm, bh or none")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(v) for v in adjusted]


def _in_family(result: CheckResult) -> bool:
    return result.status not in ("error", "skipped") and COMPARISONS_TABLE in result.tables


def apply_statistics(results: Sequence[CheckResult], *, correction: Correction, alpha: float,
                     power: float) -> tuple[list[CheckResult], dict[str, Any]]:
    """Every check's comparisons corrected together; returns new results and the audit's summary.

    Each record of a table ``comparisons`` with a raw ``p_value`` is one member of the family;
    it gets ``p_adjusted``, and so does every metric whose ``comparison`` names it, with the
    ``correction`` and the ``family_size``. A passing finding on a metric with underpowered
    groups gets ``underpowered: true`` and a sentence naming them.
    """
    out = [replace(r, tables=copy.deepcopy(r.tables), metrics=copy.deepcopy(r.metrics),
                   findings=copy.deepcopy(r.findings), notes=list(r.notes)) for r in results]
    members: list[tuple[int, int]] = []  # (check index, record index) of each tested comparison
    for c, result in enumerate(out):
        if _in_family(result):
            members += [(c, i) for i, record in enumerate(result.tables[COMPARISONS_TABLE])
                        if isinstance(record, dict) and record.get("p_value") is not None]
    adjusted = adjust_p_values([out[c].tables[COMPARISONS_TABLE][i]["p_value"] for c, i in members], correction)
    size = len(members)
    by_check: dict[int, dict[tuple[Any, ...], float]] = {}
    for (c, i), p_adj in zip(members, adjusted):
        table = out[c].tables[COMPARISONS_TABLE]
        table[i] = _with_adjusted(table[i], p_adj)
        by_check.setdefault(c, {})[tuple(table[i].get(k) for k in _KEY)] = p_adj
    significant = sum(p <= alpha for p in adjusted)
    for c, result in enumerate(out):
        if not _in_family(result):
            continue
        for record in result.tables[COMPARISONS_TABLE]:  # untested ones (no p-value) say so in the same column
            if isinstance(record, dict) and "p_value" in record and "p_adjusted" not in record:
                record.update(_with_adjusted(record, None))
        lookup = by_check.get(c, {})
        for metric in result.metrics.values():
            if metric.comparison is not None:
                metric.p_adjusted = lookup.get(tuple(metric.comparison.get(k) for k in _KEY))
                metric.correction, metric.family_size = correction, size
        _mark_weak_passes(result, alpha=alpha, power=power)
        result.notes.append(
            f"p_adjusted: {CORRECTION_NAMES[correction]} across the {size:,} group comparisons of this audit "
            f"(every fairness check's table comparisons together); {significant:,} significant at alpha {alpha:g} "
            "after correction. The minimum detectable ratio is stated at that alpha before correction, "
            f"with {power:.0%} power.")
    summary = {"multiple_comparisons": correction, "alpha": alpha, "power": power, "family_size": size,
               "significant": significant,
               "checks": [out[c].id for c in sorted({c for c, _ in members})]}
    return out, summary


def _with_adjusted(record: dict[str, Any], p_adjusted: float | None) -> dict[str, Any]:
    """The record with ``p_adjusted`` right after ``p_value``, so a table reads them side by side."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "p_adjusted":
            continue
        out[key] = value
        if key == "p_value":
            out["p_adjusted"] = p_adjusted
    return out


def _mark_weak_passes(result: CheckResult, *, alpha: float, power: float) -> None:
    for finding in result.findings:
        metric: Metric | None = result.metrics.get(finding.metric)
        if finding.status != "pass" or metric is None or not metric.underpowered:
            continue
        finding.underpowered = True
        groups = "; ".join(
            f"'{g['group']}' (n = {g['n']:,}) against '{g['reference_group']}' (n = {g['reference_n']:,}) "
            + (f"only at a ratio of {g['min_detectable_ratio']:.3f} or lower" if g["min_detectable_ratio"] is not None
               else "at no ratio at all")
            for g in metric.underpowered)
        finding.reading = (f"Passes, but on groups too small to show a four-fifths disparity: with {power:.0%} "
                           f"power at alpha {alpha:g} the test detects {groups}.")
