"""The diff drawn as Markdown (pull-request comment) and HTML (a section the report can include)."""
from __future__ import annotations

import json
from pathlib import Path

from auditkit.compare.diff import DiffOptions, diff_results
from auditkit.results.io import read_results
from auditkit.compare.tolerance import parse_tolerances
from auditkit.render.diff_html import render_diff_html, render_diff_section
from auditkit.render.diff_md import render_diff_markdown
from results_factory import check, finding, metric, results, write

EVIL = "<script>alert(1)</script>|**x**"


def planted(tmp_path: Path) -> dict:
    before = results([
        check("parity", "group_fairness", {"selection_rate_ratio[race]": metric(0.74, (0.70, 0.78), se=0.02),
                                           "selection_rate_ratio[sex]": metric(0.98, (0.95, 1.0), se=0.01)},
              [finding("selection_rate_ratio[race]", 0.74, "pass", min=0.5)]),
        check("perf", "performance", {"roc_auc": metric(0.82, (0.81, 0.83), se=0.005)}),
        check("gone", "data_integrity", {"rows": metric(100.0)})])
    after = results([
        check("parity", "group_fairness", {"selection_rate_ratio[race]": metric(0.58, (0.54, 0.62), se=0.02),
                                           "selection_rate_ratio[sex]": metric(0.985, (0.95, 1.0), se=0.01)},
              [finding("selection_rate_ratio[race]", 0.58, "pass", min=0.5)]),
        check("perf", "performance", {"roc_auc": metric(0.815, (0.80, 0.83), se=0.005)}),
        check(EVIL, "ale", {"ale_range[x]": metric(1.0)})], model_sha="b" * 64)
    return diff_results(read_results(write(tmp_path, "b.json", before)), read_results(write(tmp_path, "c.json", after)),
                        DiffOptions(parse_tolerances(["0.02"])))


def test_markdown_puts_the_regressions_first_and_the_rest_in_a_collapsed_table(tmp_path):
    text = render_diff_markdown(planted(tmp_path))
    assert text.startswith("## ❌ auditkit diff: 1 regression since the baseline\n")
    regressions = text.index("### Regressions (1)")
    details = text.index("<details>")
    assert regressions < details < text.index("</details>")
    row = "| parity | selection\\_rate\\_ratio\\[race\\] | 0.74 \\[0.70, 0.78\\] | 0.58 \\[0.54, 0.62\\] | \\-0.16 |"
    assert row in text[regressions:details]
    assert "roc\\_auc" not in text[regressions:details]  # within the tolerance: only in the collapsed table
    assert "roc\\_auc" in text[details:]
    assert "<summary>All 3 figures compared (3 changed: 2 worse, 1 better)</summary>" in text
    assert "- model: sha256 aaaaaaaaaaaa… (m.onnx) → sha256 bbbbbbbbbbbb… (m.onnx)" in text
    assert "### Checks added" in text and "### Checks removed" in text and "**gone** (data\\_integrity), was pass" in text


def test_markdown_escapes_names_from_the_inputs(tmp_path):
    text = render_diff_markdown(planted(tmp_path))
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\|\\*\\*x\\*\\*" in text


def test_the_html_section_is_one_escaped_section_with_a_collapsed_table(tmp_path):
    section = str(render_diff_section(planted(tmp_path)))
    assert section.lstrip().startswith('<section class="diff" id="diff">')
    assert section.rstrip().endswith("</section>")
    assert "<script>" not in section and "&lt;script&gt;" in section
    assert '<details class="diff-all">' in section
    assert "<h3>Regressions (1)</h3>" in section
    page = render_diff_html(planted(tmp_path))
    assert page.startswith("<!DOCTYPE html>") and section.strip() in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_the_json_diff_is_plain_json(tmp_path):
    diff = planted(tmp_path)
    again = json.loads(json.dumps(diff, allow_nan=False))
    assert again["regressions"][0]["metric"] == "selection_rate_ratio[race]"
    assert again["summary"] == {"checks_compared": 2, "checks_added": 1, "checks_removed": 1,
                                "checks_status_changed": 0, "metrics_compared": 3, "metrics_changed": 3,
                                "metrics_worse": 2, "metrics_better": 1, "regressions": 1}
