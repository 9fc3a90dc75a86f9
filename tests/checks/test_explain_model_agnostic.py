"""permutation_importance and partial_dependence against scikit-learn and closed forms."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from check_support import run_check

from auditkit.adapters.base import AdapterSpec
from auditkit.engine.context import AuditData

NUMERIC = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
           "n_open_accounts"]


def _data_with_model(model_path, frame: pd.DataFrame, features: list[str], target: str, task: str = "binary",
                     fmt: str = "pickle") -> AuditData:
    from auditkit.adapters.base import load_adapter

    spec = AdapterSpec(format=fmt, path=str(model_path), trust_pickle=True, feature_names=tuple(features))
    adapter = load_adapter(spec)
    frame = frame.reset_index(drop=True)
    frame.index.name = "row"
    scores = adapter.predict(frame[features])
    y = frame[target].to_numpy(dtype=float)
    return AuditData(frame=frame, features=features, target=target, protected=[], task=task, scores=scores,
                     decisions=(scores >= 0.5).astype(np.int64) if task == "binary" else None, y=y,
                     score_kind=adapter.score_kind, adapter_spec=spec, threshold=0.5 if task == "binary" else None,
                     classes=adapter.classes)


@pytest.fixture(scope="module")
def logreg(samples):
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:1500]
    return _data_with_model(samples / "credit_logreg.pkl", frame, NUMERIC, "defaulted"), frame


def test_partial_dependence_equals_scikit_learn_brute_force(samples, logreg):
    from sklearn.inspection import partial_dependence as sk_pd

    data, frame = logreg
    output = run_check("partial_dependence", data, {"features": ["income", "n_late_payments"], "max_rows": 5000})
    with open(samples / "credit_logreg.pkl", "rb") as handle:
        pipeline = pickle.load(handle)
    for record in output.tables["pdp"]:
        reference = sk_pd(pipeline, frame[NUMERIC].astype(float), [record["feature"]], kind="average", grid_resolution=20,
                          percentiles=(0.05, 0.95), method="brute")
        assert_allclose(record["grid"], reference["grid_values"][0], rtol=1e-12)  # the same grid
        assert_allclose(record["pdp"], reference["average"][0], atol=1e-12)  # the same averages
    assert output.metrics["pdp_range[income]"].value > 0.05  # income matters


def test_monotone_relation_declared_the_wrong_way_is_caught(logreg):
    data, _ = logreg
    # default risk falls with income (ground truth coefficient -1.65 on log income):
    right = run_check("partial_dependence", data, {"monotone": {"income": "decreasing"}, "max_rows": 300})
    wrong = run_check("partial_dependence", data, {"monotone": {"income": "increasing"}, "max_rows": 300})
    # a logistic regression is monotone in each input: no curve breaks the true direction
    assert right.metrics["monotonicity_violation[income]"].value == 0.0
    assert right.metrics["pdp_max_violation[income]"].value == 0.0
    assert wrong.metrics["monotonicity_violation[income]"].value == 1.0
    assert wrong.metrics["pdp_max_violation[income]"].value > 0


def test_monotone_constraint_on_an_unknown_or_categorical_feature_is_an_error(logreg):
    from auditkit.engine.worker import CheckTask, execute

    data, _ = logreg
    outcome = execute(CheckTask("c", "partial_dependence", {"monotone": {"incme": "increasing"}}, 0, 60), data)
    assert outcome.output is None and "incme" in outcome.error


def test_permutation_importance_of_a_standardised_linear_model_is_twice_its_squared_coefficient(tmp_path):
    # Closed form (scikit-learn's own test): for y = sum(b_j x_j) with independent standard
    # x_j, shuffling x_j adds 2 b_j^2 to the mean squared error.
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    n = 20_000
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    coef = np.array([1.0, 0.5, 0.0])
    y = X.to_numpy() @ coef
    model = LinearRegression().fit(X, y)
    path = tmp_path / "linear.pkl"
    path.write_bytes(pickle.dumps(model))
    frame = X.assign(y=y)
    data = _data_with_model(path, frame, ["a", "b", "c"], "y", task="regression")
    output = run_check("permutation_importance", data, {"metric": "rmse", "n_repeats": 5, "max_rows": n})
    # importance on rmse: sqrt(2 b^2) - 0 = b * sqrt(2) (the baseline error is 0)
    for name, b in zip("abc", coef):
        assert output.metrics[f"importance[{name}]"].value == pytest.approx(np.sqrt(2) * b, rel=0.02, abs=1e-9)
    assert output.tables["importance"][0]["feature"] == "a"


def test_permutation_importance_agrees_with_scikit_learn_on_the_credit_model(samples, logreg):
    from sklearn.inspection import permutation_importance as sk_pi

    data, frame = logreg
    output = run_check("permutation_importance", data, {"metric": "roc_auc", "n_repeats": 10, "max_rows": 1500})
    with open(samples / "credit_logreg.pkl", "rb") as handle:
        pipeline = pickle.load(handle)
    reference = sk_pi(pipeline, frame[NUMERIC], frame["defaulted"], scoring="roc_auc", n_repeats=10, random_state=0)
    ours = {r["feature"]: r for r in output.tables["importance"]}
    for j, feature in enumerate(NUMERIC):
        # different shuffles: agree within the two estimates' sampling spread
        spread = 3 * (ours[feature]["importance_std"] + reference.importances_std[j]) + 1e-4
        assert abs(ours[feature]["importance"] - reference.importances_mean[j]) < spread, feature
    assert output.tables["importance"][0]["feature"] in ("income", "debt_ratio", "n_late_payments")
    # n_open_accounts has no effect on default by construction (sample_models/README.md)
    assert abs(ours["n_open_accounts"]["importance"]) < 0.005
