"""cross_findings: a reason, counterfactual change or anchor rule that relies on a protected
attribute, a declared proxy or a feature proxy_detection flagged is found; nothing else is (#14)."""
from __future__ import annotations

import copy

from results_factory import check, finding, metric, results

from auditkit.engine.cross_checks import cross_findings, detected_proxies
from auditkit.results.io import validate_results


def _proxy_check(status="fail", bound=0.7):
    c = check("proxies", "proxy_detection", {"max_single_feature_auc[race]": metric(0.82)},
              [finding("max_single_feature_auc[race]", 0.82, status, max=bound)], status=status)
    c["tables"] = {"proxies": [
        {"attribute": "race", "feature": "zip_region", "auc": 0.82, "group": "Black", "mutual_information": 0.2},
        {"attribute": "race", "feature": "income", "auc": 0.63, "group": "Black", "mutual_information": 0.05},
        {"attribute": "sex", "feature": "income", "auc": 0.9, "group": "F", "mutual_information": 0.1}]}
    return c


def _reasons_check(features, check_id="why", status="pass"):
    c = check(check_id, "local_explanations", {"reason_code_coverage": metric(1.0)}, status=status)
    c["case_file"] = [{"role": "decision", "table": "explanations"}, {"role": "reasons", "table": "reasons"}]
    c["tables"] = {"reasons": [{"row": 6, "rank": i, "feature": f, "text": f"{f} = ..."}
                               for i, f in enumerate(features, start=1)]}
    return c


def _document(checks, protected=("sex", "race"), proxies=()):
    document = results(checks)
    document["inputs"]["data"].update(protected=list(protected), features=["income", "zip_region", "debt", "sex"])
    document["report"] = {"proxies": list(proxies)}
    return document


def test_a_reason_citing_a_feature_proxy_detection_flagged_is_found_with_the_figures():
    found = cross_findings(_document([_proxy_check(), _reasons_check(["income", "zip_region", "debt"])]))
    assert len(found) == 1
    (item,) = found
    assert (item["kind"], item["check_id"], item["row"], item["feature"], item["rank"]) == (
        "reason", "why", 6, "zip_region", 2)
    assert item["because"] == {"detected_proxy": [{"check_id": "proxies", "attribute": "race", "group": "Black",
                                                   "measure": "auc", "value": 0.82, "max": 0.7, "status": "fail"}]}
    assert "zip_region" in item["message"] and "predict race" in item["message"] and "0.82" in item["message"]


def test_only_features_above_the_missed_bound_of_their_attribute_are_flagged():
    flagged = detected_proxies([_proxy_check(bound=0.6)])
    # income predicts race with 0.63 > 0.6; its 0.9 for sex is under no failing threshold
    assert sorted(flagged) == ["income", "zip_region"] and [h["attribute"] for h in flagged["income"]] == ["race"]
    assert detected_proxies([_proxy_check(status="pass")]) == {}  # a passing check flags nothing


def test_protected_attributes_and_declared_proxies_are_found_without_proxy_detection():
    found = cross_findings(_document([_reasons_check(["sex", "debt", "zip_region"])], proxies=["zip_region"]))
    assert [(f["feature"], f["because"]) for f in found] == [
        ("sex", {"protected_attribute": True}), ("zip_region", {"declared_proxy": True})]


def test_counterfactual_changes_and_anchor_predicates_are_checked_too():
    recourse = check("cf", "counterfactuals", {"recourse_rate": metric(1.0)})
    recourse["case_file"] = [{"role": "recourse", "table": "counterfactuals"}]
    recourse["tables"] = {"counterfactuals": [{"row": 3, "found": True, "changes": {"zip_region": ["R11", "R02"],
                                                                                     "income": [1, 2]}}]}
    rules = check("rules", "anchors", {"anchor_precision": metric(0.97)})
    rules["case_file"] = [{"role": "rule", "table": "anchors"}]
    rules["tables"] = {"anchors": [
        {"row": 3, "predicates": ["income <= 30,000", "zip_region = R11"], "features": ["income", "zip_region"]},
        # written before anchors recorded `features`: read off the predicate text
        {"row": 4, "predicates": ["zip_region = R11", "debt > 0.4"]}]}
    found = cross_findings(_document([recourse, rules], proxies=["zip_region"]))
    assert [(f["kind"], f["row"], f["feature"]) for f in found] == [
        ("counterfactual", 3, "zip_region"), ("anchor", 3, "zip_region"), ("anchor", 4, "zip_region")]
    assert (found[0]["from"], found[0]["to"]) == ("R11", "R02")


def test_checks_that_did_not_complete_and_results_without_case_files_give_nothing():
    crashed = _reasons_check(["zip_region"], status="error")
    assert cross_findings(_document([crashed], proxies=["zip_region"])) == []
    old = _reasons_check(["zip_region"])
    del old["case_file"]  # results written before case_file: the type says the role
    assert len(cross_findings(_document([old], proxies=["zip_region"]))) == 1
    assert cross_findings(results([])) == []


def test_the_function_does_not_change_the_results_and_its_output_fits_the_schema():
    document = _document([_proxy_check(), _reasons_check(["zip_region", "sex"])])
    before = copy.deepcopy(document)
    found = cross_findings(document)
    assert document == before and len(found) == 2
    validate_results({**document, "cross_findings": found})
