"""What the Markdown and HTML views of a diff show, in which order, as plain strings.

Both renderers read only the diff dict that :func:`auditkit.compare.diff.diff_results`
returns (or its ``diff.json``); this module orders and words it once for both. Every string
here is still untrusted (check ids, metric names and paths come from the inputs): each
renderer escapes it for its own format.
"""
from __future__ import annotations

from typing import Any, Final

from auditkit.render.format import format_ci, format_number

#: Rows of the collapsed table of every compared figure; diff.json keeps them all.
ALL_ROWS_LIMIT: Final = 400
DASH: Final = "—"


def short_hash(value: Any) -> str:
    return f"{value[:12]}…" if isinstance(value, str) and len(value) > 12 else str(value)


def signed(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return DASH
    if value == 0:
        return "0"
    text = format_number(float(value))
    return text if text.startswith("-") else f"+{text}"


def p_text(test: Any) -> str:
    if not isinstance(test, dict) or not isinstance(test.get("p_value"), (int, float)):
        return DASH
    p = float(test["p_value"])
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def overlap_text(value: Any) -> str:
    return DASH if value is None else ("yes" if value else "no")


def better_text(metric: dict[str, Any]) -> str:
    direction = metric.get("direction")
    if direction is None:
        return DASH
    source = " (threshold)" if metric.get("direction_from") == "threshold" else ""
    return f"{direction}{source}"


def figure_text(record: Any) -> str:
    if not isinstance(record, dict):
        return DASH
    text = format_number(record.get("value"))
    if record.get("ci") is not None:
        text += f" {format_ci(record['ci'])}"
    return text


def verdict_text(metric: dict[str, Any]) -> str:
    """``regression``, ``worse``, ``better``, ``same``, ``changed`` or ``added``/``removed``."""
    if metric.get("regression"):
        return "regression"
    if metric.get("presence") in ("added", "removed"):
        return str(metric["presence"])
    change = metric.get("change")
    if change in (None, 0, 0.0):
        return "same" if change is not None else DASH
    if metric.get("worse") is None:
        return "changed"
    return "worse" if metric["worse"] else "better"


def finding_change(metric: dict[str, Any]) -> str:
    before, after = metric.get("baseline_finding"), metric.get("current_finding")
    if before is None and after is None:
        return ""
    if before == after:
        return str(after)
    return f"{before or DASH} → {after or DASH}"


def metric_row(metric: dict[str, Any]) -> dict[str, str]:
    return {
        "check": str(metric.get("check", "")),
        "metric": str(metric.get("metric", "")),
        "baseline": figure_text(metric.get("baseline")),
        "current": figure_text(metric.get("current")),
        "change": signed(metric.get("change")),
        "better": better_text(metric),
        "tolerance": format_number(metric.get("tolerance")) if metric.get("tolerance") is not None else DASH,
        "overlap": overlap_text(metric.get("ci_overlap")),
        "p": p_text(metric.get("test")),
        "threshold": finding_change(metric),
        "verdict": verdict_text(metric),
    }


def _regression_order(metric: dict[str, Any]) -> tuple[int, float, float]:
    """Verdicts that got worse first, then the most significant, then the largest change."""
    test = metric.get("test") or {}
    p = test.get("p_value") if isinstance(test.get("p_value"), (int, float)) else 1.0
    relative = metric.get("relative_change")
    size = abs(relative) if isinstance(relative, (int, float)) else abs(metric.get("change") or 0.0)
    return (0 if metric.get("finding_worse") else 1, p, -size)


def regression_rows(diff: dict[str, Any]) -> list[dict[str, str]]:
    regressed = [m for m in diff.get("metrics") or [] if m.get("regression")]
    return [metric_row(m) for m in sorted(regressed, key=_regression_order)]


def status_regressions(diff: dict[str, Any]) -> list[dict[str, Any]]:
    """Checks that regressed by status alone (no metric explains it: e.g. now an error)."""
    return [r for r in diff.get("regressions") or [] if r.get("metric") is None]


def status_changes(diff: dict[str, Any]) -> list[dict[str, str]]:
    return [{"check": str(c["id"]), "type": str(c.get("type") or ""), "baseline": str(c.get("baseline_status")),
             "current": str(c.get("current_status")), "worse": "yes" if c.get("status_worse") else "no"}
            for c in diff.get("checks") or [] if c.get("change") == "status"]


def checks_by_change(diff: dict[str, Any], change: str) -> list[dict[str, str]]:
    return [{"check": str(c["id"]), "type": str(c.get("type") or ""),
             "status": str(c.get("current_status") if change == "added" else c.get("baseline_status")),
             "baseline_type": str(c.get("baseline_type") or "")}
            for c in diff.get("checks") or [] if c.get("change") == change]


def all_rows(diff: dict[str, Any], limit: int = ALL_ROWS_LIMIT) -> tuple[list[dict[str, str]], int]:
    """Every compared figure (changed ones first), at most ``limit``; and how many were left out."""
    metrics = list(diff.get("metrics") or [])
    changed = [m for m in metrics if m.get("change") not in (0, 0.0)]
    unchanged = [m for m in metrics if m.get("change") in (0, 0.0)]
    ordered = changed + unchanged
    return [metric_row(m) for m in ordered[:limit]], max(0, len(ordered) - limit)


def input_lines(diff: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Plain sentences: what differs between the runs, and what is the same."""
    inputs = diff.get("inputs") or {}
    differ, same = [], []
    for item in inputs.get("differ") or []:
        differ.append(_input_change(item))
    for item in inputs.get("same") or []:
        same.append(_input_same(item))
    packages = inputs.get("packages") or []
    if packages:
        differ.append("packages: " + ", ".join(f"{p['package']} {p.get('baseline') or 'absent'} → "
                                                f"{p.get('current') or 'absent'}" for p in packages))
    if inputs.get("packages_same"):
        same.append(f"{inputs['packages_same']} package versions")
    return differ, same


def _is_hash(name: str) -> bool:
    return name in ("model", "data", "reference data", "policy")


def _input_change(item: dict[str, Any]) -> str:
    name = str(item["input"])
    if _is_hash(name):
        before = f"sha256 {short_hash(item.get('baseline'))}" if item.get("baseline") else "none"
        after = f"sha256 {short_hash(item.get('current'))}" if item.get("current") else "none"
        if item.get("baseline_path"):
            before += f" ({item['baseline_path']})"
        if item.get("current_path"):
            after += f" ({item['current_path']})"
        return f"{name}: {before} → {after}"
    return f"{name}: {format_number(item.get('baseline'))} → {format_number(item.get('current'))}"


def _input_same(item: dict[str, Any]) -> str:
    name = str(item["input"])
    if _is_hash(name):
        return f"{name} (sha256 {short_hash(item.get('current'))})"
    return f"{name} {format_number(item.get('current'))}"


def headline(diff: dict[str, Any]) -> str:
    n = int((diff.get("summary") or {}).get("regressions") or 0)
    if n:
        return f"{n} regression{'s' if n != 1 else ''} since the baseline"
    return "no regression since the baseline"


def settings_line(diff: dict[str, Any]) -> str:
    settings = diff.get("settings") or {}
    parts = [f"default tolerance {format_number(settings.get('tolerance') or 0.0)}"]
    rules = settings.get("tolerance_rules") or []
    if rules:
        parts.append("tolerances " + ", ".join(
            f"{r['check'] + ':' if r.get('check') else ''}{r['metric']} {format_number(r['tolerance'])}" for r in rules))
    if settings.get("alpha") is not None:
        parts.append(f"a worsening counts only when significant at {format_number(settings['alpha'])}")
    return "; ".join(parts)
