"""The report's "Limitations and assumptions", generated from results.json and the registry.

What a reader must weigh before relying on the figures: which figures rest on samples and
how large, which checks did not run and why, which groups were too small to compare, the
caveats of each method used (declared once per check type in the registry), the number of
group comparisons judged one by one, and what the policy did not test at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from auditkit.core.registry import get_registry
from auditkit.render.format import checks_of, format_number, skip_reason

_SAMPLE_NOTE: Final = re.compile(r"\b(sample|sampled|background|resamples)\b", re.I)
_FAIRNESS_TYPES: Final = ("group_fairness", "impact_ratio")


@dataclass(frozen=True)
class Limitation:
    title: str
    items: list[str] = field(default_factory=list)
    intro: str = ""


def limitations(results: dict[str, Any]) -> list[Limitation]:
    """The limitations that apply to this audit, each a titled list of plain sentences."""
    checks = checks_of(results)
    parts = [_sampled(checks, results), _not_run(checks), _small_groups(checks), _underpowered(checks),
             _multiple_comparisons(checks, results), _data_notes(results), _caveats(checks, results),
             _untested(checks, results)]
    return [part for part in parts if part.items]


def _sampled(checks: list[dict[str, Any]], results: dict[str, Any]) -> Limitation:
    data = (results.get("inputs") or {}).get("data") or {}
    items = []
    if data.get("sample") or data.get("query"):
        how = []
        if data.get("query"):
            how.append(f"the rows selected by data.query ({data['query']})")
        if data.get("sample"):
            how.append(f"a seeded sample of at most {format_number(data['sample'])} rows (data.sample)")
        items.append(f"The whole audit used {' then '.join(how)}: {format_number(data.get('rows_used'))} of "
                     f"{format_number(data.get('rows'))} rows.")
    for check in checks:
        if check.get("status") in ("skipped", "error"):
            continue
        notes = [str(n) for n in check.get("notes") or [] if _SAMPLE_NOTE.search(str(n))]
        if notes:
            items.append(f"{check.get('id')}: {'; '.join(notes)}.")
    return Limitation("Figures estimated on samples", items,
                      "These figures are estimates: another seed would give slightly different values "
                      "(within their intervals, where one is shown). The seed makes them reproducible.")


def _not_run(checks: list[dict[str, Any]]) -> Limitation:
    items = []
    for check in checks:
        if check.get("status") == "skipped":
            items.append(f"{check.get('id')} ({check.get('type')}) did not run: {skip_reason(check).rstrip('.')}.")
        elif check.get("status") == "error":
            error = str(check.get("error") or "no reason recorded").strip().splitlines()[0]
            items.append(f"{check.get('id')} ({check.get('type')}) could not complete: {error}")
    return Limitation("Checks that did not run or complete", items,
                      "What these checks test is not known from this audit.")


def _small_groups(checks: list[dict[str, Any]]) -> Limitation:
    items = []
    for check in checks:
        tables = check.get("tables") or {}
        params = check.get("params") or {}
        smallest = params.get("min_group_size")
        for row in tables.get("groups") or []:
            if not isinstance(row, dict):
                continue
            left_out = row.get("included") is False or (
                check.get("type") == "counterfactuals" and smallest and (row.get("n") or 0) < smallest)
            if left_out:
                items.append(f"{check.get('id')}: group '{row.get('group')}' of {row.get('attribute')} has "
                             f"{format_number(row.get('n'))} rows, fewer than min_group_size {smallest}: "
                             f"listed but not compared.")
        for row in tables.get("categories") or []:
            if isinstance(row, dict) and row.get("excluded"):
                items.append(f"{check.get('id')}: category '{row.get('category')}' of {row.get('attribute')} "
                             f"({format_number(row.get('n'))} people) is excluded from the impact ratios.")
    return Limitation("Groups too small to compare", items)


def _underpowered(checks: list[dict[str, Any]]) -> Limitation:
    """Groups too small to detect a four-fifths disparity from their reference group: the
    records of table ``comparisons`` marked ``underpowered`` (one item per check, attribute
    and rate), or group rows marked so by a check that records it there."""
    items = []
    for check in checks:
        if check.get("status") in ("skipped", "error"):
            continue
        tables = check.get("tables") or {}
        by_key: dict[tuple[str, str, str, Any], list[dict[str, Any]]] = {}
        for row in tables.get("comparisons") or []:
            if isinstance(row, dict) and row.get("underpowered"):
                key = (str(row.get("attribute")), str(row.get("rate")).replace("_", " "), str(row.get("reference_group")),
                       row.get("reference_n"))
                by_key.setdefault(key, []).append(row)
        for (attribute, rate, reference, reference_n), rows in by_key.items():
            groups = "; ".join(
                f"'{r.get('group')}' ({format_number(r.get('n'))} rows"
                + (f", only a ratio of {format_number(r['min_detectable_ratio'])} or lower"
                   if r.get("min_detectable_ratio") is not None else ", no ratio at all") + ")"
                for r in rows)
            items.append(f"{check.get('id')}: {attribute}, {rate} against '{reference}' "
                         f"({format_number(reference_n)} rows): too small to detect a four-fifths (0.8) disparity "
                         f"at the policy's power — {groups}. A pass for these groups is weak evidence.")
        for row in tables.get("groups") or []:
            if isinstance(row, dict) and row.get("underpowered"):
                detectable = row.get("min_detectable_ratio")
                what = (f"; the smallest ratio it could detect is {format_number(detectable)}"
                        if detectable is not None else "")
                items.append(f"{check.get('id')}: group '{row.get('group')}' of {row.get('attribute')} "
                             f"({format_number(row.get('n'))} rows) is too small to detect a disparity at the "
                             f"policy's power{what}: a pass for it is weak evidence.")
    return Limitation("Comparisons with little power", items)


def _multiple_comparisons(checks: list[dict[str, Any]], results: dict[str, Any]) -> Limitation:
    comparisons = 0
    for check in checks:
        if check.get("type") not in _FAIRNESS_TYPES or check.get("status") in ("skipped", "error"):
            continue
        comparisons += len((check.get("tables") or {}).get("disparities") or [])
        comparisons += sum(1 for r in (check.get("tables") or {}).get("categories") or []
                           if isinstance(r, dict) and not r.get("excluded"))
    if comparisons < 2:
        return Limitation("Multiple comparisons")
    statistics = results.get("statistics") if isinstance(results.get("statistics"), dict) else {}
    correction = statistics.get("multiple_comparisons")
    if isinstance(statistics.get("family_size"), int) and statistics["family_size"] >= 1:
        # the engine tested each group against its reference group and corrected them together
        size, alpha = statistics["family_size"], statistics.get("alpha", 0.05)
        how = {"holm": "Holm's correction (family-wise error rate)",
               "bh": "the Benjamini-Hochberg correction (false discovery rate)"}.get(str(correction))
        said = (f"The fairness checks test {format_number(size)} group comparisons (each group against its "
                "reference group, tables comparisons). "
                + (f"Their p-values are adjusted together, across every fairness check, by {how}: "
                   f"{format_number(statistics.get('significant', 0))} stay significant at alpha {alpha:g} "
                   "(adj. p in the tables)." if how else
                   f"Their p-values are not corrected for multiplicity: at alpha {alpha:g} about one in "
                   f"{round(1 / alpha):d} equal groups looks different by chance.")
                + " The thresholds themselves are applied to each figure as the policy states them.")
        return Limitation("Multiple comparisons", [said])
    if correction and correction != "none":
        said = (f"Their p-values are adjusted across the whole audit ({'Holm' if correction == 'holm' else 'Benjamini-Hochberg'}"
                f" correction); the thresholds themselves are applied to each figure as the policy states them.")
    else:
        said = ("No correction for multiple comparisons is applied: each figure is judged against its threshold "
                "on its own, so with many comparisons some misses or passes may be due to chance; read them with "
                "their intervals.")
    return Limitation("Multiple comparisons", [
        f"The fairness checks make {comparisons} group comparisons (rates and ratios across attributes and groups). "
        + said])


def _data_notes(results: dict[str, Any]) -> Limitation:
    inputs = results.get("inputs") or {}
    notes = [str(n) for n in (inputs.get("data") or {}).get("notes") or []]
    if not (inputs.get("data") or {}).get("target"):
        notes.append("No observed outcome (data.target) was given: accuracy, error-rate and calibration figures "
                     "could not be computed.")
    return Limitation("Data", notes)


def _catalogue(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The check types the run could have used, as results.json records them (engine.catalogue),
    so a re-rendered report says what the original said wherever it is drawn. Results written
    before the catalogue was recorded fall back to this process's registry."""
    recorded = (results.get("engine") or {}).get("catalogue")
    if isinstance(recorded, list):
        return {str(item.get("type")): item for item in recorded if isinstance(item, dict)}
    return {t.type: {"type": t.type, "family": t.family, "caveats": list(t.caveats)}
            for t in get_registry().types()}


def _caveats(checks: list[dict[str, Any]], results: dict[str, Any]) -> Limitation:
    catalogue = _catalogue(results)
    items, seen = [], set()
    for check in checks:
        kind = str(check.get("type"))
        if kind in seen or check.get("status") in ("skipped", "error") or kind not in catalogue:
            continue
        seen.add(kind)
        items.extend(f"{kind}: {caveat}" for caveat in catalogue[kind].get("caveats") or [])
    return Limitation("Method caveats", items)


def _untested(checks: list[dict[str, Any]], results: dict[str, Any]) -> Limitation:
    ran = {str(c.get("type")) for c in checks if c.get("status") not in ("skipped", "error")}
    families: dict[str, list[str]] = {}
    for kind, item in _catalogue(results).items():
        families.setdefault(str(item.get("family")), []).append(kind)
    items = []
    for family, types in sorted(families.items()):
        missing = sorted(t for t in types if t not in ran)
        if len(missing) == len(types):
            items.append(f"No {family} check ran ({', '.join(missing)}).")
        elif missing:
            items.append(f"{family}: {', '.join(missing)} did not run.")
    data = (results.get("inputs") or {}).get("data") or {}
    if not data.get("protected"):
        items.append("No protected attribute was declared (data.protected): fairness was not examined.")
    return Limitation("What this policy did not test", items,
                      "Check types of the catalogue this audit did not run; a figure that was not computed "
                      "is not evidence either way.")
