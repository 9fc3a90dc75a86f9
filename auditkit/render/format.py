"""Words and numbers as every report shows them: HTML, Markdown, JUnit and the diff.

Pure functions of results.json values (no markup): a number to a fixed number of significant
digits, an interval whose ends never print alike, a threshold, a duration, a date; and the
summaries a report draws of a check (its key figures, why it was skipped, its error).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Final

#: Findings listed per check in the "At a glance" table.
GLANCE_FINDINGS: Final = 4
#: Metrics listed per check in the "At a glance" table when it has no findings.
GLANCE_METRICS: Final = 3
DASH: Final = "—"

STATUS_ORDER: Final = ("fail", "error", "warn", "pass", "info", "skipped")

#: What each overall status means, as the exit codes of DESIGN.md define them.
STATUS_MEANING: Final = {
    "pass": "Every check passed its thresholds.",
    "warn": "No check failed; at least one raised a warning.",
    "fail": "At least one check failed its thresholds.",
    "error": "At least one check could not complete, and none failed.",
    "info": "No threshold was declared: figures are reported, not assessed.",
    "skipped": "The check did not apply to this model or data.",
}

#: The exit codes of DESIGN.md (2, an invalid input, never has a results.json).
EXIT_CODE_MEANING: Final = {
    0: "passed",
    1: "failed: a threshold was missed",
    2: "an input was invalid",
    3: "a check could not complete",
}


# ---------------------------------------------------------------------------- formatting


def format_number(value: Any) -> str:
    """A figure for a reader: 4 significant digits, integers with thousands separators.

    ``None`` (a figure that could not be computed) is an em dash; the report prints the
    metric's note next to it.
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return DASH
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e15 or magnitude < 1e-4:
        return f"{value:.4g}"
    if value.is_integer() or magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _decimals(value: float) -> int | None:
    text = f"{value:.4g}"
    if "e" in text:
        return None
    return len(text.split(".")[1]) if "." in text else 0


def format_ci(ci: Any) -> str:
    """An interval as ``[low, high]``, both ends with as many decimals (``[0.80, 0.82]``)."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return DASH
    low, high = ci
    numbers = [v for v in (low, high) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == 2 and all(math.isfinite(v) and abs(v) < 1000 for v in numbers):
        # The larger end decides the decimals (4 significant digits), the smaller follows:
        # [0.80, 0.82], [0.00031, 0.01587].
        larger = max(numbers, key=abs)
        digits = _decimals(float(larger)) if larger else 0
        if digits is not None:
            digits = max(digits, _decimals(float(min(numbers, key=abs))) or 0) if digits == 0 else digits
            # two different ends never print alike: [0.958, 0.99999] is not "[1, 1]"
            while low != high and f"{low:.{digits}f}" == f"{high:.{digits}f}" and digits < 8:
                digits += 1
            return f"[{low:.{digits}f}, {high:.{digits}f}]"
    return f"[{format_number(low)}, {format_number(high)}]"


def format_threshold(finding: dict[str, Any]) -> str:
    """``≥ 0.75``, ``≤ 0.1`` or both, from a finding or a threshold; a bound relative to a
    baseline run as ``fall ≤ 0.02 from 0.81`` (the baseline's figure, when there was one)."""
    parts = []
    if finding.get("min") is not None:
        parts.append(f"≥ {format_number(finding['min'])}")
    if finding.get("max") is not None:
        parts.append(f"≤ {format_number(finding['max'])}")
    base = finding.get("baseline")
    since = f" from {format_number(base)}" if base is not None else " from the baseline"
    for key, word in (("max_decrease", "fall"), ("max_increase", "rise")):
        if finding.get(key) is not None:
            parts.append(f"{word} ≤ {format_number(finding[key])}{since}")
    return " and ".join(parts) if parts else DASH


def format_param(value: Any, *, top: bool = True) -> str:
    """A policy parameter as the policy would write it, compactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "not set"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        inner = ", ".join(format_param(v, top=False) for v in value)
        return inner if top else f"[{inner}]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {format_param(v, top=False)}" for k, v in value.items())
        return f"{{{inner}}}"
    return str(value)


def format_cell(value: Any) -> str:
    """One cell of a results table."""
    if value is None or isinstance(value, (bool, int, float)):
        return format_number(value)
    if isinstance(value, list):
        if len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) or v is None
                                   for v in value):
            return format_ci(value)
        return ", ".join(format_cell(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_cell(v)}" for k, v in value.items())
    return str(value)


def format_long_list(value: list[Any], limit: int) -> str:
    """A list of more than ``limit`` items in one line: its length, its first items and its
    last (``21 values: 0, 0.25, 0.5 … 5``); a shorter list as :func:`format_cell` gives it."""
    if len(value) <= limit:
        return format_cell(value)
    items = [format_cell(v) for v in value[:max(1, limit - 1)]]
    # "17,153; 20,938": a comma inside a number must not read as the separator
    head = ("; " if any("," in item for item in items) else ", ").join(items)
    return f"{len(value):,} values: {head} … {format_cell(value[-1])}"


def format_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return DASH
    if seconds < 60:
        return f"{seconds:.3g} s" if seconds else "0 s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_datetime(text: Any) -> str:
    """``2026-11-23 10:00 UTC`` from an ISO-8601 string; the string itself when unparsable."""
    if not isinstance(text, str) or not text:
        return DASH
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    if offset is not None and offset.total_seconds() == 0:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC%z")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------- views


def report_title(results: dict[str, Any]) -> str:
    report = results.get("report") if isinstance(results.get("report"), dict) else {}
    title = report.get("title")
    return title if isinstance(title, str) and title.strip() else str(results.get("policy_name") or "Model audit")


def status_counts(results: dict[str, Any]) -> dict[str, int]:
    counts = {status: 0 for status in ("pass", "info", "warn", "fail", "error", "skipped")}
    for check in checks_of(results):
        status = check.get("status")
        if status in counts:
            counts[status] += 1
    return counts


def skip_reason(check: dict[str, Any]) -> str:
    if check.get("skip_reason"):
        return str(check["skip_reason"])
    notes = check.get("notes") or []
    return str(notes[0]) if notes else "not applicable"


def error_summary(check: dict[str, Any]) -> str:
    """The line of a check's error a summary shows: the last one (a traceback's exception)."""
    lines = [line.strip() for line in str(check.get("error") or "").splitlines() if line.strip()]
    return lines[-1] if lines else "the check could not complete"


def key_figures(check: dict[str, Any]) -> list[dict[str, Any]]:
    """What the "At a glance" table says about a check: its worst findings, else metrics.

    Each item is ``{"name", "value", "threshold", "status", "more"}``; ``more`` counts the
    figures left out.
    """
    findings = [f for f in check.get("findings") or [] if isinstance(f, dict)]
    if findings:
        rank = {status: i for i, status in enumerate(STATUS_ORDER)}
        ordered = sorted(findings, key=lambda f: rank.get(f.get("status"), len(rank)))
        out = [
            {
                "name": str(f.get("metric", "")),
                "value": format_number(f.get("value")),
                "threshold": format_threshold(f),
                "on": f.get("on") if f.get("on") in ("lower", "upper") else None,
                "status": f.get("status"),
            }
            for f in ordered[:GLANCE_FINDINGS]
        ]
        if len(ordered) > GLANCE_FINDINGS:
            out.append({"more": len(ordered) - GLANCE_FINDINGS})
        return out
    metrics = check.get("metrics") if isinstance(check.get("metrics"), dict) else {}
    out = [
        {"name": str(name), "value": format_number(m.get("value") if isinstance(m, dict) else None),
         "threshold": None, "on": None, "status": None}
        for name, m in list(metrics.items())[:GLANCE_METRICS]
    ]
    if len(metrics) > GLANCE_METRICS:
        out.append({"more": len(metrics) - GLANCE_METRICS})
    return out


def checks_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The check records of a results dict, skipping anything that is not one."""
    checks = results.get("checks")
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []
