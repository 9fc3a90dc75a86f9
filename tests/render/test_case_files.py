"""The report's case files: one page per explained row, gathering every local check about it."""
from __future__ import annotations

import copy

from auditkit.render.case_files import case_files
from auditkit.render.html import render_html
from auditkit.results.io import validate_results

EVIL = '<script>alert("x")</script>'


def _local_checks() -> list[dict]:
    base = {"family": "local", "status": "pass", "duration_s": 1.0, "params": {}, "findings": [], "metrics": {}, "error": None,
            "notes": []}
    explanations = {**base, "id": "why", "type": "local_explanations", "tables": {
        "explanations": [{"row": 12, "score": 0.81, "decision": 1, "base_value": -1.0, "lime_fidelity": 0.4,
                          "shap_lime_agreement": 0.9}],
        "attributions": [{"row": 12, "feature": "income", "value": 9000, "shap": 1.2, "lime_weight": 0.8, "rank": 1}],
        "reasons": [{"row": 12, "rank": 1, "feature": "income", "text": f"income = 9000, lower than 97% {EVIL}"}]},
        "plots": [{"kind": "waterfall", "title": "Row 12", "data": {"labels": ["income = 9000"], "values": [1.2],
                                                                   "base": -1.0, "output": 0.2, "row": 12}}]}
    counterfactuals = {**base, "id": "recourse", "type": "counterfactuals", "tables": {"counterfactuals": [
        {"row": 12, "found": True, "score_before": 0.81, "score_after": 0.42,
         "changes": {"income": [9000, 15500]}, "n_changed": 1, "distance": 0.2},
        {"row": 40, "found": False, "score_before": 0.97, "score_after": None, "changes": {}, "n_changed": None,
         "distance": None}]}, "plots": []}
    anchors = {**base, "id": "rules", "type": "anchors", "tables": {"anchors": [
        {"row": 12, "decision": 1, "rule": "IF income <= 20,000 THEN decision 1", "precision": 0.97, "coverage": 0.2}]},
        "plots": []}
    return [explanations, counterfactuals, anchors]


def _results(example_results):
    results = copy.deepcopy(example_results)
    results["checks"] = results["checks"] + _local_checks()
    results["inputs"]["data"]["favorable_decision"] = 0
    validate_results(results)
    return results


def test_each_explained_row_gets_one_case_gathering_every_local_check(example_results):
    results = _results(example_results)
    cases = case_files(results, results["checks"])
    assert [c["row"] for c in cases] == [12]  # the explained row; row 40 only had a counterfactual search
    twelve = cases[0]
    assert twelve["meaning"] == "unfavourable" and twelve["score"] == 0.81
    assert [r["feature"] for r in twelve["reasons"]] == ["income"]
    assert twelve["counterfactuals"][0]["changes"] == [{"feature": "income", "before": 9000, "after": 15500}]
    assert twelve["anchors"][0]["record"]["precision"] == 0.97
    assert {s["id"] for s in twelve["sources"]} == {"why", "recourse", "rules"}
    without_explanations = [c for c in results["checks"] if c["type"] != "local_explanations"]
    cases = case_files(results, without_explanations)
    assert [c["row"] for c in cases] == [12, 40]  # no explained rows: every row a local check covers
    assert cases[1]["counterfactuals"][0]["record"]["found"] is False


def test_case_pages_are_rendered_with_escaped_text_and_linked_from_the_contents(example_results):
    results = _results(example_results)
    results["checks"] = [c for c in results["checks"] if c["type"] != "local_explanations"] + \
        [c for c in results["checks"] if c["type"] == "local_explanations"]
    results["checks"][-1]["tables"]["explanations"].append({**results["checks"][-1]["tables"]["explanations"][0],
                                                            "row": 40})
    page = render_html(results)
    assert 'id="case-files"' in page and 'id="case-12"' in page and 'id="case-40"' in page
    assert 'href="#case-files"' in page
    assert EVIL not in page and "&lt;script&gt;" in page
    case12 = page[page.index('id="case-12"'):page.index('id="case-40"')]
    assert "Principal reasons" in case12 and ("15,500" in case12 or "15500" in case12)
    assert "IF income &lt;= 20,000 THEN decision 1" in case12
    assert "No actionable change" in page[page.index('id="case-40"'):]


def test_a_report_without_local_checks_has_no_case_files(example_results):
    assert 'id="case-files"' not in render_html(example_results)
