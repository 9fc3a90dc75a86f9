"""The report as one self-contained HTML file, drawn from results.json alone.

Everything the page needs is inside it: the stylesheet inline, the charts as inline SVG, no
script, no URL. The PDF is WeasyPrint's rendering of the same markup (``pdf.py``).

Templates live in the top-level ``templates/`` directory, shipped as the package
``auditkit.templates``. A check's section is ``sections/<check type>.html.j2`` when that
file exists, else ``sections/generic.html.j2``; a new check type can add its own section
(usually ``{% extends "sections/generic.html.j2" %}`` and overriding a block) without
touching this module.

Every template is autoescaped whatever its file name: column names, category values, notes
and file names come from the audited data and the policy, and are untrusted.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Final

import jinja2
from markupsafe import Markup, escape

from auditkit.charts import plot_to_svg
from auditkit.render.case_files import MAX_CASES, case_files

TEMPLATE_PACKAGE: Final = "auditkit.templates"
REPORT_TEMPLATE: Final = "report.html.j2"
STYLESHEET: Final = "report.css"
GENERIC_SECTION: Final = "sections/generic.html.j2"
#: Rows of one table shown in the report; results.json keeps them all.
TABLE_ROW_LIMIT: Final = 50
#: Columns beyond which a table is printed on a landscape page.
WIDE_TABLE_COLUMNS: Final = 9
#: Columns of one printed table; a wider one is cut into parts.
MAX_TABLE_COLUMNS: Final = 13
#: Findings listed per check in the "At a glance" table.
GLANCE_FINDINGS: Final = 4
#: Metrics listed per check in the "At a glance" table when it has no findings.
GLANCE_METRICS: Final = 3
DASH: Final = "—"

STATUS_ORDER: Final = ("fail", "error", "warn", "pass", "skipped")

#: What each overall status means, as the exit codes of DESIGN.md define them.
STATUS_MEANING: Final = {
    "pass": "Every check passed its thresholds.",
    "warn": "No check failed; at least one raised a warning.",
    "fail": "At least one check failed its thresholds.",
    "error": "At least one check could not complete, and none failed.",
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
    counts = {status: 0 for status in ("pass", "warn", "fail", "error", "skipped")}
    for check in _checks(results):
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


def metrics_view(check: dict[str, Any]) -> dict[str, Any]:
    """The metrics table: rows, which optional columns any row fills, and the method most
    metrics share (said once under the table; a row names its method only when it differs).
    """
    metrics = check.get("metrics") if isinstance(check.get("metrics"), dict) else {}
    items = [(str(name), m if isinstance(m, dict) else {"value": m}) for name, m in metrics.items()]
    methods = Counter(str(m["method"]) for _, m in items if m.get("method"))
    common, uses = methods.most_common(1)[0] if methods else (None, 0)
    shared = common if uses >= 2 and uses * 2 >= sum(methods.values()) else None
    rows = []
    for name, metric in items:
        detail = [str(metric[k]) for k in ("method", "note")
                  if metric.get(k) and not (k == "method" and str(metric[k]) == shared)]
        rows.append({
            "name": name,
            "value": format_number(metric.get("value")),
            "ci": format_ci(metric["ci"]) if metric.get("ci") is not None else "",
            "n": format_number(metric["n"]) if metric.get("n") is not None else "",
            "detail": "; ".join(detail),
            "null": metric.get("value") is None,
        })
    levels = {float(m["level"]) for _, m in items if m.get("ci") is not None and m.get("level") is not None}
    ci_header = f"{levels.pop():.0%} CI" if len(levels) == 1 else ("CI" if levels else "95% CI")
    return {
        "rows": rows,
        "ci_header": ci_header,
        "has_ci": any(r["ci"] for r in rows),
        "has_n": any(r["n"] for r in rows),
        "has_detail": any(r["detail"] for r in rows),
        "method": shared,
        "method_for_all": shared is not None and uses == sum(methods.values()),
    }


def _is_identifier(column: str) -> bool:
    """Integer columns that name a row or a rank: no thousands separator (row 12345)."""
    return column in _IDENTIFIER_COLUMNS or column.endswith(("_row", "_id", "_index", "_of"))


_IDENTIFIER_COLUMNS: Final = frozenset({"row", "rank", "index", "id", "seed", "year"})


def table_view(records: Any, *, limit: int = TABLE_ROW_LIMIT) -> dict[str, Any]:
    """A list of records as columns and formatted cells, at most ``limit`` rows.

    A ``<column>_ci`` interval is shown under its ``<column>`` value rather than in a
    column of its own. A table with more than :data:`MAX_TABLE_COLUMNS` columns is cut
    into ``parts``, each repeating the leading text columns (attribute, group, ...).
    """
    rows = [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    keys: dict[str, None] = {}
    for record in rows:
        for key in record:
            keys.setdefault(str(key), None)
    merged = {k for k in keys if k.endswith("_ci") and k[:-3] in keys}
    columns = [k for k in keys if k not in merged]
    numeric = {
        c: all(is_number(r.get(c)) or r.get(c) is None for r in rows) and any(is_number(r.get(c)) for r in rows)
        for c in columns
    }

    def cell(record: dict[str, Any], column: str) -> dict[str, Any]:
        value = record.get(column)
        ci_key = column + "_ci"
        plain = isinstance(value, int) and not isinstance(value, bool) and _is_identifier(column)
        return {
            "text": str(value) if plain else format_cell(value),
            "ci": format_ci(record[ci_key]) if ci_key in merged and record.get(ci_key) is not None else "",
            "numeric": numeric[column],
            "null": value is None,
        }

    shown = rows[:limit]
    keys_at_front = []
    for column in columns[:3]:
        if numeric[column]:
            break
        keys_at_front.append(column)
    rest = columns[len(keys_at_front):]
    per_part = max(1, MAX_TABLE_COLUMNS - len(keys_at_front))
    groups = [rest[i:i + per_part] for i in range(0, len(rest), per_part)] if len(columns) > MAX_TABLE_COLUMNS else [rest]
    parts = []
    for group in groups:
        part_columns = keys_at_front + group
        parts.append({
            "columns": [{"name": c, "numeric": numeric[c]} for c in part_columns],
            "rows": [[cell(record, c) for c in part_columns] for record in shown],
        })
    widest = max((len(p["columns"]) for p in parts), default=0)
    return {
        "columns": parts[0]["columns"] if len(parts) == 1 else [{"name": c, "numeric": numeric[c]} for c in columns],
        "rows": parts[0]["rows"] if len(parts) == 1 else [[cell(r, c) for c in columns] for r in shown],
        "parts": parts,
        "total": len(rows),
        "more": max(0, len(rows) - limit),
        # The print stylesheet sets a medium table smaller and a wide one on a landscape page.
        "width": "wide" if widest > WIDE_TABLE_COLUMNS else "medium" if widest > 6 else "narrow",
    }


def breakable(name: Any) -> Markup:
    """A column name that may wrap after its underscores (``true_<wbr>positive_<wbr>rate``)."""
    return Markup("_<wbr>").join(escape(part) for part in str(name).split("_"))


def param_items(check: dict[str, Any]) -> list[tuple[str, str]]:
    params = check.get("params") if isinstance(check.get("params"), dict) else {}
    return [(str(k), format_param(v)) for k, v in params.items()]


_MODEL_FIELDS: Final = (
    ("path", "File"), ("format", "Format"), ("sha256", "SHA-256"), ("task", "Task"),
    ("positive_class", "Positive class"), ("threshold", "Decision threshold"), ("kind", "Kind"),
    ("score_column", "Score column"), ("prediction_column", "Prediction column"),
)
_DATA_FIELDS: Final = (
    ("path", "File"), ("sha256", "SHA-256"), ("rows", "Rows"), ("rows_used", "Rows used"),
    ("columns", "Columns"), ("target", "Target"), ("protected", "Protected attributes"),
    ("features", "Features"), ("favorable_label", "Favourable label"), ("favorable_decision", "Favourable decision (0/1)"),
    ("ignore", "Ignored columns"),
    ("reference", "Reference data"), ("reference_sha256", "Reference SHA-256"),
    ("reference_rows", "Reference rows"), ("sample", "Row cap"),
)
_ENGINE_FIELDS: Final = (
    ("executor", "Executor"), ("workers", "Workers"), ("threads_per_worker", "Threads per worker"),
    ("checks_time_s", "Time in checks"), ("overhead_s", "Overhead"),
)
_LIST_LIMIT: Final = 40


def _field(key: str, label: str, value: Any) -> dict[str, Any]:
    mono = key.endswith("sha256") or key in ("path", "reference")
    if isinstance(value, list):
        shown = ", ".join(format_cell(v) for v in value[:_LIST_LIMIT])
        if len(value) > _LIST_LIMIT:
            shown += f" … and {len(value) - _LIST_LIMIT:,} more"
        text = f"{shown} ({len(value):,} in all)" if len(value) > 3 else shown
    elif key.endswith("_s") and is_number(value):
        text = format_duration(value)
    else:
        text = format_cell(value)
    return {"label": label, "value": text or DASH, "mono": mono}


def _fields(block: Any, known: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """Known keys in a fixed order with readable labels, then whatever else the engine wrote."""
    if not isinstance(block, dict):
        return []
    out = [_field(key, label, block[key]) for key, label in known if key in block]
    names = {key for key, _ in known}
    for key, value in block.items():
        if key not in names and not isinstance(value, dict):
            out.append(_field(str(key), str(key).replace("_", " ").capitalize(), value))
    return out


def inputs_view(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The "What was audited" blocks: model, data, policy and run."""
    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    policy = []
    if inputs.get("policy_path") is not None:
        policy.append(_field("path", "File", inputs["policy_path"]))
    policy.append(_field("policy_sha256", "SHA-256", inputs.get("policy_sha256")))
    policy.append(_field("name", "Name", results.get("policy_name")))
    baseline = inputs.get("baseline")
    if isinstance(baseline, dict):  # the run that max_decrease / max_increase compared with
        policy.append(_field("path", "Baseline run", baseline.get("path")))
        policy.append(_field("baseline_sha256", "Baseline SHA-256", baseline.get("sha256")))
    run = [
        _field("seed", "Seed", results.get("seed")),
        {"label": "Started", "value": format_datetime(results.get("started_at")), "mono": False},
    ]
    if results.get("finished_at"):
        run.append({"label": "Finished", "value": format_datetime(results.get("finished_at")), "mono": False})
    run.append({"label": "Duration", "value": format_duration(results.get("duration_s")), "mono": False})
    run.extend(_fields(results.get("engine"), _ENGINE_FIELDS))
    return [
        {"title": "Model", "fields": _fields(inputs.get("model"), _MODEL_FIELDS)},
        {"title": "Data", "fields": _fields(inputs.get("data"), _DATA_FIELDS)},
        {"title": "Policy", "fields": policy},
        {"title": "Run", "fields": run},
    ]


def _checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks = results.get("checks")
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []


# ---------------------------------------------------------------------------- templates


class _PackageLoader(jinja2.BaseLoader):
    """Templates from ``auditkit.templates`` (a wheel) or the source tree's ``templates/``."""

    def __init__(self, root: Path | None = None) -> None:
        if root is not None:
            self.root: Any = Path(root)
            return
        try:
            self.root = resources.files(TEMPLATE_PACKAGE)
        except ModuleNotFoundError:
            import auditkit

            self.root = Path(auditkit.__file__).resolve().parent.parent / "templates"

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        parts = template.split("/")
        if any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise jinja2.TemplateNotFound(template)
        node = self.root
        for part in parts:
            node = node.joinpath(part)
        if not node.is_file():
            raise jinja2.TemplateNotFound(template)
        return node.read_text(encoding="utf-8"), None, lambda: True

    def exists(self, template: str) -> bool:
        try:
            self.get_source(jinja2.Environment(), template)
        except jinja2.TemplateNotFound:
            return False
        return True


_CHECK_TYPE_RE: Final = re.compile(r"[a-z][a-z0-9_]*")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The report's Jinja environment over the shipped templates."""
    return build_environment()


def build_environment(template_dir: Path | None = None) -> jinja2.Environment:
    """A Jinja environment over ``template_dir`` (default: the shipped templates)."""
    loader = _PackageLoader(template_dir)
    env = jinja2.Environment(
        loader=loader,
        # True, not select_autoescape(): ".html.j2" is not among its default extensions.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=format_number, ci=format_ci, threshold=format_threshold, param=format_param,
        cell=format_cell, duration=format_duration, datetime=format_datetime, breakable=breakable,
    )

    def section_template(check_type: Any) -> str:
        # A check type names a file only when it is a plain identifier (no "../").
        if isinstance(check_type, str) and _CHECK_TYPE_RE.fullmatch(check_type):
            name = f"sections/{check_type}.html.j2"
            if loader.exists(name):
                return name
        return GENERIC_SECTION

    env.globals.update(
        section_template=section_template,
        chart=_chart,
        badge=badge,
        table_view=table_view,
        metrics_view=metrics_view,
        key_figures=key_figures,
        param_items=param_items,
        skip_reason=skip_reason,
        error_summary=error_summary,
        status_meaning=STATUS_MEANING,
        exit_code_meaning=EXIT_CODE_MEANING,
        table_row_limit=TABLE_ROW_LIMIT,
        max_cases=MAX_CASES,
    )
    return env


def badge(status: Any, small: bool = False) -> Markup:
    """A status as a coloured word: the colour is never the only signal."""
    word = str(status)
    css = word if word in STATUS_ORDER else "unknown"
    size = " badge-small" if small else ""
    return Markup('<span class="badge badge-{}{}">{}</span>').format(css, size, word)


def _chart(plot: Any, id_prefix: str) -> Markup:
    try:
        svg = plot_to_svg(plot, id_prefix=id_prefix)
    except Exception:  # noqa: BLE001 - a chart never costs the report; its data are in the tables
        svg = ""
    # Safe: the SVG's text is drawn as paths and its title is escaped by plot_to_svg.
    return Markup(svg)


def render_html(results: dict[str, Any], *, env: jinja2.Environment | None = None) -> str:
    """The whole report as one self-contained HTML page (no script, no external URL).

    ``env`` replaces the shipped templates (see :func:`build_environment`); for tests.
    """
    from auditkit import __version__

    env = env if env is not None else environment()
    assert env.loader is not None
    css, _, _ = env.loader.get_source(env, STYLESHEET)
    checks = _checks(results)
    report = results.get("report") if isinstance(results.get("report"), dict) else {}
    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    environment_info = inputs.get("environment") if isinstance(inputs.get("environment"), dict) else {}
    packages = environment_info.get("packages") if isinstance(environment_info.get("packages"), dict) else {}
    template = env.get_template(REPORT_TEMPLATE)
    return template.render(
        results=results,
        checks=checks,
        cases=case_files(results, checks),
        title=report_title(results),
        organization=report.get("organization") if isinstance(report.get("organization"), str) else "",
        counts=status_counts(results),
        inputs=inputs,
        inputs_view=inputs_view(results),
        environment_info=environment_info,
        packages=sorted((str(k), str(v)) for k, v in packages.items()),
        renderer_version=__version__,
        css=Markup(_css_for_style_element(css)),
    )


def _css_for_style_element(css: str) -> str:
    # The stylesheet is ours, but a "</style" in it would end the element early.
    return re.sub(r"</(style)", r"<\\/\1", css, flags=re.I)
