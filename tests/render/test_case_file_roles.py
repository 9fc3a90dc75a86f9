"""Case files are gathered by the roles checks declare, not by check type (issue #17)."""
from __future__ import annotations

from auditkit.render.case_files import case_files


def _results(checks):
    return {"inputs": {"data": {"favorable_decision": 0}}, "checks": checks}


def test_a_new_check_type_contributes_to_case_files_through_its_declared_roles():
    explainer = {"id": "why", "type": "some_new_explainer", "status": "pass",
                 "case_file": [{"role": "decision", "table": "rows"}, {"role": "reasons", "table": "why"}],
                 "tables": {"rows": [{"row": 7, "score": 0.8, "decision": 1}],
                            "why": [{"row": 7, "rank": 1, "text": "debt_ratio = 0.6, higher than 90%"}]},
                 "plots": []}
    rules = {"id": "rules", "type": "another_new_check", "status": "pass",
             "case_file": [{"role": "rule", "table": "found"}],
             "tables": {"found": [{"row": 7, "rule": "IF debt_ratio > 0.5", "precision": 0.97, "coverage": 0.1},
                                  {"row": 99, "rule": "IF x", "precision": 1.0, "coverage": 0.2}]}, "plots": []}
    checks = [explainer, rules]
    (case,) = case_files(_results(checks), checks)  # row 99 has no decision record: not a case file
    assert case["row"] == 7 and case["decision"] == 1 and case["meaning"] == "unfavourable"
    assert [r["text"] for r in case["reasons"]] == ["debt_ratio = 0.6, higher than 90%"]
    assert [a["record"]["rule"] for a in case["anchors"]] == ["IF debt_ratio > 0.5"]


def test_a_check_that_declares_nothing_adds_nothing_even_with_a_row_column():
    check = {"id": "x", "type": "local_explanations_lookalike", "status": "pass", "case_file": [],
             "tables": {"explanations": [{"row": 1, "score": 0.1, "decision": 0}]}, "plots": []}
    assert case_files(_results([check]), [check]) == []


def test_results_written_before_case_file_declarations_keep_their_case_files():
    legacy = {"id": "why", "type": "local_explanations", "status": "pass",
              "tables": {"explanations": [{"row": 3, "score": 0.2, "decision": 0}],
                         "reasons": []}, "plots": []}
    (case,) = case_files(_results([legacy]), [legacy])
    assert case["row"] == 3 and case["meaning"] == "favourable"
