"""noise_robustness: monotone in the noise level, exact zeros, a closed form, seeded, validated params."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from check_support import run_check
from noise_models import OneColumnClassifier
from test_explain_model_agnostic import _data_with_model

from auditkit.engine.worker import CheckTask, execute

GBM_FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
                "n_open_accounts", "home_ownership", "purpose", "zip_region"]


@pytest.fixture(scope="module")
def gbm(samples):
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:2000]
    return _data_with_model(samples / "credit_gbm.onnx", frame, GBM_FEATURES, "defaulted", fmt="onnx")


def _one_column_data(tmp_path, frame: pd.DataFrame, column: str, centre: float):
    features = [c for c in frame.columns if c != "label"]
    path = tmp_path / "one_column.pkl"
    with open(path, "wb") as handle:
        pickle.dump(OneColumnClassifier(features, column, centre), handle)
    return _data_with_model(path, frame, features, "label")


def test_flip_rate_grows_with_the_noise_level_on_the_sample_gbm(gbm):
    output = run_check("noise_robustness", gbm, {"max_rows": 2000}, seed=3)
    flips = [output.metrics[f"flip_rate[{name}]"].value for name in ("0.01", "0.05", "0.1", "0.2")]
    assert flips[-1] > 0.01  # non-trivial: strong noise does move decisions
    assert all(a <= b for a, b in zip(flips, flips[1:])), flips
    assert flips[-1] > flips[0]
    assert output.metrics["performance_drop[0.2]"].value > 0  # noise costs AUC on a labelled sample
    assert [r["level"] for r in output.tables["levels"]] == [0.01, 0.05, 0.1, 0.2]
    assert {r["feature"] for r in output.tables["sensitivity"]} == set(GBM_FEATURES)
    assert [p.kind for p in output.plots] == ["line", "line", "bar"]


def test_a_column_the_model_ignores_has_exactly_zero_sensitivity(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "colour": rng.choice(["red", "green", "blue"], size=n), "label": rng.integers(0, 2, n)})
    frame.loc[::10, "x2"] = np.nan  # missing values stay missing (the model would not care anyway)
    data = _one_column_data(tmp_path, frame, "x1", 0.0)
    output = run_check("noise_robustness", data, {"levels": [1e-6, 0.5], "sensitivity_level": 0.5}, seed=1)
    assert output.metrics["sensitivity[x1]"].value > 0.05  # non-trivial: the used column does flip decisions
    assert output.metrics["sensitivity[x2]"].value == 0.0
    assert output.metrics["sensitivity[colour]"].value == 0.0
    # a row flips at noise 1e-6 only within ~1e-6 of the threshold: practically none
    assert output.metrics["flip_rate[1e-06]"].value <= 1 / n
    assert output.metrics["flip_rate[0.5]"].value > 0.1


def test_flip_rate_matches_the_gaussian_closed_form(tmp_path):
    # s = logistic(x - t), decision s >= 0.5 <=> x >= t; with noise sigma*sd(x), row i flips with
    # probability Phi(-|x_i - t| / (sigma sd)), independently across rows and draws.
    rng = np.random.default_rng(7)
    n, repeats, centre = 4000, 10, 0.3
    frame = pd.DataFrame({"x": rng.normal(size=n), "label": rng.integers(0, 2, n)})
    data = _one_column_data(tmp_path, frame, "x", centre)
    levels = [0.05, 0.2]
    output = run_check("noise_robustness", data, {"levels": levels, "n_repeats": repeats, "max_rows": n}, seed=5)
    x = frame["x"].to_numpy()
    sd = np.std(x, ddof=1)  # the check's scale: the audit rows' standard deviation
    for level in levels:
        p = norm.cdf(-np.abs(x - centre) / (level * sd))
        expected = p.mean()
        se = np.sqrt(np.sum(p * (1 - p))) / (n * np.sqrt(repeats))
        measured = output.metrics[f"flip_rate[{level}]"].value
        assert expected > 0.01  # non-trivial
        assert abs(measured - expected) < 4 * se, (level, measured, expected, se)  # 4 standard errors


def test_same_seed_same_figures_and_levels_named_as_written(gbm):
    params = {"levels": [0.05, 0.2], "n_repeats": 2, "max_rows": 500}
    first = run_check("noise_robustness", gbm, params, seed=9)
    again = run_check("noise_robustness", gbm, params, seed=9)
    other = run_check("noise_robustness", gbm, params, seed=10)
    assert {k: m.to_dict() for k, m in first.metrics.items()} == {k: m.to_dict() for k, m in again.metrics.items()}
    assert first.tables == again.tables
    assert first.metrics["mean_abs_score_change[0.2]"].value != other.metrics["mean_abs_score_change[0.2]"].value
    assert "flip_rate[0.05]" in first.metrics and "flip_rate[0.2]" in first.metrics
    assert not any(k.startswith("flip_rate[0.050") for k in first.metrics)


@pytest.mark.parametrize("levels", [[0.1, 0], [-0.05], [], [0.1, 0.1]])
def test_bad_levels_are_rejected_by_name(gbm, levels):
    outcome = execute(CheckTask("c", "noise_robustness", {"levels": levels}, 0, 60), gbm)
    assert outcome.output is None and "levels" in outcome.error


def test_regression_reports_score_changes_and_no_flip_rate(samples):
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:500]
    data = _data_with_model(samples / "credit_rate_gbr.onnx", frame, GBM_FEATURES, "interest_rate",
                            task="regression", fmt="onnx")
    output = run_check("noise_robustness", data, {"levels": [0.1], "n_repeats": 2}, seed=0)
    assert output.metrics["flip_rate[0.1]"].value is None and output.metrics["flip_rate[0.1]"].note
    assert output.metrics["mean_abs_score_change[0.1]"].value > 0
    assert "performance_drop[0.1]" in output.metrics  # drop of r2


def test_multiclass_flip_rate_is_the_predicted_class_changing_and_matches_the_gaussian_closed_form(tmp_path):
    """#18: the predicted class changes when x + noise leaves the row's band, with probability
    Phi(-distance to each edge of the band / (sigma sd)) summed over the band's edges."""
    from noise_models import BandClassifier
    from task_support import model_data

    rng = np.random.default_rng(11)
    n, repeats, low, high = 4000, 10, -0.5, 0.7
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    band = (frame["x"] >= low).astype(int) + (frame["x"] >= high).astype(int)
    frame["label"] = np.array(["a", "b", "c"], dtype=object)[band]
    path = tmp_path / "bands.pkl"
    with open(path, "wb") as handle:
        pickle.dump(BandClassifier(["x", "z"], "x", low, high), handle)
    data = model_data(path, frame, ["x", "z"], "label", task="multiclass", fmt="pickle")
    output = run_check("noise_robustness", data, {"levels": [0.05, 0.2], "n_repeats": repeats, "max_rows": n}, seed=5)
    x = frame["x"].to_numpy()
    sd = np.std(x, ddof=1)
    for level in (0.05, 0.2):
        scale = level * sd
        # leaving the band, exactly: below low -> above low; from high -> below high; between -> either edge
        p = np.where(x < low, norm.cdf((x - low) / scale),
                     np.where(x >= high, norm.cdf((high - x) / scale),
                              norm.cdf((low - x) / scale) + norm.cdf((x - high) / scale)))
        expected = p.mean()
        se = np.sqrt(np.sum(p * (1 - p))) / (n * np.sqrt(repeats))
        measured = output.metrics[f"flip_rate[{level}]"].value
        assert expected > 0.01
        assert abs(measured - expected) < 4 * se, (level, measured, expected, se)  # 4 standard errors
    assert output.metrics["sensitivity[z]"].value == 0.0  # the model ignores z: exactly no flip
    assert output.metrics["performance_drop[0.2]"].value > 0  # accuracy falls from 1 under noise
    assert any("predicted (most probable) class" in note for note in output.notes)


def test_regression_flip_is_a_move_beyond_the_declared_tolerance(tmp_path):
    """#18: predict = x, so a row flips when |sigma sd eps| > tolerance: P = 2 Phi(-tolerance / (sigma sd))."""
    from noise_models import OneColumnRegressor
    from task_support import model_data

    rng = np.random.default_rng(3)
    n, repeats, tolerance = 3000, 10, 0.1
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    frame["y"] = frame["x"] + rng.normal(0, 0.1, n)
    path = tmp_path / "identity.pkl"
    with open(path, "wb") as handle:
        pickle.dump(OneColumnRegressor(["x", "z"], "x"), handle)
    data = model_data(path, frame, ["x", "z"], "y", task="regression", fmt="pickle")
    output = run_check("noise_robustness", data, {"levels": [0.05, 0.2], "n_repeats": repeats, "max_rows": n,
                                                  "tolerance": tolerance}, seed=2)
    sd = np.std(frame["x"].to_numpy(), ddof=1)
    for level in (0.05, 0.2):
        p = 2 * norm.cdf(-tolerance / (level * sd))
        se = np.sqrt(p * (1 - p) / (n * repeats))
        measured = output.metrics[f"flip_rate[{level}]"].value
        assert 0.01 < p < 0.99
        assert abs(measured - p) < 4 * se, (level, measured, p, se)  # 4 standard errors
    assert output.metrics["sensitivity[z]"].value == 0.0
    assert any("more than 0.1 (y" in note for note in output.notes)


def test_tolerance_is_refused_on_a_classifier(gbm):
    outcome = execute(CheckTask("c", "noise_robustness", {"tolerance": 0.1, "max_rows": 50}, 0, 60), gbm)
    assert outcome.output is None and "params.tolerance" in outcome.error
