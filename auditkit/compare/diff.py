"""``auditkit diff``: what changed between a baseline audit and a current one.

Checks are matched by id, metrics by name. For every metric both runs have: the two figures,
the change, the direction that is better (:mod:`~auditkit.compare.directions`), whether the
confidence intervals overlap and a test of the difference
(:mod:`~auditkit.compare.significance`), the tolerance (:mod:`~auditkit.compare.tolerance`)
and the verdict of each run's thresholds on it.

A regression is any of:

- a check whose status got worse (pass → warn → error → fail; skipped counts as pass);
- a metric whose finding got worse (the threshold it passed now warns or fails);
- a metric with a direction that moved the worse way by more than its tolerance (and, with
  ``alpha``, significantly: the test's p-value under alpha, or, without a test, intervals
  that do not overlap; a figure without any interval is exact, so its change is real).

Checks and metrics that only one run has are listed, never regressions: the policy changed
(the inputs section says so). The result is a plain JSON-able dict; ``auditkit.render``
draws it as Markdown and HTML.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Optional

from auditkit import __version__
from auditkit.compare.directions import direction_of
from auditkit.results.io import ResultsFile
from auditkit.compare.significance import TEST_METHOD, difference_test, intervals_overlap
from auditkit.compare.tolerance import Tolerances

DIFF_VERSION: Final = 1
#: Worse is larger. ``skipped`` (did not apply) ranks with ``pass``: it is not a verdict.
STATUS_RANK: Final = {"pass": 0, "info": 0, "skipped": 0, "warn": 1, "error": 2, "fail": 3}
#: Rounding slack when a change is compared with its tolerance (as for relative thresholds).
_SLACK: Final = 1e-12


@dataclass(frozen=True)
class DiffOptions:
    tolerances: Tolerances = field(default_factory=Tolerances)
    alpha: Optional[float] = None  # a worsening must also be significant at this level


def diff_results(baseline: ResultsFile, current: ResultsFile, options: DiffOptions | None = None) -> dict[str, Any]:
    """The diff of two results files (see the module docstring); ``regressed`` and
    ``exit_code`` (0 or 1) say whether anything regressed."""
    options = options or DiffOptions()
    base_checks = {c["id"]: c for c in baseline.results["checks"]}
    cur_checks = {c["id"]: c for c in current.results["checks"]}
    checks, metrics = [], []
    for check_id in [*cur_checks, *(i for i in base_checks if i not in cur_checks)]:
        before, after = base_checks.get(check_id), cur_checks.get(check_id)
        checks.append(_check_entry(check_id, before, after))
        if before is not None and after is not None and before["type"] == after["type"]:
            metrics.extend(_metric_entries(before, after, options))
    regressions = _regressions(checks, metrics)
    return {
        "diff_version": DIFF_VERSION,
        "auditkit_version": __version__,
        "baseline": _run_summary(baseline),
        "current": _run_summary(current),
        "regressed": bool(regressions),
        "exit_code": 1 if regressions else 0,
        "settings": {"tolerance": options.tolerances.default,
                     "tolerance_rules": [{"check": r.check_id, "metric": r.metric, "tolerance": r.value}
                                         for r in options.tolerances.rules],
                     "alpha": options.alpha, "test_method": TEST_METHOD},
        "inputs": input_differences(baseline.results, current.results),
        "notes": _run_notes(baseline.results, current.results),
        "summary": _summary(checks, metrics, regressions),
        "regressions": regressions,
        "checks": checks,
        "metrics": metrics,
    }


# ---------------------------------------------------------------------------- checks


def _check_entry(check_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": check_id, "type": (after or before or {}).get("type"),
                             "baseline_status": before["status"] if before else None,
                             "current_status": after["status"] if after else None}
    if before is None:
        entry["change"] = "added"
    elif after is None:
        entry["change"] = "removed"
    elif before["type"] != after["type"]:
        entry["change"] = "type changed"
        entry["baseline_type"] = before["type"]
    else:
        entry["change"] = "status" if before["status"] != after["status"] else "same"
    entry["status_worse"] = bool(before and after and _worse_status(before["status"], after["status"]))
    return entry


def _worse_status(before: Any, after: Any) -> bool:
    return STATUS_RANK.get(str(after), 0) > STATUS_RANK.get(str(before), 0)


def _finding_status(check: dict[str, Any], metric: str) -> Optional[str]:
    """The worst verdict of the thresholds on ``metric`` in one run, or None (not judged)."""
    statuses = [f["status"] for f in check.get("findings") or [] if f.get("metric") == metric]
    return max(statuses, key=lambda s: STATUS_RANK.get(s, 0)) if statuses else None


# ---------------------------------------------------------------------------- metrics


def _metric_entries(before: dict[str, Any], after: dict[str, Any], options: DiffOptions) -> list[dict[str, Any]]:
    names = [*after["metrics"], *(m for m in before["metrics"] if m not in after["metrics"])]
    return [_metric_entry(before, after, name, options) for name in names]


def _metric_entry(before: dict[str, Any], after: dict[str, Any], name: str, options: DiffOptions) -> dict[str, Any]:
    old, new = before["metrics"].get(name), after["metrics"].get(name)
    findings = [f for check in (after, before) for f in check.get("findings") or [] if f.get("metric") == name]
    direction, direction_from = direction_of(after["type"], name, findings)
    entry: dict[str, Any] = {
        "check": after["id"], "type": after["type"], "metric": name,
        "baseline": old, "current": new,
        "direction": direction, "direction_from": direction_from,
        "baseline_finding": _finding_status(before, name), "current_finding": _finding_status(after, name),
    }
    entry["finding_worse"] = bool(entry["baseline_finding"] and entry["current_finding"]
                                  and _worse_status(entry["baseline_finding"], entry["current_finding"]))
    if old is None or new is None:
        entry.update(change=None, presence="added" if old is None else "removed", worse=None, beyond_tolerance=False,
                     regression=entry["finding_worse"])
        return entry
    entry["presence"] = "both"
    current_findings = [f for f in after.get("findings") or [] if f.get("metric") == name]
    tolerance, tolerance_from = options.tolerances.for_metric(after["id"], name, direction, current_findings)
    entry.update(_value_change(old, new, direction, tolerance, options.alpha))
    entry.update(tolerance=tolerance, tolerance_from=tolerance_from)
    entry["regression"] = entry["finding_worse"] or entry["value_regression"]
    return entry


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _value_change(old: dict[str, Any], new: dict[str, Any], direction: Optional[str], tolerance: float,
                  alpha: Optional[float]) -> dict[str, Any]:
    a, b = _number(old.get("value")), _number(new.get("value"))
    test = difference_test(old, new)
    overlap = intervals_overlap(old, new)
    out: dict[str, Any] = {"ci_overlap": overlap, "test": test.to_dict() if test else None}
    if a is None or b is None:
        return {**out, "change": None, "relative_change": None, "worse": None, "beyond_tolerance": False,
                "significant": None, "value_regression": False}
    change = b - a
    worse = None if direction is None else (change < 0 if direction == "higher" else change > 0)
    beyond = bool(worse) and abs(change) > tolerance + _SLACK * max(1.0, abs(a), abs(b))
    if test is not None:
        significant: Optional[bool] = test.p_value < alpha if alpha is not None else None
    elif overlap is not None:
        significant = (not overlap) if alpha is not None else None
    else:  # an exact figure (a count, a share of all rows): any change is real
        significant = (change != 0) if alpha is not None else None
    return {**out, "change": change, "relative_change": change / abs(a) if a != 0 else None, "worse": worse,
            "beyond_tolerance": beyond, "significant": significant,
            "value_regression": beyond and (alpha is None or bool(significant))}


# ---------------------------------------------------------------------------- regressions


def _regressions(checks: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per regressed metric, plus checks whose status got worse with no metric to
    explain it (a check that now ends as error)."""
    out = []
    explained = set()
    for m in metrics:
        if not m["regression"]:
            continue
        explained.add(m["check"])
        kinds = (["finding"] if m["finding_worse"] else []) + (["value"] if m.get("value_regression") else [])
        out.append({"check": m["check"], "metric": m["metric"], "kinds": kinds, "text": regression_text(m)})
    for c in checks:
        if c["status_worse"] and c["id"] not in explained:
            out.append({"check": c["id"], "metric": None, "kinds": ["status"],
                        "text": f"{c['id']}: status {c['baseline_status']} → {c['current_status']}"})
    return out


def format_value(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "—"
    if number != 0 and (abs(number) < 1e-3 or abs(number) >= 1e6):
        return f"{number:.3g}"
    return f"{number:.4g}"


def format_p(p: Optional[float]) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def regression_text(m: dict[str, Any]) -> str:
    """One sentence naming a regressed metric, its change and the evidence."""
    parts = []
    if m.get("value_regression"):
        verb = "fell" if m["change"] < 0 else "rose"
        better = "higher" if m["direction"] == "higher" else "lower"
        parts.append(f"{verb} from {format_value(m['baseline']['value'])} to {format_value(m['current']['value'])} "
                     f"({m['change']:+.4g}; {better} is better; tolerance {format_value(m['tolerance'])})")
        if m.get("ci_overlap") is not None:
            parts.append("the intervals " + ("overlap" if m["ci_overlap"] else "do not overlap"))
        if m.get("test"):
            parts.append(f"p {format_p(m['test']['p_value'])}" if m["test"]["p_value"] < 0.001
                         else f"p = {format_p(m['test']['p_value'])}")
    if m["finding_worse"]:
        parts.append(f"threshold verdict {m['baseline_finding']} → {m['current_finding']}")
    return f"{m['check']}: {m['metric']} " + "; ".join(parts)


def _summary(checks: list[dict[str, Any]], metrics: list[dict[str, Any]],
             regressions: list[dict[str, Any]]) -> dict[str, int]:
    both = [m for m in metrics if m["presence"] == "both"]
    return {
        "checks_compared": sum(1 for c in checks if c["change"] in ("same", "status")),
        "checks_added": sum(1 for c in checks if c["change"] == "added"),
        "checks_removed": sum(1 for c in checks if c["change"] == "removed"),
        "checks_status_changed": sum(1 for c in checks if c["change"] == "status"),
        "metrics_compared": len(both),
        "metrics_changed": sum(1 for m in both if m["change"] not in (None, 0.0)),
        "metrics_worse": sum(1 for m in both if m["worse"]),
        "metrics_better": sum(1 for m in both if m["worse"] is False and m["change"] not in (None, 0.0)),
        "regressions": len(regressions),
    }


# ---------------------------------------------------------------------------- inputs


def _run_summary(file: ResultsFile) -> dict[str, Any]:
    r = file.results
    return {"path": str(file.path), "sha256": file.sha256, "policy_name": r.get("policy_name"),
            "status": r.get("status"), "started_at": r.get("started_at"), "run_id": r.get("run_id"),
            "auditkit_version": r.get("auditkit_version")}


def _get(results: dict[str, Any], *keys: str) -> Any:
    node: Any = results
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


#: (name, keys of the compared value, keys of a path shown beside it)
_INPUTS: Final = (
    ("model", ("inputs", "model", "sha256"), ("inputs", "model", "path")),
    ("data", ("inputs", "data", "sha256"), ("inputs", "data", "path")),
    ("reference data", ("inputs", "reference", "sha256"), ("inputs", "reference", "path")),
    ("policy", ("inputs", "policy_sha256"), ("inputs", "policy_path")),
    ("rows audited", ("inputs", "data", "rows_used"), ()),
    ("data.query", ("inputs", "data", "query"), ()),
    ("seed", ("seed",), ()),
    ("auditkit", ("auditkit_version",), ()),
    ("python", ("inputs", "environment", "python"), ()),
)


def input_differences(baseline: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Which inputs and versions differ between the runs, each said plainly."""
    differ, same = [], []
    for name, keys, path_keys in _INPUTS:
        a, b = _get(baseline, *keys), _get(current, *keys)
        if a is None and b is None:
            continue
        item = {"input": name, "baseline": a, "current": b}
        if path_keys:
            item.update(baseline_path=_get(baseline, *path_keys), current_path=_get(current, *path_keys))
        (same if a == b else differ).append(item)
    old = _get(baseline, "inputs", "environment", "packages") or {}
    new = _get(current, "inputs", "environment", "packages") or {}
    packages = [{"package": name, "baseline": old.get(name), "current": new.get(name)}
                for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
    return {"differ": differ, "same": same, "packages": packages,
            "packages_same": sum(1 for name in set(old) & set(new) if old[name] == new[name])}


def _run_notes(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    notes = []
    for role, results in (("baseline", baseline), ("current", current)):
        if results.get("interrupted"):
            notes.append(f"the {role} audit was interrupted: its results are incomplete")
        errored = [c["id"] for c in results["checks"] if c.get("status") == "error"]
        if errored:
            notes.append(f"in the {role} audit, {len(errored)} check{'s' if len(errored) != 1 else ''} could not "
                         f"complete ({', '.join(errored[:5])}{', ...' if len(errored) > 5 else ''}): their figures "
                         "are missing from the comparison")
    if baseline.get("fail_on") != current.get("fail_on") and baseline.get("fail_on") and current.get("fail_on"):
        notes.append(f"--fail-on differs: {baseline['fail_on']} (baseline), {current['fail_on']} (current)")
    return notes
