"""The report's front and back matter: cover fields, executive summary, limitations,
reproducibility and sign-off, all generated from results.json."""
from __future__ import annotations

import pytest
from markupsafe import escape

from auditkit.checks.fairness.group_fairness import _reading as fairness_reading
from auditkit.core.wording import Wording, wording_of
from auditkit.render.html import render_html, rerun_command, signoff_view
from auditkit.render.limitations import limitations
from auditkit.render.summary import SUMMARY_FINDINGS, executive_summary, finding_sentence
from results_factory import check, finding, metric, results

HOSTILE = '<script>alert("x")</script>&<b>'


def _audit() -> dict:
    perf = check("perf", "performance", {"roc_auc": metric(0.71, (0.69, 0.73), n=2000)},
                 [finding("roc_auc", 0.69, "fail", min=0.75, on="lower")], status="fail")
    data = check("data", "data_integrity", {"duplicate_rows": metric(150.0)},
                 [finding("duplicate_rows", 150.0, "warn", max=0,
                          reading="150 rows of the audit data repeat an earlier row exactly; the policy allows at most 0.")],
                 status="warn")
    shap = check("shap", "shap_importance", {"protected_share": metric(0.02)}, status="pass")
    shap["notes"] = ["explained a seeded sample of 2,000 of 20,150 rows"]
    skipped = check("flips", "counterfactual_fairness", {}, status="skipped")
    skipped["skip_reason"] = "no protected attribute is a model input"
    fair = check("parity", "group_fairness", {}, status="pass")
    fair["params"] = {"min_group_size": 30}
    fair["tables"] = {"groups": [{"attribute": "race", "group": "Other", "n": 12, "included": False},
                                 {"attribute": "race", "group": "White", "n": 900, "included": True}],
                      "disparities": [{"attribute": "race", "metric": "selection_rate_ratio"},
                                      {"attribute": "race", "metric": "true_positive_rate_difference"}]}
    return results([perf, data, shap, skipped, fair])


def test_summary_lists_failures_before_warnings_with_the_checks_own_readings():
    summary = executive_summary({**_audit(), "status": "fail"})
    assert [f.status for f in summary.findings] == ["fail", "warn"]
    assert summary.findings[1].sentence.startswith("150 rows of the audit data repeat")
    assert summary.verdict.startswith("The model does not meet this audit's policy")
    assert summary.counts == "Of 5 checks, 1 failed, 1 raised a warning, 2 passed and 1 did not apply."


def test_a_finding_without_reading_is_said_with_its_interval_sample_size_and_bound():
    audit = _audit()
    sentence = finding_sentence(audit["checks"][0], audit["checks"][0]["findings"][0])
    assert sentence == ("In check 'perf', roc_auc is 0.71 (95% CI 0.69–0.73; n = 2,000); the policy requires its "
                        "lower confidence bound at least 0.75.")


def test_summary_writes_out_a_bounded_number_of_findings_and_counts_the_rest():
    many = [finding(f"m{i}", float(i), "fail", max=0) for i in range(SUMMARY_FINDINGS + 3)]
    audit = results([check("c", "performance", {}, many, status="fail")])
    summary = executive_summary(audit)
    assert len(summary.findings) == SUMMARY_FINDINGS and summary.more == 3


def test_fairness_reading_uses_the_policys_words_for_people_and_decisions():
    words = wording_of({"report": {"subjects": "applicants", "decision_names": {"1": "declined", "0": "approved"},
                                   "label_names": {"1": "defaulted", "0": "repaid"}},
                        "inputs": {"data": {"favorable_decision": 0}}})
    result = {"params": {"confidence": 0.95}, "tables": {"disparities": [
        {"attribute": "race", "metric": "selection_rate_ratio", "rate": "selection_rate", "value": 0.71,
         "value_ci": [0.66, 0.77], "low_group": "Black", "high_group": "White"},
        {"attribute": "race", "metric": "true_positive_rate_difference", "rate": "true_positive_rate",
         "value": 0.24, "value_ci": [0.21, 0.31], "low_group": "White", "high_group": "Black"}]}}
    ratio = fairness_reading({"metric": "selection_rate_ratio[race]", "value": 0.71, "min": 0.8}, result, words)
    assert ratio == ("Applicants in race group 'Black' were approved at 0.71 times the rate of group 'White' "
                     "(95% CI 0.66-0.77); the policy requires at least 0.80.")
    gap = fairness_reading({"metric": "true_positive_rate_difference[race]", "value": 0.24, "max": 0.1}, result, words)
    assert "true positive rate (the share of applicants who defaulted that were declined)" in gap


def test_without_names_a_rate_still_says_what_it_counts():
    assert Wording().rate_gloss("false positive rate") == "the share of people with outcome 0 that were given decision 1"


def test_limitations_name_samples_skips_small_groups_caveats_comparisons_and_what_was_not_tested():
    parts = {part.title: part for part in limitations(_audit())}
    assert "shap: explained a seeded sample of 2,000 of 20,150 rows." in parts["Figures estimated on samples"].items
    assert any("flips" in item and "no protected attribute is a model input" in item
               for item in parts["Checks that did not run or complete"].items)
    assert parts["Groups too small to compare"].items == [
        "parity: group 'Other' of race has 12 rows, fewer than min_group_size 30: listed but not compared."]
    caveats = parts["Method caveats"].items
    assert any(item.startswith("shap_importance: SHAP values attribute") for item in caveats)
    assert any(item.startswith("group_fairness:") for item in caveats)
    assert not any(item.startswith("counterfactual_fairness:") for item in caveats)  # skipped: no caveat
    assert "2 group comparisons" in parts["Multiple comparisons"].items[0]
    untested = " ".join(parts["What this policy did not test"].items)
    assert "No local check ran" in untested and "adversarial" in untested


def test_limitations_read_the_catalogue_results_json_recorded_not_this_processs_registry():
    # A report re-drawn where another plugin is registered (or one is missing) says what the
    # original said: the run recorded which check types it could have used.
    audit = _audit()
    audit["engine"] = {"catalogue": [
        {"type": "performance", "family": "performance", "caveats": []},
        {"type": "shap_importance", "family": "explanations", "caveats": ["recorded caveat"]},
        {"type": "plugin_only", "family": "robustness", "caveats": []}]}
    parts = {part.title: part for part in limitations(audit)}
    assert parts["What this policy did not test"].items[:1] == ["No robustness check ran (plugin_only)."]
    untested = " ".join(parts["What this policy did not test"].items)
    assert "adversarial" not in untested and "local" not in untested
    assert parts["Method caveats"].items == ["shap_importance: recorded caveat"]
    # it is the limitations' source, not a fact of the run for "What was audited" to list
    assert "plugin_only" not in render_html(audit).split('id="limitations"')[0]


def test_signoff_rows_print_blank_lines_for_missing_names():
    rows = signoff_view({"signoff": {"prepared": {"name": "A. Auditor", "role": "analyst", "date": "2026-12-01"},
                                     "approved": None}})
    assert [r["label"] for r in rows] == ["Prepared by", "Reviewed by", "Approved by"]
    assert rows[0]["name"] == "A. Auditor" and rows[1]["name"] == "" and rows[2]["date"] == ""


def test_rerun_command_keeps_the_recorded_command_and_pins_the_seed():
    assert rerun_command({"command": "auditkit run p.yaml --only perf", "seed": 7}) == \
        "auditkit run p.yaml --only perf --seed 7"
    assert rerun_command({"inputs": {"policy_path": "policies/x.yaml"}, "seed": 3}) == \
        "auditkit run policies/x.yaml --seed 3"


def test_cover_summary_limitations_and_signoff_escape_every_policy_string():
    audit = _audit()
    audit["report"] = {"title": HOSTILE, "classification": HOSTILE, "intended_use": HOSTILE,
                       "model_name": HOSTILE, "model_owner": HOSTILE, "model_version": HOSTILE,
                       "signoff": {"prepared": {"name": HOSTILE, "role": HOSTILE, "date": HOSTILE}}}
    audit["checks"][1]["findings"][0]["reading"] = HOSTILE
    audit["checks"][3]["skip_reason"] = HOSTILE
    page = render_html(audit)
    assert "<script>" not in page and "<b>" not in page
    escaped = str(escape(HOSTILE))
    assert page.count(escaped) >= 8  # title, classification (twice), use, model, owner, signoff, reading, skip


@pytest.mark.parametrize("present", [True, False])
def test_cover_shows_the_policys_model_fields_only_when_given(present):
    audit = _audit()
    if present:
        audit["report"] = {"model_name": "Scorecard", "model_version": "3.1", "model_owner": "Credit Risk",
                           "intended_use": "consumer loans", "classification": "Confidential"}
    page = render_html(audit)
    cover = page[page.index('id="cover"'):page.index('id="contents"')]
    for text in ("Scorecard", "version 3.1", "Credit Risk", "consumer loans", "Confidential"):
        assert (text in cover) is present
    assert "Executive summary" in page and 'id="limitations"' in page and 'id="signoff"' in page
