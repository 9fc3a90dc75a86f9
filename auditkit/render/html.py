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
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Final

import jinja2
from markupsafe import Markup, escape

from auditkit.charts import plot_to_svg
from auditkit.render.case_files import MAX_CASES, case_files
from auditkit.render.limitations import limitations
from auditkit.render.summary import executive_summary
from auditkit.render.compliance import compliance_view
from auditkit.render.figures import MEDIA, Figures
from auditkit.render.format import (
    checks_of,
    DASH,
    error_summary,
    EXIT_CODE_MEANING,
    format_cell,
    format_long_list,
    format_ci,
    format_datetime,
    format_duration,
    format_number,
    format_param,
    format_threshold,
    is_number,
    key_figures,
    report_title,
    skip_reason,
    status_counts,
    STATUS_MEANING,
    STATUS_ORDER,
)

TEMPLATE_PACKAGE: Final = "auditkit.templates"
REPORT_TEMPLATE: Final = "report.html.j2"
STYLESHEET: Final = "report.css"
GENERIC_SECTION: Final = "sections/generic.html.j2"
#: Rows of one table in the HTML report; results.json keeps them all.
TABLE_ROW_LIMIT: Final = 1000
#: Rows of a long table printed in the PDF; the HTML shows the others under a <details>.
PRINT_ROW_LIMIT: Final = 10
#: A table of more rows than this is cut to PRINT_ROW_LIMIT in the PDF; a shorter one is printed whole
#: (cutting 12 rows to 10 would save nothing a reader notices).
PRINT_CUT_AFTER: Final = 12
#: In the PDF a cell holding a longer list (a PDP grid, a curve's values) shows its length,
#: its first items and its last: a page of raw vectors is no reading (issue #14).
PRINT_LIST_LIMIT: Final = 4
#: Human titles of the tables the built-in checks write, by check type and table name (any
#: type: ``None``); another table is titled from its name (``least_stable_rows``: "Least stable rows").
TABLE_TITLES: Final[dict[tuple[str | None, str], str]] = {
    (None, "confusion"): "Confusion matrix: decisions against outcomes",
    ("data_integrity", "columns"): "Columns: type, missing values and range against the reference data",
    ("data_integrity", "duplicate_rows"): "Duplicated rows, each with the earlier row it repeats",
    ("group_fairness", "groups"): "Figures per group",
    ("group_fairness", "disparities"): "Gaps between groups: ratios and differences of each rate",
    ("proxy_detection", "proxies"): "How well each feature alone predicts a protected attribute",
    ("proxy_detection", "all_features"): "How well all features together predict each protected attribute",
    ("shap_importance", "importance"): "Mean absolute SHAP value per feature",
    ("permutation_importance", "importance"): "Permutation importance per feature",
    ("partial_dependence", "pdp"): "Partial dependence per feature",
    ("noise_robustness", "levels"): "Decisions and scores under each noise level",
    ("noise_robustness", "sensitivity"): "Sensitivity per feature",
    ("explanation_stability", "least_stable_rows"): "The rows whose explanations change most under noise",
    ("adversarial", "examples"): "The smallest changes found that flip a decision",
    ("adversarial", "by_group"): "Flips per group",
    ("missing_values", "features"): "What a missing value of each feature does",
    ("out_of_range", "probes"): "Extreme and impossible values probed, per feature",
    ("counterfactuals", "groups"): "Recourse per group",
    ("anchors", "anchors"): "Anchors: rules, precision and coverage",
}
#: Columns beyond which a table is printed on a landscape page.
WIDE_TABLE_COLUMNS: Final = 9
#: Columns of one printed table; a wider one is cut into parts.
MAX_TABLE_COLUMNS: Final = 13
def metrics_last(check: dict[str, Any]) -> bool:
    """Whether a check's metrics table goes after its tables and charts: when it is a list of
    figures per attribute, feature or level (``metric[key]``), the tables and charts say the
    same more readably and come first."""
    metrics = check.get("metrics") if isinstance(check.get("metrics"), dict) else {}
    drawn = bool(check.get("tables")) or bool(check.get("plots"))
    return drawn and any("[" in str(name) for name in metrics)


def metrics_view(check: dict[str, Any], *, beside_thresholds: bool = False) -> dict[str, Any]:
    """The metrics table: rows, which optional columns any row fills, and the method most
    metrics share (said once under the table; a row names its method only when it differs).

    ``beside_thresholds`` (the PDF): a metric the thresholds table shows whole (its value,
    interval and n, with no p-value or note of its own) is left out of ``rows``; ``by_name``
    still holds every row, for the thresholds table's interval column.
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
            "p": format_p(metric.get("p_value")) if "p_value" in metric else "",
            "p_adjusted": format_p(metric.get("p_adjusted")) if "p_adjusted" in metric else "",
        })
    levels = {float(m["level"]) for _, m in items if m.get("ci") is not None and m.get("level") is not None}
    ci_header = f"{levels.pop():.0%} CI" if len(levels) == 1 else ("CI" if levels else "95% CI")
    by_name = {row["name"]: row for row in rows}
    judged = {str(f.get("metric")) for f in check.get("findings") or [] if isinstance(f, dict)}
    in_thresholds = {name for name in judged & set(by_name)
                     if not (by_name[name]["p"] or by_name[name]["p_adjusted"] or by_name[name]["detail"])}
    if beside_thresholds:
        rows = [row for row in rows if row["name"] not in in_thresholds]
    return {
        "by_name": by_name,
        "in_thresholds": sorted(in_thresholds),
        "rows": rows,
        "ci_header": ci_header,
        "has_ci": any(r["ci"] for r in rows),
        "has_n": any(r["n"] for r in rows),
        "has_detail": any(r["detail"] for r in rows),
        "has_p": any(r["p"] for r in rows),
        "has_p_adjusted": any(r["p_adjusted"] for r in rows),
        "method": shared,
        "method_for_all": shared is not None and uses == sum(methods.values()),
        "cut": PRINT_ROW_LIMIT if len(rows) > PRINT_CUT_AFTER else len(rows),
    }


def format_p(value: Any) -> str:
    """A p-value: four decimals, or two significant digits below 0.0001 (``3.9e-18``), never "0"."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return DASH
    return f"{value:.1e}" if 0 < value < 1e-4 else f"{value:.4f}"


_TEST_SHORT: Final = {"two-proportion z test": "z", "Fisher's exact test": "Fisher", "Welch's t test": "Welch"}


def _detectable(record: dict[str, Any]) -> str:
    """The smallest disparity the test would find: a ratio for rates, a difference (in the
    prediction's units) for a regressor's means; "none" when no ratio is detectable at all."""
    if record.get("min_detectable_ratio") is not None:
        return format_number(record["min_detectable_ratio"])
    if record.get("min_detectable_difference") is not None:
        return f"±{format_number(record['min_detectable_difference'])} (difference)"
    return "none" if record.get("underpowered") else DASH


def comparisons_view(records: Any, *, limit: int = TABLE_ROW_LIMIT) -> dict[str, Any]:
    """Table ``comparisons`` (each group against its reference group, results.multiplicity) as
    report rows: a pair of figures per cell (group / reference), so the raw and adjusted
    p-values and the minimum detectable ratio fit on one line."""
    rows = [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []

    def pair(a: Any, b: Any) -> str:
        return f"{format_number(a)} / {format_number(b)}"

    def row(r: dict[str, Any]) -> dict[str, Any]:
        return {
        "attribute": str(r.get("attribute", "")),
        "rate": str(r.get("rate", "")).replace("_", " ") + (f" (class {r['class']})" if r.get("class") is not None
                                                           else ""),  # a multiclass model's one-vs-rest class
        "group": str(r.get("group", "")), "reference": str(r.get("reference_group", "")),
        "n": pair(r.get("n"), r.get("reference_n")), "rates": pair(r.get("group_rate"), r.get("reference_rate")),
        "ratio": format_number(r.get("ratio")), "test": _TEST_SHORT.get(str(r.get("test")), str(r.get("test") or DASH)),
        "p": format_p(r.get("p_value")), "p_adjusted": format_p(r.get("p_adjusted")),
        "detectable": _detectable(r),
        "underpowered": bool(r.get("underpowered")),
        }

    def evidence(r: dict[str, Any]) -> float:
        p = r.get("p_adjusted", r.get("p_value"))
        return float(p) if is_number(p) and math.isfinite(p) else math.inf

    # The PDF prints the comparisons with the strongest evidence of a difference (smallest
    # adjusted p) and says so; the HTML lists them all in the engine's order.
    strongest = sorted(rows, key=evidence)
    cut = PRINT_ROW_LIMIT if len(rows) > PRINT_CUT_AFTER else len(rows)
    return {"rows": [row(r) for r in rows[:limit]], "print_rows": [row(r) for r in strongest[:cut]],
            "total": len(rows), "more": max(0, len(rows) - limit), "cut": cut,
            "has_adjusted": any("p_adjusted" in r for r in rows),
            "has_welch": any(r.get("test") == "Welch's t test" for r in rows)}


def _is_identifier(column: str) -> bool:
    """Integer columns that name a row or a rank: no thousands separator (row 12345)."""
    return column in _IDENTIFIER_COLUMNS or column.endswith(("_row", "_id", "_index", "_of"))


_IDENTIFIER_COLUMNS: Final = frozenset({"row", "rank", "index", "id", "seed", "year"})


def table_view(records: Any, *, limit: int = TABLE_ROW_LIMIT, list_limit: int | None = None) -> dict[str, Any]:
    """A list of records as columns and formatted cells, at most ``limit`` rows.

    A ``<column>_ci`` interval is shown under its ``<column>`` value rather than in a
    column of its own. A table with more than :data:`MAX_TABLE_COLUMNS` columns is cut
    into ``parts``, each repeating the leading text columns (attribute, group, ...).
    ``list_limit``: a cell's list of more items is shortened (:func:`format_long_list`), and
    ``shortened`` says whether any was.
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

    shortened = False

    def cell(record: dict[str, Any], column: str) -> dict[str, Any]:
        nonlocal shortened
        value = record.get(column)
        ci_key = column + "_ci"
        plain = isinstance(value, int) and not isinstance(value, bool) and _is_identifier(column)
        if list_limit is not None and isinstance(value, list) and len(value) > list_limit and not is_changes(value):
            shortened = True
            text = format_long_list(value, list_limit)
        else:
            text = str(value) if plain else format_changes(value) if is_changes(value) else format_cell(value)
        return {
            "text": text,
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
        # rows printed in the PDF; the HTML shows the rest under a <details>
        "cut": PRINT_ROW_LIMIT if len(shown) > PRINT_CUT_AFTER else len(shown),
        # The print stylesheet sets a medium table smaller and a wide one on a landscape page.
        "width": "wide" if widest > WIDE_TABLE_COLUMNS else "medium" if widest > 6 else "narrow",
        "shortened": shortened,
    }


def is_changes(value: Any) -> bool:
    """A ``{feature: [before, after]}`` mapping (counterfactuals, adversarial examples)."""
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value.values()))


def format_changes(value: dict[str, Any]) -> str:
    """``income 15,960 → 16,495; debt_ratio 0.138 → 0.14``: each changed feature, before → after
    (a pair that did not change is left out)."""
    return "; ".join(f"{feature} {format_cell(pair[0])} → {format_cell(pair[1])}"
                     for feature, pair in value.items() if pair[0] != pair[1])


def changed_items(changes: Any) -> list[tuple[str, Any]]:
    """The ``(feature, [before, after])`` pairs of a changes mapping whose value really changed."""
    if not isinstance(changes, dict):
        return []
    return [(str(k), v) for k, v in changes.items()
            if isinstance(v, (list, tuple)) and len(v) == 2 and v[0] != v[1]]


def table_title(check_type: Any, name: Any) -> str:
    """A table's title for a reader: the built-in checks' own, else its name in words."""
    title = TABLE_TITLES.get((str(check_type), str(name))) or TABLE_TITLES.get((None, str(name)))
    if title:
        return title
    words = " ".join(str(name).replace("_", " ").split())
    return words[:1].upper() + words[1:] if words else "Table"


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
    ("features", "Features"), ("favorable_label", "Favourable label"), ("favorable_decision", "Favourable decision"),
    ("ignore", "Ignored columns"),
    ("reference", "Reference data"), ("reference_sha256", "Reference SHA-256"),
    ("reference_rows", "Reference rows"), ("sample", "Row cap"),
)
_ENGINE_FIELDS: Final = (
    ("executor", "Executor"), ("workers", "Workers"), ("threads_per_worker", "Threads per worker"),
    ("cores", "Cores"), ("scheduler", "Dask scheduler"), ("dashboard", "Dask dashboard"),
    ("scheduler_lost", "Scheduler lost during the run"), ("partitions", "Data files read by partition"),
    ("worker_memory_mb", "Memory limit per worker (MB)"), ("prepare_s", "Loading and predicting"),
    ("checks_wall_s", "Checks, wall time"), ("checks_time_s", "Time in checks (sum)"), ("overhead_s", "Overhead"),
    ("memory_mb_default", "Memory limit per check (MB)"),
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
    engine = results.get("engine") if isinstance(results.get("engine"), dict) else {}
    # the catalogue is what the limitations' "what this policy did not test" reads, not a fact of the run
    run.extend(_fields({k: v for k, v in engine.items() if k != "catalogue"}, _ENGINE_FIELDS))
    return [
        {"title": "Model", "fields": _fields(inputs.get("model"), _MODEL_FIELDS)},
        {"title": "Data", "fields": _fields(inputs.get("data"), _DATA_FIELDS)},
        {"title": "Policy", "fields": policy},
        {"title": "Run", "fields": run},
    ]


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
        num=format_number, ci=format_ci, pvalue=format_p, threshold=format_threshold, param=format_param,
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
        metrics_last=metrics_last,
        section_template=section_template,
        chart=_chart,
        badge=badge,
        table_view=table_view,
        table_title=table_title,
        changed_items=changed_items,
        case_of=lambda plot: None,
        case_rows=[],
        figure=_figure,
        medium="screen",
        print_row_limit=PRINT_ROW_LIMIT, print_list_limit=PRINT_LIST_LIMIT,
        metrics_view=metrics_view,
        comparisons_view=comparisons_view,
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


def _figure_of(figures: Figures, medium: str) -> Callable[[Any, str], dict[str, Any]]:
    def figure(plot: Any, id_prefix: str) -> dict[str, Any]:
        """A plot for a template: its ``markup`` (empty when nothing was drawn), the ``reason``
        why not, and ``half`` (a small chart: two stand side by side)."""
        try:
            chart = figures.chart(plot)
            markup = figures.markup(plot, id_prefix, medium)
        except Exception:  # noqa: BLE001 - a chart never costs the report; its data are in the tables
            return {"markup": Markup(""), "reason": "not drawn: its data are malformed", "half": False}
        return {"markup": markup, "reason": chart.reason, "half": chart.half}
    return figure


def _figure(plot: Any, id_prefix: str) -> dict[str, Any]:
    return _figure_of(Figures(), "screen")(plot, id_prefix)


def _case_of(cases: list[dict[str, Any]]) -> Callable[[Any], Any]:
    """For a plot, the row of the case file that draws it (None when none does): a per-row
    chart is drawn once, in its case file, and the check's section points there."""
    drawn: dict[int, Any] = {}
    for case in cases[:MAX_CASES]:
        for item in case["waterfalls"][:1] + case["profiles"][:2]:
            drawn[id(item["plot"])] = case["row"]
    return lambda plot: drawn.get(id(plot))


def plots_of(results: dict[str, Any]) -> list[Any]:
    """Every plot of every check, in report order (what :class:`Figures` draws up front)."""
    return [plot for check in checks_of(results) for plot in (check.get("plots") or [])
            if isinstance(check.get("plots"), list)]


def render_html(results: dict[str, Any], *, env: jinja2.Environment | None = None, medium: str = "screen",
                figures: Figures | None = None) -> str:
    """The whole report as one self-contained HTML page (no script, no external URL).

    ``medium`` ``"screen"`` is report.html: charts as inline SVG, long tables whole (the rows
    past the printed ones under a ``<details>``). ``"print"`` is the page WeasyPrint lays out
    as report.pdf: charts as ``data:`` images (see :mod:`auditkit.render.figures`) and long
    tables cut to their first rows with a note. ``figures`` carries charts drawn already
    (one drawing serves both media); by default they are drawn here. ``env`` replaces the
    shipped templates (see :func:`build_environment`); for tests.
    """
    from auditkit import __version__

    if medium not in MEDIA:
        raise ValueError(f"medium must be one of {', '.join(MEDIA)}, got {medium!r}")
    figures = figures if figures is not None else Figures(plots_of(results))
    env = env if env is not None else environment()
    assert env.loader is not None
    css, _, _ = env.loader.get_source(env, STYLESHEET)
    checks = checks_of(results)
    report = results.get("report") if isinstance(results.get("report"), dict) else {}
    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    environment_info = inputs.get("environment") if isinstance(inputs.get("environment"), dict) else {}
    packages = environment_info.get("packages") if isinstance(environment_info.get("packages"), dict) else {}
    template = env.get_template(REPORT_TEMPLATE)
    cases = case_files(results, checks)
    return template.render(
        results=results,
        checks=checks,
        cases=cases,
        compliance=compliance_view(results, checks),  # regulatory mapping and cross-check findings, or None
        title=report_title(results),
        organization=report.get("organization") if isinstance(report.get("organization"), str) else "",
        report=report,
        engine=results.get("engine") if isinstance(results.get("engine"), dict) else {},
        header=_header_view(report),
        summary=executive_summary(results),
        limitations=limitations(results),
        signoff=signoff_view(report),
        rerun_command=rerun_command(results),
        counts=status_counts(results),
        inputs=inputs,
        inputs_view=inputs_view(results),
        environment_info=environment_info,
        packages=sorted((str(k), str(v)) for k, v in packages.items()),
        renderer_version=__version__,
        css=Markup(_css_for_style_element(css)),
        medium=medium,
        figure=_figure_of(figures, medium),
        case_of=_case_of(cases),
        # in print, a row's reasons, recourse and rule are printed once, in its case file
        case_rows=[c["row"] for c in cases[:MAX_CASES]] if medium == "print" else [],
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _header_view(report: dict[str, Any]) -> dict[str, str]:
    """The policy's optional cover fields, as text (absent ones empty)."""
    return {key: _text(report.get(key)) for key in
            ("model_name", "model_version", "model_owner", "intended_use", "classification", "subjects")}


SIGNOFF_ROLES: Final = (("prepared", "Prepared by"), ("reviewed", "Reviewed by"), ("approved", "Approved by"))


def signoff_view(report: dict[str, Any]) -> list[dict[str, str]]:
    """Three signature rows (prepared, reviewed, approved); absent names print as lines to fill in."""
    signoff = report.get("signoff") if isinstance(report.get("signoff"), dict) else {}
    rows = []
    for key, label in SIGNOFF_ROLES:
        person = signoff.get(key) if isinstance(signoff.get(key), dict) else {}
        rows.append({"label": label, "name": _text(person.get("name")), "role": _text(person.get("role")),
                     "date": _text(person.get("date"))})
    return rows


def rerun_command(results: dict[str, Any]) -> str:
    """The command that re-runs this audit with the same seed and checks: the recorded command
    line when there is one (it already names them), else one built from the policy's path."""
    command = _text(results.get("command"))
    if command:
        return command if "--seed" in command else f"{command} --seed {results.get('seed', 0)}"
    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    policy = _text(inputs.get("policy_path")) or "<policy file>"
    return f"auditkit run {policy} --seed {results.get('seed', 0)}"


def _css_for_style_element(css: str) -> str:
    # The stylesheet is ours, but a "</style" in it would end the element early.
    return re.sub(r"</(style)", r"<\\/\1", css, flags=re.I)
