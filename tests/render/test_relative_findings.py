"""A finding with a bound relative to a baseline run, in every report: both verdicts shown (#16)."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from auditkit.render.format import format_threshold
from auditkit.render.html import render_html
from auditkit.render.junit import render_junit
from auditkit.render.md import render_markdown
from auditkit.results.io import validate_results

RELATIVE = {
    "metric": "selection_rate_ratio[race]", "value": 0.5789, "status": "fail", "severity": "fail",
    "min": 0.5, "on": "value", "max_decrease": 0.02, "baseline": 0.7438, "change": -0.1649,
    "absolute_status": "pass", "relative_status": "fail",
    "message": "selection_rate_ratio[race] = 0.5789 >= 0.5 (absolute: pass); fell by 0.1649 from baseline 0.7438 "
               "> 0.02 (max_decrease) (relative: fail)",
}


@pytest.fixture
def with_relative(example_results: dict[str, Any]) -> dict[str, Any]:
    results = copy.deepcopy(example_results)
    check = results["checks"][0]
    check["status"] = "fail"
    check["findings"] = [RELATIVE, {**RELATIVE, "metric": "selection_rate_ratio[sex]", "value": 0.99, "status": "pass",
                                    "baseline": None, "change": None, "relative_status": "skipped",
                                    "relative_note": "the baseline has no check 'x'"}]
    del check["findings"][1]["baseline"], check["findings"][1]["change"]
    results["status"] = "fail"
    results["inputs"]["baseline"] = {"path": "reports/v2/results.json", "sha256": "b" * 64}
    validate_results(results)  # the schema accepts the relative fields and inputs.baseline
    return results


def test_the_threshold_text_names_the_relative_bound_and_the_baseline_figure():
    assert format_threshold(RELATIVE) == "≥ 0.5 and fall ≤ 0.02 from 0.7438"
    assert format_threshold({"max_increase": 0.01}) == "rise ≤ 0.01 from the baseline"


def test_html_shows_baseline_change_and_both_verdicts(with_relative):
    html = render_html(with_relative)
    assert "<th>Absolute</th><th>Relative</th>" in html
    assert '<td class="num">0.7438</td>' in html and '<td class="num">-0.1649</td>' in html
    assert '<span class="badge badge-skipped badge-small">skipped</span> <span class="note">the baseline has no ' \
           "check &#39;x&#39;</span>" in html
    assert "reports/v2/results.json" in html  # the baseline run among the inputs


def test_html_without_relative_bounds_has_no_relative_columns(example_results):
    assert "<th>Relative</th>" not in render_html(example_results)


def test_markdown_and_junit_carry_both_verdicts(with_relative):
    markdown = render_markdown(with_relative)
    assert "≥ 0.5 and fall ≤ 0.02 from 0.7438, fail" in markdown
    assert "(absolute: pass); fell by 0.1649 from baseline 0.7438 &gt; 0.02 (max\\_decrease) (relative: fail)" in markdown
    junit = render_junit(with_relative)
    assert "(absolute: pass); fell by 0.1649 from baseline 0.7438 &gt; 0.02 (max_decrease) (relative: fail)" in junit
