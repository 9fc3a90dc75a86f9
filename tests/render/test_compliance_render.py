"""The report's regulatory mapping and cross-check findings (templates/compliance.html.j2), their
marks in the case files and their lines in summary.md; every string from the data escaped (#14)."""
from __future__ import annotations

import copy

import markupsafe

from auditkit.render.html import render_html
from auditkit.render.md import render_markdown
from auditkit.results.io import validate_results

EVIL = '<script>alert("x")</script>'
EVIL_FEATURE = '=zip<b>region</b>'


def _with_local_checks(example_results, feature: str = "zip_region", proxies=(), regimes=()):
    results = copy.deepcopy(example_results)
    base = {"family": "local", "status": "pass", "duration_s": 1.0, "params": {}, "findings": [], "metrics": {},
            "error": None, "notes": [], "plots": []}
    results["checks"] += [
        {**base, "id": "why", "type": "local_explanations", "tables": {
            "explanations": [{"row": 12, "score": 0.81, "decision": 1, "base_value": -1.0, "lime_fidelity": 0.4,
                              "shap_lime_agreement": 0.9}],
            "reasons": [{"row": 12, "rank": 1, "feature": "income", "text": "income = 9000, lower than 97%"},
                        {"row": 12, "rank": 2, "feature": feature, "text": f"{feature} = R11, shared by 7%"}]}},
        {**base, "id": "recourse", "type": "counterfactuals", "tables": {"counterfactuals": [
            {"row": 12, "found": True, "score_before": 0.81, "score_after": 0.42,
             "changes": {feature: ["R11", "R02"]}, "n_changed": 1, "distance": 1.0}]}},
    ]
    results["inputs"]["data"]["favorable_decision"] = 0
    results["report"] = {**results.get("report", {}), "proxies": list(proxies), "regimes": list(regimes)}
    validate_results(results)
    return results


def test_no_regime_and_no_cross_finding_draws_no_part(example_results):
    page = render_html(example_results)
    assert 'id="compliance"' not in page and "Regulatory mapping" not in page
    assert "Cross-check findings" not in render_markdown(example_results)


def test_cross_findings_are_listed_and_marked_in_the_case_file(example_results):
    page = render_html(_with_local_checks(example_results, proxies=["zip_region"]))
    part = page[page.index('id="compliance"'):page.index('id="limitations"')]
    assert "Cross-check findings" in part and "Regulatory mapping" not in part  # no regime selected
    assert part.count("<tr>") == 2 + 1  # the reason and the counterfactual change, and the header row
    case = page[page.index('id="case-12"'):]
    assert "zip_region = R11, shared by 7% <span class=\"cross-flag\">(caution: declared proxy)</span>" in case
    assert "Relies on a protected attribute or a proxy" in case
    assert 'href="#compliance"' in page  # in the table of contents


def test_selected_regimes_are_mapped_with_statuses_and_untested_obligations_said(example_results):
    results = _with_local_checks(example_results, regimes=["ecoa_reg_b", "sr_11_7"])
    page = render_html(results)
    part = page[page.index('id="compliance"'):]
    assert "12 CFR 1002.9(a)(2) and (b)(2)" in part and "Model Validation: Outcomes Analysis" in part
    assert "Not tested by this policy." in part and "Not testable by a tool." in part
    assert "Left untested by this policy" in part and "EU AI Act" not in part
    summary = render_markdown(results)
    assert "### Regulatory mapping" in summary and "**SR 11-7**: " in summary
    assert "Sensitivity analysis (Model Validation: Evaluation of Conceptual Soundness" in summary


def test_hostile_feature_names_and_check_ids_are_escaped_in_the_new_parts(example_results):
    results = _with_local_checks(example_results, feature=EVIL_FEATURE, proxies=[EVIL_FEATURE],
                                 regimes=["ecoa_reg_b"])
    results["checks"][-2]["id"] = f"why{EVIL}"
    page = render_html(results)
    assert "<script>" not in page and "<b>region" not in page
    assert str(markupsafe.escape(EVIL_FEATURE)) in page[page.index('id="compliance"'):]
    summary = render_markdown(results)
    section = summary[summary.index("### Cross-check findings"):]
    assert "<script>" not in section and "<b>" not in section
    assert "&lt;script&gt;" in section and "\\=zip" not in section  # escaped mid-line; no formula at a line start
    assert all(not line.startswith(("=", "+", "@")) for line in section.splitlines())


def test_results_without_cross_findings_derive_them_and_written_ones_are_used_as_they_are(example_results):
    results = _with_local_checks(example_results, proxies=["zip_region"])
    assert "cross_findings" not in results
    assert "reason 2 for the decision cites zip\\_region" in render_markdown(results)  # markdown-escaped
    results["cross_findings"] = []  # the engine found none: the renderer does not second-guess it
    assert "Cross-check findings" not in render_markdown(results)
