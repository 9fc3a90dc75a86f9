"""missing_values, out_of_range and invariance on models built to pass or to break them."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from check_support import run_check
from function_models import FunctionModel
from test_explain_model_agnostic import NUMERIC, _data_with_model

from auditkit.engine.worker import CheckTask, execute

FEATURES = NUMERIC + ["home_ownership", "purpose", "zip_region"]


@pytest.fixture(scope="module")
def frame(samples):
    return pd.read_csv(samples / "credit_test.csv").iloc[:600]


@pytest.fixture(scope="module")
def gbm(samples, frame):
    return _data_with_model(samples / "credit_gbm.onnx", frame, FEATURES, "defaulted", fmt="onnx")


def test_a_model_with_an_imputer_survives_every_missing_feature(gbm):
    output = run_check("missing_values", gbm, {"max_rows": 300})
    assert output.metrics["features_breaking"].value == 0
    assert all(output.metrics[f"error_rate[{f}]"].value == 0 for f in FEATURES)
    # income is the strongest driver: losing it changes some decisions, n_open_accounts' none
    assert output.metrics["decision_change_rate[income]"].value > output.metrics[
        "decision_change_rate[n_open_accounts]"].value


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_model_that_crashes_on_missing_input_is_a_finding_not_an_error(tmp_path, frame):
    from sklearn.linear_model import LogisticRegression

    clean = frame.dropna(subset=NUMERIC)
    model = LogisticRegression(max_iter=500).fit(clean[NUMERIC], clean["defaulted"])  # no imputer
    path = tmp_path / "no_imputer.pkl"
    path.write_bytes(pickle.dumps(model))
    data = _data_with_model(path, clean, NUMERIC, "defaulted")
    output = run_check("missing_values", data, {"max_rows": 100})
    assert output.metrics["features_breaking"].value == len(NUMERIC)
    assert all(r["crashed"] and "NaN" in r["error"] for r in output.tables["features"])


def test_out_of_range_probes_pass_on_trees_and_catch_an_overflowing_model(gbm, tmp_path):
    output = run_check("out_of_range", gbm, {"max_rows": 200})
    assert output.metrics["failures"].value == 0
    probes = {(r["feature"], r["probe"]) for r in output.tables["probes"]}
    assert ("zip_region", "a category never seen") in probes
    assert ("n_late_payments", "negative where the data are never negative") in probes

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.uniform(0, 100, 300)})
    path = tmp_path / "exp.pkl"
    path.write_bytes(pickle.dumps(FunctionModel("exponential", ["x1"])))
    data = _data_with_model(path, frame.assign(y=0.0), ["x1"], "y", task="regression")
    broken = run_check("out_of_range", data, {"max_rows": 100})
    # exp(10 x 100) overflows: the upward probe gives inf, the downward ones stay finite
    assert broken.metrics["failures"].value == 1
    assert broken.tables["failures"][0]["probe"].startswith("10x")


def test_invariance_holds_for_an_unused_column_and_catches_a_wrong_monotone_claim(samples, frame):
    data = _data_with_model(samples / "credit_logreg.onnx", frame, NUMERIC, "defaulted", fmt="onnx")
    output = run_check("invariance", data, {"monotone": {"income": "decreasing", "debt_ratio": "decreasing"},
                                            "max_rows": 400})
    # the logistic regression lowers risk with income and raises it with debt_ratio (ground truth)
    assert output.metrics["violation_rate[monotone: income]"].value == 0
    assert output.metrics["violation_rate[monotone: debt_ratio]"].value == 1.0
    assert {v["relation"] for v in output.tables["violations"]} == {"monotone (decreasing): debt_ratio"}


def test_invariant_and_equivalent_columns_on_a_function_of_two_inputs(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x1": rng.normal(size=500), "x2": rng.normal(size=500), "x3": rng.choice([1.0, 2.0], 500)})
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(FunctionModel("linear_plus_square", ["x1", "x2", "x3"])))
    data = _data_with_model(path, frame.assign(y=0.0), ["x1", "x2", "x3"], "y", task="regression")
    data.threshold = 0.5
    data.decisions = (data.scores >= 0.5).astype(np.int64)
    output = run_check("invariance", data, {"invariant": ["x3", "x2"], "max_rows": 200})
    assert output.metrics["violation_rate[invariant: x3]"].value == 0.0  # f ignores x3
    assert output.metrics["violation_rate[invariant: x2]"].value > 0.2  # f = 2 x1 + x2^2


@pytest.mark.parametrize("params, fragment", [
    ({"invariant": ["no_such_column"]}, "no_such_column"),
    ({"monotone": {"purpose": "increasing"}}, "categorical"),
    ({}, "declare at least one relation"),
])
def test_bad_relations_are_errors_that_name_them(gbm, params, fragment):
    outcome = execute(CheckTask("c", "invariance", params, 0, 60), gbm)
    assert outcome.output is None and fragment in outcome.error
