"""`impact_ratio` (NYC Local Law 144 bias-audit calculation) on hand-built counts and on the hiring sample."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))

import json  # noqa: E402
from fractions import Fraction as F  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402

from check_support import binary_data, run_check  # noqa: E402
from support import write_policy  # noqa: E402

# (sex, race, rows, selected). 65 rows; race is unknown for 4 of them; one Asian man (1/65 =
# 1.5% of the data, under the 2% rule).
CELLS = [("F", "White", 20, 8), ("F", "Black", 10, 2), ("M", "White", 20, 12), ("M", "Black", 10, 5),
         ("M", "Asian", 1, 1), ("F", None, 4, 1)]
# Selection rates, by hand from CELLS:
#   sex:  F (8+2+1)/34 = 11/34, M (12+5+1)/31 = 18/31
#   race: White 20/40 = 1/2, Black 7/20, Asian 1/1, (missing) 1/4 (always excluded)
#   sex & race: F & White 2/5, F & Black 1/5, M & White 3/5, M & Black 1/2, M & Asian 1, F & (missing) 1/4
RATES = {
    "sex": {"F": F(11, 34), "M": F(18, 31)},
    "race": {"White": F(1, 2), "Black": F(7, 20), "Asian": F(1), "(missing)": F(1, 4)},
    "sex & race": {"F & White": F(2, 5), "F & Black": F(1, 5), "M & White": F(3, 5), "M & Black": F(1, 2),
                   "M & Asian": F(1), "F & (missing)": F(1, 4)},
}
# impact ratio = rate / highest included rate; the metric is the smallest included ratio
#   sex:  F (11/34) / (18/31) = 341/612 (the same with or without exclude_small)
#   race: top Asian 1 -> Black 7/20; with exclude_small (Asian out) top White 1/2 -> Black 7/10
#   sex & race: top M & Asian 1 -> F & Black 1/5; with exclude_small top M & White 3/5 -> F & Black 1/3
METRIC = {False: {"sex": F(341, 612), "race": F(7, 20), "sex & race": F(1, 5)},
          True: {"sex": F(341, 612), "race": F(7, 10), "sex & race": F(1, 3)}}
TOP = {False: {"sex": "M", "race": "Asian", "sex & race": "M & Asian"},
       True: {"sex": "M", "race": "White", "sex & race": "M & White"}}
SMALL = {"Asian", "M & Asian"}


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rows, selected = [], []
    for sex, race, n, chosen in CELLS:
        rows += [(sex, race)] * n
        selected += [1] * chosen + [0] * (n - chosen)
    frame = pd.DataFrame(rows, columns=["sex", "race"])
    # scores: selected rows >= 0.5 (decision 1); a ladder of values so that many tie at the median
    ladder = np.array([0.1, 0.3, 0.45, 0.45, 0.3])
    scores = np.where(np.array(selected) == 1, 0.5 + 0.1 * (np.arange(len(selected)) % 5),
                      ladder[np.arange(len(selected)) % 5])
    return frame, scores


def _run(favorable_decision: int = 1, **params: Any) -> Any:
    frame, scores = _frame()
    data = binary_data(None, scores, frame=frame, protected=["sex", "race"], favorable_decision=favorable_decision)
    return run_check("impact_ratio", data, params)


def _categories(output: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["attribute"], r["category"]): r for r in output.tables["categories"]}


@pytest.mark.parametrize("exclude_small", [False, True])
def test_hand_built_selection_and_impact_ratios(exclude_small):
    output = _run(exclude_small=exclude_small)
    table = _categories(output)
    assert len(table) == sum(len(v) for v in RATES.values())  # the intersection is audited by default
    for attribute, rates in RATES.items():
        top = rates[TOP[exclude_small][attribute]]
        for category, rate in rates.items():
            record = table[(attribute, category)]
            # 1e-15: one float division of small integers (two for the ratio)
            assert_allclose(record["selection_rate"], float(rate), rtol=0, atol=1e-15)
            assert record["selected"] == round(rate * record["n"])
            excluded = "(missing)" in category or (exclude_small and category in SMALL)
            assert record["excluded"] is excluded, (attribute, category)
            if excluded:
                assert record["impact_ratio"] is None
            else:
                assert_allclose(record["impact_ratio"], float(rate / top), rtol=0, atol=1e-15)
        value = output.metrics[f"impact_ratio[{attribute}]"].value
        assert_allclose(value, float(METRIC[exclude_small][attribute]), rtol=0, atol=1e-15, err_msg=attribute)
    assert output.metrics["categories_excluded[race]"].value == (2 if exclude_small else 1)
    assert any("(missing) (4)" in note for note in output.notes)
    # the 2% rule matters here: without it the one Asian applicant (rate 1) sets the bar for race
    assert table[("race", "Asian")]["n"] == 1 and table[("race", "Asian")]["share"] < 0.02


def test_missing_values_of_any_dtype_are_the_excluded_category_missing():
    frame, scores = _frame()
    frame["race"] = frame["race"].astype("string")  # pd.NA, as read back from Parquet
    output = run_check("impact_ratio", binary_data(None, scores, frame=frame, protected=["race"]), {})
    table = _categories(output)
    assert table[("race", "(missing)")]["excluded"] and table[("race", "(missing)")]["n"] == 4
    assert ("race", "<NA>") not in table
    assert_allclose(output.metrics["impact_ratio[race]"].value, 7 / 20, rtol=0, atol=1e-15)


@pytest.mark.parametrize("favorable_decision, favorable_scores, side", [
    (1, None, "above"), (0, None, "below"), (1, "low", "below"), (0, "high", "above")])
def test_scoring_rate_is_the_share_strictly_beyond_the_sample_median(favorable_decision, favorable_scores, side):
    frame, scores = _frame()
    median = np.median(scores)
    assert (scores == median).sum() >= 5  # ties at the median: "strictly" matters
    beyond = scores > median if side == "above" else scores < median
    params = {"attributes": ["sex"]} | ({"favorable_scores": favorable_scores} if favorable_scores else {})
    output = _run(favorable_decision, **params)
    table = _categories(output)
    by_sex = pd.Series(beyond.astype(float)).groupby(frame["sex"].to_numpy()).mean()
    selected = pd.Series(((scores >= 0.5) == favorable_decision).astype(float)).groupby(frame["sex"].to_numpy()).mean()
    for sex in ("F", "M"):
        # 1e-15: one float division of small integers
        assert_allclose(table[("sex", sex)]["scoring_rate"], by_sex[sex], rtol=0, atol=1e-15)
        assert_allclose(table[("sex", sex)]["selection_rate"], selected[sex], rtol=0, atol=1e-15)
        assert_allclose(table[("sex", sex)]["scoring_impact_ratio"], by_sex[sex] / by_sex.max(), rtol=0, atol=1e-15)
    assert_allclose(output.metrics["scoring_impact_ratio[sex]"].value, by_sex.min() / by_sex.max(), rtol=0,
                    atol=1e-15)
    inclusive = scores >= median if side == "above" else scores <= median
    assert not np.allclose(pd.Series(inclusive.astype(float)).groupby(frame["sex"].to_numpy()).mean(), by_sex)
    assert any(f"scoring {side} the sample median" in note for note in output.notes)


def test_hiring_sample_fails_the_four_fifths_rule_on_sex(samples, tmp_path, cli):
    hiring = pd.read_csv(samples / "hiring_decisions.csv")
    rates = hiring.groupby("sex")["advanced"].mean()
    expected = rates["F"] / rates["M"]
    assert abs(expected - 0.7378) < 5e-4  # sample_models/README.md
    by_race = hiring.groupby("race")["advanced"].mean()

    out = tmp_path / "out"
    policy = write_policy(tmp_path, {
        "version": 1, "name": "hiring impact ratio", "seed": 1,
        "model": {"format": "predictions", "task": "binary", "score_column": "assessment_score",
                  "prediction_column": "advanced"},
        "data": {"path": str(samples / "hiring_decisions.csv"), "protected": ["sex", "race"],
                 "favorable_label": 1, "ignore": ["candidate_id"]},
        "checks": [{"id": "ll144", "type": "impact_ratio", "thresholds": {"impact_ratio": {"min": 0.8}}}],
        "report": {"formats": ["json"], "output_dir": str(out)},
    })
    result = cli("run", policy)
    assert result.exit_code == 1, result.stdout
    check = json.loads((out / "results.json").read_text())["checks"][0]
    assert check["status"] == "fail"
    # 1e-12: both are counts divided in float64
    assert_allclose(check["metrics"]["impact_ratio[sex]"]["value"], expected, rtol=0, atol=1e-12)
    assert_allclose(check["metrics"]["impact_ratio[race]"]["value"], by_race.min() / by_race.max(), rtol=0, atol=1e-12)
    finding = next(f for f in check["findings"] if f["metric"] == "impact_ratio[sex]")
    assert finding["status"] == "fail" and finding["min"] == 0.8
    assert "'F'" in finding["reading"] and "'M'" in finding["reading"] and "0.74" in finding["reading"]
    race = next(f for f in check["findings"] if f["metric"] == "impact_ratio[race]")
    assert race["status"] == "pass"  # no race effect was injected
    categories = {(r["attribute"], r["category"]): r for r in check["tables"]["categories"]}
    assert categories[("sex", "F")]["n"] == (hiring["sex"] == "F").sum()
    assert categories[("sex", "F")]["selected"] == hiring.loc[hiring["sex"] == "F", "advanced"].sum()
