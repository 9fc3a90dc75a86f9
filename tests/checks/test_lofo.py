"""lofo: refitting without a feature loses what the feature carried, nothing when it is noise."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from check_support import run_check
from test_explain_model_agnostic import _data_with_model


def test_lofo_on_a_linear_model_loses_r2_by_the_feature_share_of_variance(tmp_path):
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "noise"])
    y = 2.0 * X.a + 1.0 * X.b + rng.normal(0, 1.0, n)
    path = tmp_path / "linear.pkl"
    path.write_bytes(pickle.dumps(LinearRegression().fit(X, y)))
    data = _data_with_model(path, X.assign(y=y), ["a", "b", "noise"], "y", task="regression")
    output = run_check("lofo", data, {"metric": "r2", "folds": 3})
    importance = {r["feature"]: r["importance"] for r in output.tables["importance"]}
    # Var(y) = 4 + 1 + 1 = 6: without a, R^2 falls from 5/6 to 1/6 (loss 4/6); without b, by 1/6
    assert importance["a"] == pytest.approx(4 / 6, abs=0.03)
    assert importance["b"] == pytest.approx(1 / 6, abs=0.03)
    assert abs(importance["noise"]) < 0.005
    assert output.metrics["baseline_score"].value == pytest.approx(5 / 6, abs=0.02)


def test_lofo_is_skipped_for_models_that_cannot_be_refitted(samples):
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:200]
    numeric = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount",
               "employment_years", "n_open_accounts"]
    data = _data_with_model(samples / "credit_logreg.onnx", frame, numeric, "defaulted", fmt="onnx")
    output = run_check("lofo", data)
    assert output.skipped is not None and "cannot be refitted" in output.skipped
