"""coefficients read from scikit-learn and ONNX agree; the surrogate tree is faithful where it should be."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from check_support import run_check
from test_explain_model_agnostic import NUMERIC, _data_with_model


@pytest.fixture(scope="module")
def frame(samples):
    return pd.read_csv(samples / "credit_test.csv").iloc[:3000]


def test_onnx_coefficients_with_the_scaler_folded_equal_the_pickles_in_raw_units(samples, frame):
    onnx_out = run_check("coefficients", _data_with_model(samples / "credit_logreg.onnx", frame, NUMERIC,
                                                          "defaulted", fmt="onnx"))
    pickled = _data_with_model(samples / "credit_logreg.pkl", frame, NUMERIC, "defaulted")
    with open(samples / "credit_logreg.pkl", "rb") as handle:
        pipeline = pickle.load(handle)
    scaler, logistic = pipeline[-2], pipeline[-1]
    raw = logistic.coef_[0] / scaler.scale_  # coefficient per raw unit
    onnx_coef = {r["name"]: r["coefficient"] for r in onnx_out.tables["coefficients"]}
    assert_allclose([onnx_coef[n] for n in NUMERIC], raw, rtol=1e-5)  # float32 in the ONNX graph
    intercept = logistic.intercept_[0] - np.sum(logistic.coef_[0] * scaler.mean_ / scaler.scale_)
    assert onnx_out.metrics["intercept"].value == pytest.approx(intercept, rel=1e-5)
    assert onnx_out.metrics["odds_ratio[debt_ratio]"].value == pytest.approx(np.exp(onnx_coef["debt_ratio"]))
    # the pickle reports coefficients on the scaled inputs, with a one-standard-deviation size
    sk_out = run_check("coefficients", pickled)
    sk = {r["name"]: r for r in sk_out.tables["coefficients"]}
    assert sk_out.notes[0].endswith("scaled inputs")
    assert sk["income"]["coefficient"] == pytest.approx(logistic.coef_[0][0])
    # ground truth: income lowers and debt_ratio raises the risk of default
    assert onnx_coef["income"] < 0 < onnx_coef["debt_ratio"]


def test_coefficients_are_skipped_for_a_tree_model(samples, frame):
    from auditkit.adapters.base import AdapterSpec, load_adapter
    from auditkit.engine.context import AuditData

    spec = AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx"))
    adapter = load_adapter(spec)
    features = adapter.input_features
    scores = adapter.predict(frame)
    data = AuditData(frame=frame.rename_axis("row"), features=features, target="defaulted", protected=[],
                     task="binary", scores=scores, decisions=(scores >= 0.5).astype(int),
                     y=frame["defaulted"].to_numpy(float), score_kind="probability", adapter_spec=spec, threshold=0.5,
                     classes=adapter.classes)
    output = run_check("coefficients", data)
    assert output.skipped is not None and "not linear" in output.skipped
    surrogate = run_check("surrogate_tree", data, {"max_depth": 4})
    assert 0.5 < surrogate.metrics["fidelity_r2"].value <= 1.0
    assert surrogate.metrics["fidelity_accuracy"].value > 0.85
    rules = surrogate.tables["rules"]
    assert sum(r["n"] for r in rules) == int(len(frame) * 0.7)  # every training row in one leaf
    used = {r["feature"].split(" = ")[0] for r in surrogate.tables["splits_importance"]}
    assert used & {"income", "debt_ratio", "n_late_payments"}


def test_surrogate_of_a_depth_two_tree_model_is_exact(tmp_path):
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    y = (X.a > 0) * 1.0 + (X.b > 0.5) * 2.0
    model = DecisionTreeRegressor(max_depth=2).fit(X, y)
    path = tmp_path / "tree.pkl"
    path.write_bytes(pickle.dumps(model))
    data = _data_with_model(path, X.assign(y=y), ["a", "b"], "y", task="regression")
    output = run_check("surrogate_tree", data, {"max_depth": 2, "min_leaf_share": 0.001})
    # the surrogate finds the same two splits; held-out rows that fall between two training
    # rows on either side of a split may land in the other leaf, so R^2 is close to, not at, 1
    assert output.metrics["fidelity_r2"].value > 0.99
    assert len(output.tables["rules"]) == 4
