"""diff_results on small results documents: regressions, tolerances, statuses, inputs."""
from __future__ import annotations

from pathlib import Path

import pytest

from auditkit.compare.diff import DiffOptions, diff_results
from auditkit.results.io import ResultsFileError, read_results
from auditkit.compare.tolerance import parse_tolerances
from results_factory import check, finding, metric, results, write


def run_diff(tmp_path: Path, before: dict, after: dict, *tolerances: str, alpha: float | None = None) -> dict:
    base = read_results(write(tmp_path, "base.json", before))
    cur = read_results(write(tmp_path, "cur.json", after))
    return diff_results(base, cur, DiffOptions(parse_tolerances(tolerances), alpha))


def entry(diff: dict, name: str) -> dict:
    (found,) = [m for m in diff["metrics"] if m["metric"] == name]
    return found


def perf(auc: float, *, ci: tuple[float, float] | None = None, se: float | None = None, status: str = "pass",
         threshold: dict | None = None) -> dict:
    extra = {"se": se} if se is not None else {}
    findings = [finding("roc_auc", auc, status, **threshold)] if threshold else []
    return check("perf", "performance", {"roc_auc": metric(auc, ci, **extra), "rows_note": metric(5.0)},
                 findings, status=status)


def test_identical_runs_have_no_regression(tmp_path):
    doc = results([perf(0.8, ci=(0.78, 0.82))])
    diff = run_diff(tmp_path, doc, doc)
    assert (diff["regressed"], diff["exit_code"], diff["regressions"]) == (False, 0, [])
    assert diff["summary"]["metrics_compared"] == 2 and diff["summary"]["metrics_changed"] == 0
    assert diff["inputs"]["differ"] == []


def test_a_worsening_beyond_the_tolerance_is_a_regression_named_with_its_change(tmp_path):
    diff = run_diff(tmp_path, results([perf(0.80)]), results([perf(0.77)]), "0.02")
    m = entry(diff, "roc_auc")
    assert (m["direction"], m["direction_from"], m["worse"], m["regression"]) == ("higher", "table", True, True)
    assert m["change"] == pytest.approx(-0.03, abs=1e-15)
    assert diff["exit_code"] == 1
    assert diff["regressions"] == [{"check": "perf", "metric": "roc_auc", "kinds": ["value"],
                                    "text": "perf: roc_auc fell from 0.8 to 0.77 (-0.03; higher is better; "
                                            "tolerance 0.02)"}]


def test_a_worsening_within_the_tolerance_is_not_a_regression(tmp_path):
    diff = run_diff(tmp_path, results([perf(0.80)]), results([perf(0.79)]), "0.02")
    m = entry(diff, "roc_auc")
    assert (m["worse"], m["beyond_tolerance"], m["regression"]) == (True, False, False)
    assert diff["exit_code"] == 0


def test_an_improvement_is_never_a_regression(tmp_path):
    diff = run_diff(tmp_path, results([perf(0.70)]), results([perf(0.90)]))
    assert (entry(diff, "roc_auc")["worse"], diff["exit_code"]) == (False, 0)
    assert diff["summary"]["metrics_better"] == 1


def test_a_metric_without_a_direction_changes_but_never_regresses(tmp_path):
    diff = run_diff(tmp_path, results([perf(0.8)]), results([perf(0.8)]) | {"checks": [
        check("perf", "performance", {"roc_auc": metric(0.8), "rows_note": metric(9.0)})]})
    m = entry(diff, "rows_note")
    assert (m["direction"], m["change"], m["worse"], m["regression"]) == (None, 4.0, None, False)
    assert diff["exit_code"] == 0


def test_a_threshold_gives_the_direction_of_a_metric_the_table_does_not_know(tmp_path):
    before = results([check("drivers", "permutation_importance", {"importance[x]": metric(0.001)},
                            [finding("importance[x]", 0.001, "pass", max=0.01)])])
    after = results([check("drivers", "permutation_importance", {"importance[x]": metric(0.005)},
                           [finding("importance[x]", 0.005, "pass", max=0.01)])])
    m = entry(run_diff(tmp_path, before, after), "importance[x]")
    assert (m["direction"], m["direction_from"], m["regression"]) == ("lower", "threshold", True)


def test_a_finding_that_got_worse_is_a_regression_whatever_the_tolerance(tmp_path):
    before = results([perf(0.751, threshold={"min": 0.75})])
    after = results([perf(0.749, status="fail", threshold={"min": 0.75})])
    diff = run_diff(tmp_path, before, after, "0.5")
    m = entry(diff, "roc_auc")
    assert (m["baseline_finding"], m["current_finding"], m["finding_worse"], m["value_regression"]) == \
        ("pass", "fail", True, False)
    assert diff["regressions"][0]["kinds"] == ["finding"]
    assert "threshold verdict pass → fail" in diff["regressions"][0]["text"]
    assert diff["checks"][0]["status_worse"] is True


def test_a_check_that_now_errors_is_a_regression_by_status(tmp_path):
    after = results([check("perf", "performance", {}, status="error")])
    diff = run_diff(tmp_path, results([perf(0.8)]), after)
    assert diff["regressions"] == [{"check": "perf", "metric": None, "kinds": ["status"],
                                    "text": "perf: status pass → error"}]
    assert entry(diff, "roc_auc")["presence"] == "removed"


def test_checks_added_or_removed_are_listed_not_regressions(tmp_path):
    extra = check("integrity", "data_integrity", {"duplicate_rows": metric(3.0)}, status="fail")
    diff = run_diff(tmp_path, results([perf(0.8), extra]), results([perf(0.8), check("new", "ale", {})]))
    changes = {c["id"]: c["change"] for c in diff["checks"]}
    assert changes == {"perf": "same", "new": "added", "integrity": "removed"}
    assert (diff["summary"]["checks_added"], diff["summary"]["checks_removed"], diff["exit_code"]) == (1, 1, 0)


def test_a_check_whose_type_changed_is_not_compared(tmp_path):
    diff = run_diff(tmp_path, results([perf(0.8)]),
                    results([check("perf", "calibration", {"roc_auc": metric(0.1)})]))
    assert diff["checks"][0]["change"] == "type changed"
    assert diff["metrics"] == []


def test_intervals_and_the_test_of_the_difference_are_reported(tmp_path):
    diff = run_diff(tmp_path, results([perf(0.80, ci=(0.78, 0.82), se=0.01)]),
                    results([perf(0.70, ci=(0.68, 0.72), se=0.01)]))
    m = entry(diff, "roc_auc")
    assert m["ci_overlap"] is False
    assert m["test"]["se_from"] == "bootstrap"
    assert m["test"]["p_value"] < 1e-6
    assert "the intervals do not overlap; p < 0.001" in diff["regressions"][0]["text"]


def test_with_alpha_a_worsening_must_be_significant(tmp_path):
    noisy = run_diff(tmp_path, results([perf(0.80, se=0.05)]), results([perf(0.79, se=0.05)]), alpha=0.05)
    assert (entry(noisy, "roc_auc")["significant"], noisy["exit_code"]) == (False, 0)
    clear = run_diff(tmp_path, results([perf(0.80, se=0.001)]), results([perf(0.79, se=0.001)]), alpha=0.05)
    assert (entry(clear, "roc_auc")["significant"], clear["exit_code"]) == (True, 1)
    # an exact figure (no interval) changed for certain
    exact = run_diff(tmp_path, results([perf(0.80)]), results([perf(0.79)]), alpha=0.05)
    assert (entry(exact, "roc_auc")["significant"], exact["exit_code"]) == (True, 1)


def test_inputs_that_differ_are_named(tmp_path):
    diff = run_diff(tmp_path, results([perf(0.8)], packages={"numpy": "2.0.0", "shap": "0.44"}),
                    results([perf(0.8)], model_sha="b" * 64, seed=2, packages={"numpy": "2.1.0", "shap": "0.44"}))
    differ = {item["input"]: (item["baseline"], item["current"]) for item in diff["inputs"]["differ"]}
    assert differ == {"model": ("a" * 64, "b" * 64), "seed": (1, 2)}
    assert [s["input"] for s in diff["inputs"]["same"]] == ["data", "policy", "rows audited", "auditkit", "python"]
    assert diff["inputs"]["packages"] == [{"package": "numpy", "baseline": "2.0.0", "current": "2.1.0"}]
    assert diff["inputs"]["packages_same"] == 1


def test_a_results_file_of_another_schema_version_is_refused_by_name(tmp_path):
    doc = results([perf(0.8)]) | {"schema_version": 2, "auditkit_version": "9.0.0"}
    path = write(tmp_path, "future.json", doc)
    with pytest.raises(ResultsFileError) as caught:
        read_results(path, role="baseline")
    assert str(caught.value) == (f"baseline results file {path} has schema_version 2 (written by auditkit 9.0.0); "
                                 "this auditkit reads schema_version 1")


def test_a_file_that_is_not_a_results_file_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"checks": [{"id": 1}], "schema_version": 1}')
    with pytest.raises(ResultsFileError, match="is not a valid auditkit results.json: at"):
        read_results(path, role="current")
    path.write_text("not json")
    with pytest.raises(ResultsFileError, match="is not readable JSON"):
        read_results(path, role="current")
    with pytest.raises(ResultsFileError, match="current results file not found"):
        read_results(tmp_path / "missing.json", role="current")
