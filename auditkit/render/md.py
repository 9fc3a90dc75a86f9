"""A compact Markdown summary for CI job pages (GitHub's ``$GITHUB_STEP_SUMMARY``, GitLab).

One heading with the overall status, one table row per check, then the failing findings,
errors and warnings as bullets. Every string from the results is escaped so that it cannot
break the table, start a formula when pasted into a spreadsheet, or become markup.
"""
from __future__ import annotations

import re
from typing import Any, Final

from auditkit.render.compliance import markdown_lines as compliance_lines
from auditkit.render.format import (
    STATUS_MEANING,
    error_summary,
    format_number,
    format_threshold,
    key_figures,
    report_title,
    skip_reason,
    status_counts,
)

STATUS_ICON: Final = {"pass": "✅", "info": "ℹ️", "warn": "⚠️", "fail": "❌", "error": "⛔", "skipped": "⏭️"}
#: Longest text kept from one data string (a cell stays a cell, not a page).
CELL_LIMIT: Final = 200

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]+")
# CommonMark lets a backslash escape any ASCII punctuation. These can start markup in the
# middle of a line: emphasis, code, links (with "[" escaped, "(" and "!" are inert), a cell
# boundary, strikethrough. Fewer escapes keep the raw text readable in a CI log.
_MARKDOWN_RE: Final = re.compile(r"([\\`*_\[\]|~])")


def escape_md(text: Any, *, limit: int = CELL_LIMIT) -> str:
    """Untrusted text made inert inside a Markdown table cell or list item.

    Newlines, tabs and other control characters become spaces; ``|`` and the characters
    that start emphasis, links, code or headings are backslash-escaped; ``&``, ``<`` and
    ``>`` become entities so no HTML reaches the page; a leading ``=``, ``+``, ``-`` or ``@``
    is escaped so a spreadsheet does not read the cell as a formula.
    """
    value = _CONTROL_RE.sub(" ", str(text)).strip()
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MARKDOWN_RE.sub(r"\\\1", value)
    if value[:1] in ("=", "+", "-", "@"):
        value = "\\" + value
    return value


def _status(status: Any) -> str:
    word = str(status)
    icon = STATUS_ICON.get(word)
    return f"{icon} {escape_md(word)}" if icon else escape_md(word)


def _figures(check: dict[str, Any]) -> str:
    status = check.get("status")
    if status == "error":
        return "error: " + escape_md(error_summary(check), limit=120)
    if status == "skipped":
        return "skipped: " + escape_md(skip_reason(check), limit=120)
    parts = []
    for figure in key_figures(check):
        if figure.get("more"):
            parts.append(f"and {figure['more']} more")
            continue
        bound = f" {figure['on']} CI bound" if figure.get("on") else ""
        text = f"{escape_md(figure['name'], limit=60)}{bound} = {figure['value']}"
        qualifiers = []
        if figure.get("threshold"):
            qualifiers.append(figure["threshold"])
        if figure.get("status") and figure["status"] != "pass":
            qualifiers.append(escape_md(figure["status"]))
        if qualifiers:
            text += f" ({', '.join(qualifiers)})"
        parts.append(text)
    return "; ".join(parts) if parts else "—"


def _finding_text(finding: dict[str, Any]) -> str:
    message = finding.get("message")
    if isinstance(message, str) and message.strip():
        return escape_md(message, limit=300)
    text = f"{escape_md(finding.get('metric', ''), limit=80)} = {format_number(finding.get('value'))}"
    return f"{text}, threshold {format_threshold(finding)}"


def render_markdown(results: dict[str, Any]) -> str:
    """The CI summary as Markdown text."""
    checks = [c for c in results.get("checks") or [] if isinstance(c, dict)]
    status = str(results.get("status", ""))
    icon = STATUS_ICON.get(status)
    heading = f"{escape_md(report_title(results), limit=150)}: {escape_md(status.upper())}"
    lines = [f"## {icon} {heading}" if icon else f"## {heading}", ""]

    counts = ", ".join(f"{n} {s}" for s, n in status_counts(results).items() if n)
    facts = [f"**{escape_md(status.upper())}**: {STATUS_MEANING.get(status, '').rstrip('.').lower()}."]
    facts.append(f"{len(checks)} check{'s' if len(checks) != 1 else ''}" + (f" ({counts})" if counts else "") + ".")
    if results.get("exit_code") is not None:
        facts.append(f"Exit code {escape_md(results['exit_code'])}.")
    if results.get("interrupted"):
        facts.append("**The audit was interrupted: results are incomplete.**")
    lines += [" ".join(facts), ""]

    if checks:
        lines += ["| check | type | status | key figures |", "| --- | --- | --- | --- |"]
        for check in checks:
            lines.append(
                f"| {escape_md(check.get('id', ''), limit=80)} | {escape_md(check.get('type', ''), limit=60)} "
                f"| {_status(check.get('status'))} | {_figures(check)} |"
            )
        lines.append("")
    else:
        lines += ["_No check was run._", ""]

    failures = []
    warnings = []
    for check in checks:
        name = f"**{escape_md(check.get('id', ''), limit=80)}** ({escape_md(check.get('type', ''), limit=60)})"
        if check.get("status") == "error":
            failures.append(f"- {name}: error: {escape_md(check.get('error') or 'the check could not complete', limit=500)}")
        for finding in check.get("findings") or []:
            if not isinstance(finding, dict):
                continue
            if finding.get("status") in ("fail", "error"):
                failures.append(f"- {name}: {_finding_text(finding)}")
            elif finding.get("status") == "warn":
                warnings.append(f"- {name}: {_finding_text(finding)}")
    if failures:
        lines += ["### Failures and errors", "", *failures, ""]
    if warnings:
        lines += ["### Warnings", "", *warnings, ""]
    lines += compliance_lines(results, escape_md)  # cross-check findings, obligations left untested (#14)

    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    footer = [f"auditkit {escape_md(results.get('auditkit_version', ''), limit=40)}",
              f"seed {escape_md(results.get('seed', ''), limit=40)}"]
    for label, block in (("model", inputs.get("model")), ("data", inputs.get("data"))):
        digest = block.get("sha256") if isinstance(block, dict) else None
        if isinstance(digest, str) and digest:
            footer.append(f"{label} sha256 {escape_md(digest[:12], limit=12)}…")
    footer.append("every figure is in results.json")
    lines += ["<sub>" + " · ".join(footer) + "</sub>", ""]
    if results.get("run_id"):
        # Last line, so that `tail -n 1 summary.md` tells which run wrote it.
        lines += [f"Run id: {escape_md(results['run_id'], limit=64)}", ""]
    return "\n".join(lines)
