"""A diff as Markdown shaped for a pull-request comment or a CI job summary.

The regressions first (a table a reviewer reads without scrolling), then status changes and
checks added or removed, then every compared figure in a collapsed ``<details>`` table.
Every string from the inputs goes through :func:`auditkit.render.md.escape_md`.
"""
from __future__ import annotations

from typing import Any

from auditkit.render import diff_view as view
from auditkit.render.md import escape_md

_METRIC_COLUMNS = ("check", "metric", "baseline", "current", "change", "better", "tolerance", "overlap", "p",
                   "threshold", "verdict")
_HEADERS = {"check": "check", "metric": "metric", "baseline": "baseline", "current": "current", "change": "change",
            "better": "better", "tolerance": "tolerance", "overlap": "CIs overlap", "p": "p", "threshold": "threshold",
            "verdict": ""}


def _table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(_HEADERS.get(c, c) or "verdict" for c in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(escape_md(row.get(c, ""), limit=120) or " " for c in columns) + " |")
    return lines


def _runs(diff: dict[str, Any]) -> str:
    def one(run: dict[str, Any]) -> str:
        name = escape_md(run.get("policy_name") or "", limit=100)
        when = escape_md(run.get("started_at") or "", limit=40)
        return f"{name} ({when}, status {escape_md(run.get('status') or '')})"

    return f"**Baseline** {one(diff.get('baseline') or {})} → **current** {one(diff.get('current') or {})}."


def render_diff_markdown(diff: dict[str, Any]) -> str:
    """The diff as Markdown text."""
    icon = "❌" if diff.get("regressed") else "✅"
    lines = [f"## {icon} auditkit diff: {view.headline(diff)}", "", _runs(diff), ""]
    differ, same = view.input_lines(diff)
    if differ:
        lines += ["**Inputs that differ:**", "", *[f"- {escape_md(line, limit=400)}" for line in differ], ""]
    else:
        lines += ["**Inputs:** the same in both runs.", ""]
    if same:
        lines += [f"Same in both: {escape_md('; '.join(same), limit=1000)}.", ""]
    for note in diff.get("notes") or []:
        lines += [f"> **Note:** {escape_md(note, limit=400)}", ""]

    regressions = view.regression_rows(diff)
    by_status = view.status_regressions(diff)
    if regressions or by_status:
        lines += [f"### Regressions ({len(regressions) + len(by_status)})", ""]
        if regressions:
            lines += [*_table(regressions, ("check", "metric", "baseline", "current", "change", "better", "tolerance",
                                            "overlap", "p", "threshold")), ""]
        lines += [f"- {escape_md(r['text'], limit=300)}" for r in by_status] + ([""] if by_status else [])

    changes = view.status_changes(diff)
    if changes:
        lines += ["### Check statuses that changed", "",
                  *_table(changes, ("check", "type", "baseline", "current", "worse")), ""]
    for change, title in (("added", "Checks added"), ("removed", "Checks removed"),
                          ("type changed", "Checks whose type changed (not compared)")):
        entries = view.checks_by_change(diff, change)
        if entries:
            lines += [f"### {title}", "",
                      *[f"- **{escape_md(e['check'], limit=80)}** ({escape_md(e['type'], limit=60)}), "
                        f"{'now ' if change == 'added' else 'was '}{escape_md(e['status'])}" for e in entries], ""]

    rows, left_out = view.all_rows(diff)
    summary = diff.get("summary") or {}
    lines += ["<details>",
              f"<summary>All {summary.get('metrics_compared', 0)} figures compared "
              f"({summary.get('metrics_changed', 0)} changed: {summary.get('metrics_worse', 0)} worse, "
              f"{summary.get('metrics_better', 0)} better)</summary>", ""]
    lines += [*_table(rows, _METRIC_COLUMNS), ""] if rows else ["_No figure in common._", ""]
    if left_out:
        lines += [f"_and {left_out} more in diff.json_", ""]
    lines += ["</details>", ""]
    lines += [f"<sub>auditkit {escape_md(diff.get('auditkit_version', ''), limit=40)} · "
              f"{escape_md(view.settings_line(diff), limit=600)} · p: "
              f"{escape_md((diff.get('settings') or {}).get('test_method', ''), limit=300)}</sub>", ""]
    return "\n".join(lines)
