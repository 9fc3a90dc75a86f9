"""Table ``comparisons`` of ``group_fairness`` and ``impact_ratio`` (#18 part 3): which groups are
compared, with which test, and which comparison each ratio or difference metric rests on."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402
from scipy import stats  # noqa: E402

from check_support import binary_data, run_check  # noqa: E402

from auditkit.methods.proportions import compare_proportions, min_detectable_ratio  # noqa: E402

LINKED = {"selection_rate": "selection_rate", "demographic_parity": "selection_rate",
          "true_positive_rate": "true_positive_rate", "equal_opportunity": "true_positive_rate",
          "false_positive_rate": "false_positive_rate"}


def _random_data(seed: int, *, alpha: float = 0.05, power: float = 0.8) -> Any:
    rng = np.random.default_rng(seed)
    n = 1500
    grp = rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.15, 0.05])
    y = rng.integers(0, 2, n).astype(float)
    # group-dependent scores so that rates differ
    shift = pd.Series(grp).map({"a": 0.0, "b": -0.05, "c": 0.08, "d": -0.15}).to_numpy()
    scores = np.clip(rng.random(n) * 0.6 + 0.2 + 0.2 * y + shift, 0, 1)
    return binary_data(y, scores, frame=pd.DataFrame({"grp": grp}), protected=["grp"], alpha=alpha, power=power), \
        grp, y, (scores >= 0.5).astype(int)


@pytest.mark.parametrize("reference", [None, "b"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_included_group_is_tested_against_the_reference_with_its_own_counts(seed, reference):
    data, grp, y, decisions = _random_data(seed, alpha=0.01, power=0.9)
    params = {"bootstrap": 0, **({"reference_group": {"grp": reference}} if reference else {})}
    output = run_check("group_fairness", data, params)
    records = output.tables["comparisons"]
    masks = {"selection_rate": lambda g: grp == g, "true_positive_rate": lambda g: (grp == g) & (y == 1),
             "false_positive_rate": lambda g: (grp == g) & (y == 0)}
    for rate, mask in masks.items():
        rows = [r for r in records if r["rate"] == rate]
        rates = {g: decisions[mask(g)].mean() for g in "abcd"}
        expected_reference = reference or max("abcd", key=lambda g: rates[g])
        assert sorted(r["group"] for r in rows) == sorted(set("abcd") - {expected_reference})
        for record in rows:
            x, n = int(decisions[mask(record["group"])].sum()), int(mask(record["group"]).sum())
            x0, n0 = int(decisions[mask(expected_reference)].sum()), int(mask(expected_reference).sum())
            assert record["reference_group"] == expected_reference and (record["n"], record["reference_n"]) == (n, n0)
            assert record["p_value"] == compare_proportions(x, n, x0, n0)[0]
            assert record["min_detectable_ratio"] == min_detectable_ratio(n, n0, x0 / n0, alpha=0.01, power=0.9)
            assert record["underpowered"] == (record["min_detectable_ratio"] is None
                                              or record["min_detectable_ratio"] < 0.8)
            # 1e-15: one float division of integers
            assert_allclose(record["ratio"], (x / n) / (x0 / n0), rtol=1e-15)


@pytest.mark.parametrize("reference", [None, "a"])
@pytest.mark.parametrize("seed", [3, 4])
def test_every_linked_metric_rests_on_the_comparison_that_gives_its_figure(seed, reference):
    data, *_ = _random_data(seed)
    params = {"bootstrap": 0, **({"reference_group": {"grp": reference}} if reference else {})}
    output = run_check("group_fairness", data, params)
    records = {(r["rate"], r["group"]): r for r in output.tables["comparisons"]}
    linked = 0
    for name, metric in output.metrics.items():
        if metric.comparison is None:
            continue
        linked += 1
        prefix, kind = name.split("[")[0].rsplit("_", 1)
        record = records[(metric.comparison["rate"], metric.comparison["group"])]
        assert metric.p_value == record["p_value"]
        if prefix != "equalized_odds":
            assert metric.comparison["rate"] == LINKED[prefix]
        # 1e-12: the metric and the record divide / subtract the same two rates
        assert_allclose(metric.value, record["ratio"] if kind == "ratio" else abs(record["difference"]), rtol=1e-12)
    assert linked == 12  # 5 rates' ratio and difference, and equalized odds' two


def test_small_groups_left_out_of_ratios_are_not_compared():
    data, grp, *_ = _random_data(5)
    output = run_check("group_fairness", data, {"bootstrap": 0, "min_group_size": int((grp == "d").sum()) + 1})
    assert "d" not in {r["group"] for r in output.tables["comparisons"]} | \
        {r["reference_group"] for r in output.tables["comparisons"]}


def test_without_a_target_only_selection_rates_are_compared_and_match_the_existing_pairwise_test():
    data, *_ = _random_data(6)
    data.y = None
    output = run_check("group_fairness", data, {"bootstrap": 0})
    records = output.tables["comparisons"]
    assert {r["rate"] for r in records} == {"selection_rate"}
    # the groups table already tested each group against the most-selected one (chi-square or
    # Fisher, scipy); the comparisons must agree with it
    pairwise = {r["group"]: r["selection_rate_p_value"] for r in output.tables["groups"]}
    for record in records:
        # 1e-9 relative: the z test and the chi-square test of one 2 x 2 table
        assert_allclose(record["p_value"], pairwise[record["group"]], rtol=1e-9)


def test_impact_ratio_compares_every_included_category_with_the_most_selected_one():
    frame = pd.DataFrame({"sex": ["F"] * 40 + ["M"] * 60 + ["X"] * 2})
    selected = np.r_[np.arange(40) < 12, np.arange(60) < 30, [1, 0]].astype(float)
    data = binary_data(None, np.where(selected == 1, 0.9, 0.1), frame=frame, protected=["sex"], score_kind="label")
    output = run_check("impact_ratio", data, {"exclude_small": True})
    records = output.tables["comparisons"]
    assert [(r["group"], r["reference_group"]) for r in records] == [("F", "M")]  # X: 2 of 102, under 2%
    p = stats.fisher_exact([[12, 28], [30, 30]]).pvalue if min(
        stats.contingency.expected_freq(np.array([[12, 28], [30, 30]])).ravel()) < 5 else \
        stats.chi2_contingency([[12, 28], [30, 30]], correction=False).pvalue
    # 1e-9 relative: the z test and the chi-square test of one 2 x 2 table
    assert_allclose(records[0]["p_value"], p, rtol=1e-9)
    metric = output.metrics["impact_ratio[sex]"]
    assert metric.p_value == records[0]["p_value"] and metric.comparison["group"] == "F"
    assert_allclose(metric.value, (12 / 40) / (30 / 60), rtol=1e-15)  # 1e-15: float division
