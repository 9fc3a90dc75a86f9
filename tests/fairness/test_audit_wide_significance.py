"""Fairness verdicts with multiplicity and power, through the CLI (#18 part 3).

Planted ground truth: against a reference group selected at 0.5, a large group (3,000 rows)
and a tiny one (20 rows) are both selected at 0.35, a ratio of 0.7. The large group's
disparity is significant after the audit-wide correction; the tiny group's is not, and it is
flagged as too small to detect a four-fifths disparity. A second attribute passes the
four-fifths rule only because its reference group is tiny: the pass says so.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.multitest import multipletests

from support import write_policy

from auditkit.results.io import validate_results
from auditkit.results.model import CheckResult, Finding, Metric
from auditkit.results.multiplicity import apply_statistics


def _planted(directory: Path) -> Path:
    rng = np.random.default_rng(18)
    rows: list[dict[str, Any]] = []
    for group, n, selected in (("R", 3000, 1500), ("Big", 3000, 1050), ("Tiny", 20, 7)):
        for i in range(n):
            rows.append({"grp": group, "decision": int(i < selected)})
    frame = pd.DataFrame(rows)
    # site: 20 rows of group R (9 selected, 11 not) form the tiny site "Small"; the rest "Main"
    small = list(range(0, 9)) + list(range(1500, 1511))
    frame["site"] = "Main"
    frame.loc[small, "site"] = "Small"
    frame["score"] = np.where(frame["decision"] == 1, 0.8, 0.2)
    frame["outcome"] = rng.integers(0, 2, len(frame))
    frame.insert(0, "id", np.arange(len(frame)))
    path = directory / "planted.csv"
    frame.to_csv(path, index=False)
    return path


def _policy(directory: Path, data: Path, correction: str) -> Path:
    return write_policy(directory, {
        "version": 1, "name": "planted disparity", "seed": 1,
        "model": {"format": "predictions", "score_column": "score", "prediction_column": "decision",
                  "positive_class": 1},
        "data": {"path": str(data), "target": "outcome", "protected": ["grp", "site"], "ignore": ["id"],
                 "favorable_label": 1},
        "checks": [
            {"id": "rates", "type": "group_fairness",
             "params": {"attributes": ["grp", "site"], "min_group_size": 10, "bootstrap": 0},
             "thresholds": {"selection_rate_ratio": {"min": 0.8}}},
            {"id": "ll144", "type": "impact_ratio", "params": {"attributes": ["grp", "site"], "intersections": []},
             "thresholds": {"impact_ratio": {"min": 0.8}}},
        ],
        "statistics": {"multiple_comparisons": correction},
        "report": {"formats": ["json", "html"], "output_dir": str(directory / "out")},
    }, name=f"policy_{correction}.yaml")


def _comparison(check: dict[str, Any], attribute: str, group: str, rate: str = "selection_rate") -> dict[str, Any]:
    return next(r for r in check["tables"]["comparisons"]
                if r["attribute"] == attribute and r["group"] == group and r["rate"] == rate)


@pytest.fixture(scope="module")
def holm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    from typer.testing import CliRunner

    from auditkit.cli import app

    directory = tmp_path_factory.mktemp("planted")
    policy = _policy(directory, _planted(directory), "holm")
    out = directory / "out"
    # two workers: each check in its own process, so the family is joined only by the engine
    result = CliRunner().invoke(app, ["run", str(policy), "--out", str(out), "--workers", "2"], catch_exceptions=False)
    return result.exit_code, json.loads((out / "results.json").read_text()), out


def test_family_spans_every_fairness_check_and_equals_statsmodels_holm(holm_run):
    code, results, _ = holm_run
    assert code == 1  # the planted disparity fails the four-fifths rule
    validate_results(results)
    checks = {c["id"]: c for c in results["checks"]}
    raw, adjusted = [], []
    for check_id in ("rates", "ll144"):  # the engine's order: the policy's
        for record in checks[check_id]["tables"]["comparisons"]:
            if record["p_value"] is not None:
                raw.append(record["p_value"])
                adjusted.append(record["p_adjusted"])
    per_check = [sum(r["p_value"] is not None for r in checks[c]["tables"]["comparisons"]) for c in ("rates", "ll144")]
    assert min(per_check) >= 3  # both checks contribute (selection, TPR, FPR; selection and scoring)
    assert results["statistics"]["family_size"] == len(raw) == sum(per_check)
    assert results["statistics"]["checks"] == ["rates", "ll144"]
    assert results["statistics"]["multiple_comparisons"] == "holm"
    # 1e-12: the same products and running maxima of the same floats
    assert_allclose(adjusted, multipletests(raw, method="holm")[1], rtol=1e-12, atol=1e-15)
    metric = checks["rates"]["metrics"]["selection_rate_ratio[grp]"]
    assert metric["correction"] == "holm" and metric["family_size"] == len(raw)
    behind = _comparison(checks["rates"], metric["comparison"]["attribute"], metric["comparison"]["group"])
    assert metric["p_value"] == behind["p_value"] and metric["p_adjusted"] == behind["p_adjusted"]
    assert "two-proportion z test" in metric["method"]


def test_large_group_disparity_is_significant_after_correction_and_the_tiny_group_with_the_same_ratio_is_not(holm_run):
    _, results, _ = holm_run
    for check in results["checks"]:
        big, tiny = _comparison(check, "grp", "Big"), _comparison(check, "grp", "Tiny")
        assert big["reference_group"] == tiny["reference_group"] == "R"
        # the planted truth: both are selected at 0.35 against 0.5
        assert_allclose([big["ratio"], tiny["ratio"]], [0.7, 0.7], rtol=1e-12)
        assert big["p_adjusted"] < 1e-10 and not big["underpowered"]
        assert big["min_detectable_ratio"] > 0.9
        assert tiny["p_value"] > 0.05 and tiny["p_adjusted"] > 0.05
        assert tiny["underpowered"] is True
        assert tiny["min_detectable_ratio"] is None or tiny["min_detectable_ratio"] < 0.8
        listed = check["metrics"][("selection_rate_ratio" if check["type"] == "group_fairness" else "impact_ratio")
                                  + "[grp]"]["underpowered"]
        assert [g["group"] for g in listed] == ["Tiny"] and listed[0]["n"] == 20


def test_pass_that_rests_on_a_tiny_reference_group_is_marked_underpowered_and_says_why(holm_run):
    _, results, out = holm_run
    rates = next(c for c in results["checks"] if c["id"] == "rates")
    finding = next(f for f in rates["findings"] if f["metric"] == "selection_rate_ratio[site]")
    assert finding["status"] == "pass" and finding["underpowered"] is True
    assert "'Main' (n = 6,000) against 'Small' (n = 20)" in finding["reading"]
    failing = next(f for f in rates["findings"] if f["metric"] == "selection_rate_ratio[grp]")
    assert failing["status"] == "fail" and "underpowered" not in failing
    assert any("too small to detect a 0.8 ratio against 'Small' (n = 20)" in note for note in rates["notes"])
    html = (out / "report.html").read_text()
    assert "adj. p" in html and "min. detectable ratio" in html
    assert "Passes, but on groups too small to show a four-fifths disparity" in html
    # the report's limitations read the same records
    size = results["statistics"]["family_size"]
    assert f"The fairness checks test {size} group comparisons" in html
    assert "rates: site, selection rate against &#39;Small&#39; (20 rows): too small to detect" in html


def test_benjamini_hochberg_is_selected_in_the_policy(tmp_path):
    from typer.testing import CliRunner

    from auditkit.cli import app

    policy = _policy(tmp_path, _planted(tmp_path), "bh")
    result = CliRunner().invoke(app, ["run", str(policy), "--executor", "inline", "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 1
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    records = [r for c in results["checks"] for r in c["tables"]["comparisons"] if r["p_value"] is not None]
    assert results["statistics"]["multiple_comparisons"] == "bh"
    # 1e-12: the same products and running minima of the same floats
    assert_allclose([r["p_adjusted"] for r in records],
                    multipletests([r["p_value"] for r in records], method="fdr_bh")[1], rtol=1e-12, atol=1e-15)


def _result(check_id: str, status: str, p_values: list[float | None]) -> CheckResult:
    records = [{"attribute": "a", "rate": "selection_rate", "group": f"g{i}", "reference_group": "r",
                "p_value": p, "underpowered": False} for i, p in enumerate(p_values)]
    metric = Metric(0.7, p_value=p_values[0], comparison={"attribute": "a", "rate": "selection_rate",
                                                          "group": "g0", "reference_group": "r"},
                    underpowered=[{"group": "g1", "rate": "selection_rate", "n": 12, "reference_group": "r",
                                   "reference_n": 900, "min_detectable_ratio": 0.41}])
    finding = Finding(metric="selection_rate_ratio[a]", value=0.7, status="pass", severity="fail", min=0.5)
    return CheckResult(id=check_id, type="group_fairness", family="fairness", status=status, duration_s=0.0,
                       metrics={"selection_rate_ratio[a]": metric}, findings=[finding],
                       tables={"comparisons": records})


def test_errored_and_skipped_checks_stay_out_of_the_family_and_untested_comparisons_get_no_adjusted_p():
    given = [_result("ok", "pass", [0.01, None, 0.04]), _result("broken", "error", [0.001, 0.002]),
             _result("other", "fail", [0.03])]
    out, summary = apply_statistics(given, correction="holm", alpha=0.05, power=0.8)
    assert summary["family_size"] == 3 and summary["checks"] == ["ok", "other"]
    expected = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    ok = out[0].tables["comparisons"]
    assert [ok[0]["p_adjusted"], ok[2]["p_adjusted"], out[2].tables["comparisons"][0]["p_adjusted"]] == \
        pytest.approx(list(expected), abs=1e-15)  # the same floats: exact up to rounding
    assert ok[1]["p_adjusted"] is None
    assert list(ok[0]).index("p_adjusted") == list(ok[0]).index("p_value") + 1  # read side by side
    assert "p_adjusted" not in out[1].tables["comparisons"][0]
    assert out[0].metrics["selection_rate_ratio[a]"].p_adjusted == ok[0]["p_adjusted"]
    assert out[0].findings[0].underpowered is True and "'g1' (n = 12)" in (out[0].findings[0].reading or "")
    # the results handed in are left as they were
    assert "p_adjusted" not in given[0].tables["comparisons"][0] and given[0].findings[0].underpowered is None
