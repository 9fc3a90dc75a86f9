"""regulatory_mapping: per obligation, the checks of an audit that bear on it with their status,
or "not tested by this policy"; a pure function of results.json (#14)."""
from __future__ import annotations

import copy

from results_factory import check, finding, metric, results

from auditkit.regulatory.mapping import regulatory_mapping, untested

CATALOGUE = {"version": 1, "regimes": {"toy": {"name": "Toy regime", "short": "Toy", "instrument": "Toy Act", "obligations": [
    {"id": "toy.accuracy", "citation": "s. 1", "title": "Accuracy", "statement": "Be accurate.",
     "checks": [{"type": "performance"}]},
    {"id": "toy.intersections", "citation": "s. 2", "title": "Intersections", "statement": "Compare intersections.",
     "checks": [{"type": "impact_ratio", "metrics": ["impact_ratio[* & *]"], "note": "an intersection"}]},
    {"id": "toy.benchmark", "citation": "s. 3", "title": "Benchmark", "statement": "Compare with a baseline.",
     "checks": [{"type": "*", "relative": True}]},
    {"id": "toy.oversight", "citation": "s. 4", "title": "Oversight", "statement": "Let people decide.",
     "testable": False, "why": "people, not figures"},
    {"id": "toy.reasons", "citation": "s. 5", "title": "Reasons", "statement": "Give reasons.",
     "checks": [{"type": "local_explanations"}], "cross_findings": ["reason"]},
]}}}


def _by_id(document, **kwargs):
    mapping = regulatory_mapping(document, ["toy"], catalogue=CATALOGUE, **kwargs)
    return {o["id"]: o for o in mapping[0]["obligations"]}, mapping


def test_a_check_of_a_listed_type_addresses_the_obligation_with_its_status():
    document = results([check("auc", "performance", {"roc_auc": metric(0.8)}, status="fail"),
                        check("auc2", "performance", {"roc_auc": metric(0.9)})])
    obligations, mapping = _by_id(document)
    accuracy = obligations["toy.accuracy"]
    assert [(c["id"], c["status"]) for c in accuracy["checks"]] == [("auc", "fail"), ("auc2", "pass")]
    assert accuracy["state"] == "tested" and accuracy["status"] == "fail"  # the worst of its checks
    assert mapping[0]["counts"] == {"tested": 1, "not_completed": 0, "not_tested": 3, "not_testable": 1}


def test_an_obligation_no_check_addresses_is_not_tested_and_listed_as_such():
    obligations, mapping = _by_id(results([check("auc", "performance", {"roc_auc": metric(0.8)})]))
    assert obligations["toy.reasons"]["state"] == "not_tested" and obligations["toy.reasons"]["checks"] == []
    assert [o["id"] for o in untested(mapping)] == ["toy.intersections", "toy.benchmark", "toy.reasons"]


def test_an_untestable_obligation_maps_no_check_and_says_why():
    obligations, _ = _by_id(results([check("auc", "performance", {"roc_auc": metric(0.8)})]))
    oversight = obligations["toy.oversight"]
    assert oversight["state"] == "not_testable" and oversight["why"] == "people, not figures"
    assert oversight["checks"] == [] and not oversight["testable"]


def test_metric_patterns_require_the_check_to_have_reported_a_matching_metric():
    single = check("ir", "impact_ratio", {"impact_ratio[sex]": metric(0.9)})
    both = check("ir2", "impact_ratio", {"impact_ratio[sex]": metric(0.9), "impact_ratio[sex & race]": metric(0.7)},
                 status="fail")
    obligations, _ = _by_id(results([single, both]))
    addressed = obligations["toy.intersections"]["checks"]
    assert [(c["id"], c["metrics"], c["note"]) for c in addressed] == [("ir2", ["impact_ratio[sex & race]"],
                                                                        "an intersection")]


def test_a_check_that_did_not_complete_counts_by_type_and_leaves_the_obligation_not_completed():
    crashed = check("auc", "performance", {}, status="error")
    obligations, mapping = _by_id(results([crashed]))
    assert obligations["toy.accuracy"]["state"] == "not_completed" and obligations["toy.accuracy"]["status"] == "error"
    assert "toy.accuracy" in [o["id"] for o in untested(mapping)]


def test_a_relative_entry_needs_a_finding_with_a_baseline_bound():
    plain = check("auc", "performance", {"roc_auc": metric(0.8)}, [finding("roc_auc", 0.8, "pass", min=0.7)])
    relative = check("auc2", "performance", {"roc_auc": metric(0.8)},
                     [finding("roc_auc", 0.8, "pass", max_decrease=0.02, baseline=0.81, change=-0.01)])
    obligations, _ = _by_id(results([plain, relative]))
    assert [c["id"] for c in obligations["toy.benchmark"]["checks"]] == ["auc2"]


def test_cross_findings_of_the_listed_kinds_bear_on_the_obligation():
    document = results([check("why", "local_explanations", {"reason_code_coverage": metric(1.0)})])
    cross = [{"kind": "reason", "row": 1, "feature": "zip"}, {"kind": "anchor", "row": 1, "feature": "zip"}]
    obligations, _ = _by_id(document, cross_findings=cross)
    assert obligations["toy.reasons"]["cross_findings"] == cross[:1]


def test_regimes_default_to_the_results_report_and_unknown_ones_are_left_out():
    document = results([check("auc", "performance", {"roc_auc": metric(0.8)})])
    assert regulatory_mapping(document, catalogue=CATALOGUE) == []  # no report.regimes: nothing selected
    document["report"] = {"regimes": ["toy", "no_such_regime"]}
    mapping = regulatory_mapping(document, catalogue=CATALOGUE)
    assert [r["key"] for r in mapping] == ["toy"]


def test_the_mapping_does_not_change_the_results():
    document = results([check("ir", "impact_ratio", {"impact_ratio[a & b]": metric(0.9)})])
    before = copy.deepcopy(document)
    regulatory_mapping(document, ["toy"], catalogue=CATALOGUE)
    assert document == before


def test_the_packaged_regimes_map_the_demo_checks():
    """The shipped file, on a results document shaped like the demo's: LL144's impact ratios come
    from impact_ratio (every category) and group_fairness's selection_rate_ratio (the smallest)."""
    document = results([
        check("ir", "impact_ratio", {"impact_ratio[sex]": metric(0.74), "impact_ratio[sex & race]": metric(0.6)},
              status="fail"),
        check("rates", "group_fairness", {"selection_rate_ratio[sex]": metric(0.74)})])
    mapping = regulatory_mapping(document, ["nyc_ll144"])
    obligations = {o["id"]: o for o in mapping[0]["obligations"]}
    assert [(c["id"], c["status"]) for c in obligations["nyc_ll144.impact_ratios"]["checks"]] == [
        ("ir", "fail"), ("rates", "info")]  # no threshold on selection_rate_ratio: reported, not assessed
    assert [c["id"] for c in obligations["nyc_ll144.intersectional"]["checks"]] == ["ir"]
    assert obligations["nyc_ll144.scoring_rates"]["state"] == "not_tested"
    assert obligations["nyc_ll144.independent_audit"]["state"] == "not_testable"


def test_a_check_bearing_through_some_metrics_shows_their_status_not_the_whole_checks():
    both = check("ir", "impact_ratio", {"impact_ratio[sex]": metric(0.7), "impact_ratio[sex & race]": metric(0.9)},
                 [finding("impact_ratio[sex]", 0.7, "fail", min=0.8),
                  finding("impact_ratio[sex & race]", 0.9, "pass", min=0.8)], status="fail")
    obligations, _ = _by_id(results([both]))
    (addressed,) = obligations["toy.intersections"]["checks"]
    assert (addressed["status"], addressed["check_status"]) == ("pass", "fail")
    unassessed = check("ir2", "impact_ratio", {"impact_ratio[a & b]": metric(0.9)}, status="info")
    obligations, _ = _by_id(results([unassessed]))
    assert obligations["toy.intersections"]["checks"][0]["status"] == "info"  # reported, no threshold on it
