"""render.md: the Markdown summary for CI job pages."""
from __future__ import annotations

import re

import pytest

from auditkit.render.md import escape_md, render_markdown


def cells(row: str) -> list[str]:
    """The cells of one table row, split on unescaped pipes only."""
    assert row.startswith("| ") and row.endswith(" |"), row
    return [c.strip() for c in re.split(r"(?<!\\)\|", row[1:-1])]


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_heading_and_overall_status(example_results):
    text = render_markdown(example_results)
    assert text.splitlines()[0] == "## ❌ Credit model audit: FAIL"
    assert "**FAIL**: at least one check failed its thresholds." in text
    assert "4 checks (1 pass, 1 fail, 1 error, 1 skipped). Exit code 1." in text


def test_one_row_per_check_with_status_and_key_figures(example_results):
    rows = table_rows(render_markdown(example_results))
    assert rows[0] == "| check | type | status | key figures |"
    assert rows[1] == "| --- | --- | --- | --- |"
    body = [cells(r) for r in rows[2:]]
    assert [r[0] for r in body] == ["discrimination", "data-quality", "crashy", "lofo"]
    assert [r[2] for r in body] == ["✅ pass", "❌ fail", "⛔ error", "⏭️ skipped"]
    assert body[0][3] == r"accuracy = 0.76 (≥ 0.8, warn); roc\_auc = 0.81 (≥ 0.75)"
    assert body[1][3] == r"duplicate\_rows = 150 (≤ 0, fail)"
    assert body[2][3] == r"error: timed out after 600 s (timeout\_s)"
    assert body[3][3] == "skipped: predictions mode: this check needs to query a model"


def test_failures_errors_and_warnings_are_listed(example_results):
    text = render_markdown(example_results)
    failures = text[text.index("### Failures and errors"):text.index("### Warnings")]
    assert r"- **data-quality** (data\_integrity): duplicate\_rows = 150 &gt; 0" in failures
    assert r"- **crashy** (performance): error: timed out after 600 s (timeout\_s)" in failures
    assert "discrimination" not in failures
    assert r"- **discrimination** (performance): accuracy = 0.760 &lt; 0.80 (warning)" in text


def test_hostile_cells_cannot_break_the_table(example_results, edit_check):
    results = edit_check(example_results, 0, id="=cmd|' /C calc'!A0\nnext line | x", type="-perf|<b>")
    results = edit_check(results, 1, findings=[
        {"metric": "@SUM(1+1)|x", "value": 150, "max": 0, "status": "fail", "severity": "fail",
         "message": "line one\nline two | `code` [link](http://x) <script>"}])
    text = render_markdown(results)
    rows = table_rows(text)
    assert all(len(cells(r)) == 4 for r in rows), rows
    first = cells(rows[2])
    assert first[0] == r"\=cmd\|' /C calc'!A0 next line \| x"
    assert first[1] == r"\-perf\|&lt;b&gt;"
    assert cells(rows[3])[3].startswith(r"\@SUM(1+1)\|x = 150")
    bullet = next(line for line in text.splitlines() if "line one" in line)
    assert bullet.endswith(r"line one line two \| \`code\` \[link\](http://x) &lt;script&gt;")
    assert "<script>" not in text and "<b>" not in text


@pytest.mark.parametrize(("raw", "escaped"), [
    ("plain", "plain"),
    ("a|b", r"a\|b"),
    ("=1+1", r"\=1+1"),
    ("+1", r"\+1"),
    ("-1", r"\-1"),
    ("@x", r"\@x"),
    ("a\r\nb\tc", "a b c"),
    ("*bold* _it_", r"\*bold\* \_it\_"),
    ("<b>&", "&lt;b&gt;&amp;"),
    ("x" * 300, "x" * 199 + "…"),
])
def test_escape_md(raw, escaped):
    assert escape_md(raw) == escaped


def test_zero_checks(empty_results):
    text = render_markdown(empty_results)
    assert text.splitlines()[0] == "## ✅ Empty policy: PASS"
    assert "_No check was run._" in text
    assert table_rows(text) == []
    assert "### Failures" not in text


def test_interrupted_audit_says_so(example_results):
    example_results["interrupted"] = True
    assert "**The audit was interrupted: results are incomplete.**" in render_markdown(example_results)
