"""Fairness of a regression model (#18): group means of the prediction, the absolute error and the
residual in `group_fairness`, the share above a cut-off in `impact_ratio`, prediction changes in
`counterfactual_fairness`.

References: fairlearn's MetricFrame (mean_absolute_error by group), numpy closed forms for the
means and their gaps, scipy's Welch test; the planted income gap behind the sample
interest-rate model (sample_models/README.md) for the ground truth on real model output.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))

import fairlearn.metrics as flm  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.metrics import mean_absolute_error  # noqa: E402

from check_support import run_check  # noqa: E402

from auditkit.adapters.base import AdapterSpec, load_adapter  # noqa: E402
from auditkit.engine.context import AuditData  # noqa: E402

# Means of a few thousand float64 values summed in two orders (bincount vs pandas): rounding only.
TOL = 1e-10


def regression_data(prediction: np.ndarray, y: np.ndarray | None, frame: pd.DataFrame, **extra) -> AuditData:
    frame = frame.copy()
    frame.index = pd.RangeIndex(len(frame), name="row")
    if y is not None:
        frame["target"] = y
    return AuditData(frame=frame, features=extra.pop("features", ["x"]), target="target" if y is not None else None,
                     protected=extra.pop("protected", ["group"]), task="regression",
                     scores=np.asarray(prediction, float), decisions=None,
                     y=None if y is None else np.asarray(y, float), score_kind="value",
                     adapter_spec=extra.pop("adapter_spec", AdapterSpec(format="predictions", path=None)), **extra)


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Three groups; group C is predicted 2 units higher and its predictions err twice as widely."""
    rng = np.random.default_rng(18)
    n = 3000
    group = rng.choice(["A", "B", "C"], size=n, p=[0.5, 0.3, 0.2])
    x = rng.normal(size=n)
    y = 10 + 3 * x + rng.normal(size=n)
    noise = np.where(group == "C", 2.0, 1.0) * rng.normal(size=n)
    prediction = 10 + 3 * x + np.where(group == "C", 2.0, 0.0) + noise
    return pd.DataFrame({"x": x, "group": group}), y, prediction


def _by_group(output, attribute="group"):
    return {r["group"]: r for r in output.tables["groups"] if r["attribute"] == attribute}


def test_group_means_equal_fairlearn_and_numpy(planted):
    frame, y, prediction = planted
    output = run_check("group_fairness", regression_data(prediction, y, frame), {"bootstrap": 0})
    groups = _by_group(output)
    mae = flm.MetricFrame(metrics=mean_absolute_error, y_true=y, y_pred=prediction,
                          sensitive_features=frame["group"])
    means = pd.Series(prediction).groupby(frame["group"].to_numpy()).mean()
    residuals = pd.Series(prediction - y).groupby(frame["group"].to_numpy()).mean()
    assert set(groups) == {"A", "B", "C"}
    assert mae.by_group["C"] > 1.5 * mae.by_group["A"]  # the planted case is not trivial
    for label, record in groups.items():
        assert_allclose(record["mae"], mae.by_group[label], rtol=0, atol=TOL)
        assert_allclose(record["mean_prediction"], means[label], rtol=0, atol=TOL)
        assert_allclose(record["mean_residual"], residuals[label], rtol=0, atol=TOL)
        assert record["n"] == int((frame["group"] == label).sum())
    metrics = output.metrics
    assert_allclose(metrics["mae_difference[group]"].value, mae.difference(), rtol=0, atol=TOL)
    assert_allclose(metrics["mae_ratio[group]"].value, mae.ratio(), rtol=0, atol=TOL)
    assert_allclose(metrics["mean_prediction_difference[group]"].value, means.max() - means.min(), rtol=0, atol=TOL)
    assert_allclose(metrics["mean_prediction_ratio[group]"].value, means.min() / means.max(), rtol=0, atol=TOL)
    assert_allclose(metrics["mean_residual_difference[group]"].value, residuals.max() - residuals.min(), rtol=0,
                    atol=TOL)
    # the planted gap of 2 units, within sampling error (se about 0.1 with these sizes)
    assert 1.6 < metrics["mean_residual_difference[group]"].value < 2.4


def test_comparisons_use_welchs_test_against_the_largest_mean(planted):
    frame, y, prediction = planted
    output = run_check("group_fairness", regression_data(prediction, y, frame), {"bootstrap": 0})
    records = [r for r in output.tables["comparisons"] if r["rate"] == "mean_prediction"]
    assert {r["reference_group"] for r in records} == {"C"}  # the largest mean prediction
    assert {r["group"] for r in records} == {"A", "B"}
    for record in records:
        mine = prediction[(frame["group"] == record["group"]).to_numpy()]
        ref = prediction[(frame["group"] == "C").to_numpy()]
        expected = stats.ttest_ind(mine, ref, equal_var=False).pvalue
        assert_allclose(record["p_value"], expected, rtol=1e-9)
        assert record["test"] == "Welch's t test"
        assert_allclose(record["difference"], mine.mean() - ref.mean(), rtol=0, atol=TOL)
    # the metric carries the p-value of its worst comparison
    worst = min(records, key=lambda r: r["difference"])
    assert output.metrics["mean_prediction_difference[group]"].p_value == worst["p_value"]


def test_bootstrap_interval_of_a_mean_gap_matches_its_standard_error(planted):
    frame, y, prediction = planted
    output = run_check("group_fairness", regression_data(prediction, y, frame,),
                       {"attributes": ["group"], "reference_group": {"group": "A"}, "bootstrap": 2000})
    metric = output.metrics["mean_prediction_difference[group]"]
    a = prediction[(frame["group"] == "A").to_numpy()]
    c = prediction[(frame["group"] == "C").to_numpy()]
    assert_allclose(metric.value, abs(c.mean() - a.mean()), rtol=0, atol=TOL)  # C is the farthest from A
    analytic_se = np.sqrt(a.var(ddof=1) / len(a) + c.var(ddof=1) / len(c))
    # 2,000 stratified resamples estimate the standard error to about 1.6% (1/sqrt(2 B)); 8% is five of those
    assert_allclose(metric.se, analytic_se, rtol=0.08)
    assert metric.ci[0] < metric.value < metric.ci[1]
    again = run_check("group_fairness", regression_data(prediction, y, frame),
                      {"attributes": ["group"], "reference_group": {"group": "A"}, "bootstrap": 2000})
    assert again.metrics["mean_prediction_difference[group]"].ci == metric.ci  # seeded


def test_without_a_target_only_the_mean_prediction_is_compared(planted):
    frame, _, prediction = planted
    output = run_check("group_fairness", regression_data(prediction, None, frame), {"bootstrap": 0})
    assert output.metrics["mean_prediction_difference[group]"].value is not None
    assert output.metrics["mae_difference[group]"].value is None
    assert "target" in output.metrics["mae_difference[group]"].note
    assert {r["rate"] for r in output.tables["comparisons"]} == {"mean_prediction"}


def test_a_ratio_of_means_is_null_when_a_mean_is_not_positive(planted):
    frame, y, prediction = planted
    output = run_check("group_fairness", regression_data(prediction - 11, y, frame), {"bootstrap": 0})
    ratio = output.metrics["mean_prediction_ratio[group]"]
    assert ratio.value is None and "above 0" in ratio.note
    assert output.metrics["mean_prediction_difference[group]"].value is not None


def test_reading_of_a_regression_gap_names_groups_and_units(planted):
    from auditkit.checks.fairness.group_fairness import _reading

    frame, y, prediction = planted
    output = run_check("group_fairness", regression_data(prediction, y, frame), {"bootstrap": 0})
    result = {"tables": output.tables, "params": {}}
    value = output.metrics["mean_residual_difference[group]"].value
    text = _reading({"metric": "mean_residual_difference[group]", "value": value, "max": 0.5}, result)
    assert text.startswith("For group, the mean residual (prediction minus outcome")
    assert "group 'C' exceeds that of group" in text and "model's units" in text and "at most 0.50" in text


# ---------------------------------------------------------------- impact_ratio with a cut-off


def test_impact_ratio_on_a_cutoff_equals_shares_below_it(planted):
    frame, y, prediction = planted
    output = run_check("impact_ratio", regression_data(prediction, y, frame),
                       {"attributes": ["group"], "cutoff": 11.0, "favorable_scores": "low"})
    below = pd.Series(prediction < 11.0).groupby(frame["group"].to_numpy()).mean()
    rows = {r["category"]: r for r in output.tables["categories"]}
    for label in ("A", "B", "C"):
        assert_allclose(rows[label]["selection_rate"], below[label], rtol=0, atol=TOL)
        assert_allclose(rows[label]["impact_ratio"], below[label] / below.max(), rtol=0, atol=TOL)
    assert below["C"] < 0.8 * below.max()  # the planted +2 on C shows as fewer affordable predictions
    assert_allclose(output.metrics["impact_ratio[group]"].value, below.min() / below.max(), rtol=0, atol=TOL)
    high = run_check("impact_ratio", regression_data(prediction, y, frame),
                     {"attributes": ["group"], "cutoff": 11.0, "favorable_scores": "high"})
    above = pd.Series(prediction >= 11.0).groupby(frame["group"].to_numpy()).mean()
    assert_allclose(high.metrics["impact_ratio[group]"].value, above.min() / above.max(), rtol=0, atol=TOL)


def test_impact_ratio_on_a_regression_without_a_cutoff_skips_naming_the_params(planted):
    frame, y, prediction = planted
    output = run_check("impact_ratio", regression_data(prediction, y, frame), {"attributes": ["group"]})
    assert output.skipped and "params.cutoff" in output.skipped and "params.favorable_scores" in output.skipped


# ---------------------------------------------------------------- counterfactual_fairness with a tolerance


def test_counterfactual_change_of_a_regressor_that_uses_the_attribute(tmp_path, planted):
    import pickle

    from sklearn.linear_model import LinearRegression

    frame, y, _ = planted
    inputs = pd.DataFrame({"x": frame["x"], "flag": (frame["group"] == "C").astype(float)})
    model = LinearRegression().fit(inputs, y + 1.5 * inputs["flag"])
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    spec = AdapterSpec(format="pickle", path=str(path), trust_pickle=True, feature_names=("x", "flag"))
    data_frame = inputs.assign(group=frame["group"])
    prediction = load_adapter(spec).predict(inputs)
    data = regression_data(prediction, y, data_frame, features=["x", "flag"], protected=["flag"],
                           adapter_spec=load_adapter(spec).spec)
    coefficient = model.coef_[1]
    output = run_check("counterfactual_fairness", data, {"attributes": ["flag"], "tolerance": abs(coefficient) / 2})
    assert_allclose(output.metrics["flip_rate[flag]"].value, 1.0)  # every row moves by |coef| > tolerance
    assert_allclose(output.metrics["mean_abs_score_change[flag]"].value, abs(coefficient), rtol=1e-5)  # the adapter may pass float32 inputs
    strict = run_check("counterfactual_fairness", data, {"attributes": ["flag"], "tolerance": 2 * abs(coefficient)})
    assert strict.metrics["flip_rate[flag]"].value == 0.0
    untold = run_check("counterfactual_fairness", data, {"attributes": ["flag"]})
    assert untold.metrics["flip_rate[flag]"].value is None and "tolerance" in untold.metrics["flip_rate[flag]"].note
    assert_allclose(untold.metrics["max_abs_score_change[flag]"].value, abs(coefficient), rtol=1e-5)


# ---------------------------------------------------------------- the sample interest-rate model


@pytest.fixture(scope="module")
def rate_model(samples: Path) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(samples / "credit_test.csv")
    prediction = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_rate_gbr.onnx"))).predict(frame)
    return frame, np.asarray(prediction, dtype=float)


def test_sample_rate_model_reproduces_the_planted_income_gap_by_race(rate_model):
    """README ground truth: race enters the rate only through income (Black applicants' ln income
    is 0.30 lower): 2.0 x 0.30 through ln(income) less 0.5 x 0.4 x 0.30 through the loan amount
    (which grows with income^0.4) = 0.54 points more for Black than for White applicants, and no
    group is priced off its own outcomes (mean residual about 0 everywhere)."""
    frame, prediction = rate_model
    y = frame["interest_rate"].to_numpy(dtype=float)
    output = run_check("group_fairness", regression_data(prediction, y, frame, protected=["race"]),
                       {"attributes": ["race"], "reference_group": {"race": "White"}, "bootstrap": 500})
    groups = _by_group(output, "race")
    gap = groups["Black"]["mean_prediction"] - groups["White"]["mean_prediction"]
    # the population's 0.54, within the sampling error of ~3,000 vs ~12,000 rows (se ~0.05) and the model's fit
    assert 0.35 < gap < 0.75
    observed = groups["Black"]["mean_target"] - groups["White"]["mean_target"]
    assert abs(gap - observed) < 0.1  # the model reproduces the data's own gap
    for label, record in groups.items():
        if record["n"] >= 500:
            assert abs(record["mean_residual"]) < 0.1, label  # unbiased within every sizeable group
    assert output.metrics["mean_residual_difference[race]"].value < 0.25


def test_impact_ratio_reading_says_which_side_of_the_cutoff(planted):
    from auditkit.checks.fairness.impact_ratio import _reading

    frame, y, prediction = planted
    params = {"attributes": ["group"], "cutoff": 11.0, "favorable_scores": "low"}
    output = run_check("impact_ratio", regression_data(prediction, y, frame), params)
    value = output.metrics["impact_ratio[group]"].value
    text = _reading({"metric": "impact_ratio[group]", "value": value, "min": 0.8},
                    {"tables": output.tables, "params": params})
    assert text.startswith("Category 'C' of group was predicted below 11 at ")


def test_regression_gaps_do_not_depend_on_row_order_or_group_names(planted):
    frame, y, prediction = planted
    base = run_check("group_fairness", regression_data(prediction, y, frame), {"bootstrap": 0})
    order = np.random.default_rng(0).permutation(len(frame))
    renamed = frame.iloc[order].reset_index(drop=True).assign(
        group=lambda f: f["group"].map({"A": "z", "B": "y", "C": "x"}))
    moved = run_check("group_fairness", regression_data(prediction[order], y[order], renamed), {"bootstrap": 0})
    for name in ("mean_prediction_difference", "mean_prediction_ratio", "mae_difference", "mae_ratio",
                 "mean_residual_difference"):
        # the same sums in another order: rounding only
        assert_allclose(moved.metrics[f"{name}[group]"].value, base.metrics[f"{name}[group]"].value, rtol=1e-12)
    assert 0 < base.metrics["mae_ratio[group]"].value <= 1


@pytest.mark.slow
def test_credit_rate_policy_finds_the_income_gaps_and_no_error_gap(cli, samples, tmp_path):
    """policies/credit_rate.yaml end to end: the README's ground truth as statuses."""
    import json

    root = Path(__file__).resolve().parents[2]
    result = cli("run", root / "policies" / "credit_rate.yaml", "--out", tmp_path, "--format", "json",
                 "--workers", "1")
    assert result.exit_code == 1, result.stderr  # impact_ratio[age_band] fails
    checks = {c["id"]: c for c in json.loads((tmp_path / "results.json").read_text())["checks"]}
    findings = {f["metric"]: f for f in checks["rate-gaps"]["findings"]}
    assert all(findings[f"{m}[{a}]"]["status"] == "pass" for m in ("mae_difference", "mean_residual_difference")
               for a in ("sex", "race", "age_band"))
    assert findings["mean_prediction_difference[age_band]"]["status"] == "warn"
    assert 0.35 < checks["rate-gaps"]["metrics"]["mean_prediction_difference[race]"]["value"] < 0.9
    impact = {f["metric"]: f["status"] for f in checks["affordable-rate"]["findings"]}
    assert impact == {"impact_ratio[sex]": "pass", "impact_ratio[race]": "pass", "impact_ratio[age_band]": "fail"}
    assert checks["rate-if-race-changed"]["status"] == "skipped"
    assert "no protected attribute is a model input" in checks["rate-if-race-changed"]["notes"][0]
    assert any(r["test"] == "Welch's t test" and r["p_adjusted"] is not None
               for r in checks["rate-gaps"]["tables"]["comparisons"])


def test_impact_ratio_against_a_declared_reference_group(planted):
    from auditkit.checks.fairness.impact_ratio import _reading

    frame, y, prediction = planted
    params = {"attributes": ["group"], "cutoff": 11.0, "favorable_scores": "low", "reference_group": {"group": "B"}}
    output = run_check("impact_ratio", regression_data(prediction, y, frame), params)
    below = pd.Series(prediction < 11.0).groupby(frame["group"].to_numpy()).mean()
    rows = {r["category"]: r for r in output.tables["categories"]}
    for label in ("A", "B", "C"):
        assert_allclose(rows[label]["impact_ratio"], below[label] / below["B"], rtol=0, atol=TOL)
    assert_allclose(output.metrics["impact_ratio[group]"].value, below["C"] / below["B"], rtol=0, atol=TOL)
    assert {r["reference_group"] for r in output.tables["comparisons"]} == {"B"}
    text = _reading({"metric": "impact_ratio[group]", "value": below["C"] / below["B"], "min": 0.8},
                    {"tables": output.tables, "params": params})
    assert "times the rate of 'B'" in text
    with pytest.raises(AssertionError, match="is not a category of it"):
        run_check("impact_ratio", regression_data(prediction, y, frame), {**params, "reference_group": {"group": "Q"}})


# proxy_detection reads the data alone (features against protected attributes), whatever the model's task
@pytest.mark.parametrize("check_type", ["group_fairness", "impact_ratio", "counterfactual_fairness", "calibration"])
def test_every_fairness_check_runs_on_a_regression_model_or_skips_with_a_reason(planted, check_type):
    from auditkit.core.registry import get_registry

    frame, y, prediction = planted
    params = {k: v for k, v in get_registry().get(check_type).example.get("params", {}).items()
              if k not in ("attributes", "intersections", "features")}
    params["attributes"] = ["group"]
    if "bootstrap" in get_registry().get(check_type).params.model_fields:
        params["bootstrap"] = 50
    output = run_check(check_type, regression_data(prediction, y, frame), params)
    reasons = {"impact_ratio": "params.cutoff", "calibration": "class probabilities",
               "counterfactual_fairness": "no protected attribute is a model input"}
    if output.skipped is not None:
        assert reasons.get(check_type, "<runs>") in output.skipped, output.skipped
    else:
        assert check_type not in reasons and output.metrics
