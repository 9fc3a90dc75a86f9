"""shap_importance: exact explainers, additive in raw units, and the sample model's ground truth."""
from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from check_support import run_check
from support import float32_ties
from test_explain_model_agnostic import NUMERIC, _data_with_model

FEATURES = NUMERIC + ["home_ownership", "purpose", "zip_region"]


@pytest.fixture(scope="module")
def frame(samples):
    return pd.read_csv(samples / "credit_test.csv").iloc[:1500]


def test_tree_shap_on_the_gbm_pipeline_is_additive_in_log_odds_and_finds_the_ground_truth(samples, frame):
    data = _data_with_model(samples / "credit_gbm.joblib", frame, FEATURES, "defaulted", fmt="joblib")
    data.protected = ["race", "sex"]
    output = run_check("shap_importance", data, {"max_rows": 400, "proxies": ["zip_region"]})
    assert "exact TreeSHAP" in output.notes[0] and "log-odds" in output.notes[0]
    # base value + a row's SHAP values = the GBM's decision_function (log-odds), exactly
    assert output.metrics["additivity_error"].value < 1e-6
    ranks = {r["feature"]: r["rank"] for r in output.tables["importance"]}
    # ground truth (sample_models/README.md): income, debt_ratio and late payments drive default;
    # n_open_accounts has no effect; sex and race are not model inputs (zero importance)
    assert {ranks["income"], ranks["debt_ratio"], ranks["n_late_payments"]} <= {1, 2, 3, 4}
    assert ranks["n_open_accounts"] >= len(FEATURES) - 3
    assert "race" not in ranks and "sex" not in ranks
    assert output.metrics["protected_share"].value == pytest.approx(
        next(r["share"] for r in output.tables["importance"] if r["feature"] == "zip_region"))
    assert output.metrics["protected_share"].value > 0.03  # the proxy carries real weight
    assert sum(r["share"] for r in output.tables["importance"]) == pytest.approx(1.0)


def test_tree_shap_equals_shap_on_the_final_estimator_summed_over_one_hot_columns(samples, frame):
    import shap

    from auditkit.adapters.base import load_adapter
    from auditkit.methods.shap_values import explain

    data = _data_with_model(samples / "credit_gbm.joblib", frame, FEATURES, "defaulted", fmt="joblib")
    model = load_adapter(data.adapter_spec)
    X, background = frame.iloc[:200], frame.iloc[500:600]
    ours = explain(model, X, background, FEATURES)
    pipeline = joblib.load(samples / "credit_gbm.joblib")
    columns = list(pipeline.feature_names_in_)
    prep, final = pipeline[:-1], pipeline[-1]
    Xt = prep.transform(X[columns]).astype(np.float32).astype(np.float64)
    Bt = prep.transform(background[columns]).astype(np.float32).astype(np.float64)
    reference = shap.TreeExplainer(final, data=Bt, feature_perturbation="interventional",
                                   model_output="raw").shap_values(Xt)
    names = list(prep.get_feature_names_out(columns))
    # shap holds thresholds as float32: rows with a value between a threshold and its rounding
    # are no reference (test_tree_shap_is_exact_where_shap_rounds_a_threshold covers them)
    fair = ~float32_ties(final, Xt)
    assert not float32_ties(final, Bt).any() and fair.mean() > 0.9
    for j, feature in enumerate(FEATURES):
        parts = [i for i, name in enumerate(names) if name.split("__", 1)[1] == feature
                 or name.split("__", 1)[1].startswith(feature + "_")]
        assert_allclose(ours.values[fair, j], reference[fair][:, parts].sum(axis=1), atol=1e-9)


def test_tree_shap_is_exact_where_shap_rounds_a_threshold(samples, frame):
    """Row 22 holds a value between one of the GBM's float64 thresholds and its float32 rounding;
    shap's interventional code (float32 thresholds) attributes it 0.13 off against background row
    565. The reference: Shapley values of v(S) = f(x_S, b_rest) enumerated over the columns
    where x and b differ (#18)."""
    from itertools import combinations
    from math import factorial

    from auditkit.adapters.base import load_adapter
    from auditkit.methods.shap_values import explain

    data = _data_with_model(samples / "credit_gbm.joblib", frame, FEATURES, "defaulted", fmt="joblib")
    model = load_adapter(data.adapter_spec)
    X, background = frame.iloc[22:23], frame.iloc[565:566]
    pipeline = joblib.load(samples / "credit_gbm.joblib")
    columns = list(pipeline.feature_names_in_)
    prep, final = pipeline[:-1], pipeline[-1]
    x = prep.transform(X[columns]).astype(np.float32).astype(np.float64)[0]
    b = prep.transform(background[columns]).astype(np.float32).astype(np.float64)[0]
    assert float32_ties(final, x[None])[0]  # the case is the one shap gets wrong
    differ = list(np.flatnonzero(x != b))
    n = len(differ)
    value = {}
    for r in range(n + 1):
        for S in combinations(differ, r):
            z = b.copy()
            z[list(S)] = x[list(S)]
            value[S] = final.decision_function(z[None])[0]
    phi = np.zeros(len(x))
    for i in differ:
        rest = [d for d in differ if d != i]
        for r in range(n):
            for S in combinations(rest, r):
                with_i = tuple(sorted(S + (i,)))
                phi[i] += factorial(r) * factorial(n - r - 1) / factorial(n) * (value[with_i] - value[S])
    names = list(prep.get_feature_names_out(columns))
    expected = np.array([phi[[i for i, name in enumerate(names) if name.split("__", 1)[1] == f
                              or name.split("__", 1)[1].startswith(f + "_")]].sum() for f in FEATURES])
    ours = explain(model, X, background, FEATURES)
    assert np.abs(expected).max() > 0.1
    assert_allclose(ours.values[0], expected, atol=1e-6)  # leaf values pass through float32 in shap


def test_linear_shap_is_the_closed_form_and_matches_shap_linear_explainer(samples, frame):
    import shap

    data = _data_with_model(samples / "credit_logreg.pkl", frame, NUMERIC, "defaulted")
    from auditkit.adapters.base import load_adapter
    from auditkit.methods.shap_values import explain

    model = load_adapter(data.adapter_spec)
    X, background = frame.iloc[:300], frame.iloc[300:500]
    ours = explain(model, X, background, NUMERIC)
    with open(samples / "credit_logreg.pkl", "rb") as handle:
        pipeline = pickle.load(handle)
    prep, logistic = pipeline[:-1], pipeline[-1]
    Xt, Bt = prep.transform(X[NUMERIC]), prep.transform(background[NUMERIC])
    closed = logistic.coef_[0] * (Xt - Bt.mean(axis=0))  # w_j (x_j - E[x_j])
    assert_allclose(ours.values, closed, atol=1e-12)
    reference = shap.LinearExplainer(logistic, shap.maskers.Independent(Bt, max_samples=len(Bt))).shap_values(Xt)
    assert_allclose(ours.values, reference, atol=1e-9)
    assert ours.additivity_error < 1e-9


def test_onnx_linear_model_shap_matches_the_pickled_twin(samples, frame):
    onnx_out = run_check("shap_importance", _data_with_model(samples / "credit_logreg.onnx", frame, NUMERIC,
                                                             "defaulted", fmt="onnx"), {"max_rows": 300})
    pkl_out = run_check("shap_importance", _data_with_model(samples / "credit_logreg.pkl", frame, NUMERIC,
                                                            "defaulted"), {"max_rows": 300})
    ours = {r["feature"]: r["mean_abs_shap"] for r in onnx_out.tables["importance"]}
    twin = {r["feature"]: r["mean_abs_shap"] for r in pkl_out.tables["importance"]}
    for feature in NUMERIC:
        assert ours[feature] == pytest.approx(twin[feature], rel=1e-4)  # float32 coefficients in ONNX
    assert onnx_out.metrics["additivity_error"].value < 1e-3


def test_model_agnostic_shap_on_few_features_is_exact_shapley_enumeration(tmp_path):
    """f = x1 x2 + x3 with the background as the distribution of absent features: the Shapley
    values in closed form are phi3 = x3 - m3 and phi1 = (x1 m2 - m12 + x1 x2 - m1 x2) / 2 (m: the
    background means of x1, x2, x1 x2, x3), phi2 alike (#18: no longer a few sampled permutations)."""
    from function_models import FunctionModel

    from auditkit.adapters.base import load_adapter
    from auditkit.methods.shap_values import explain

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.uniform(-1, 1, size=(400, 3)), columns=["x1", "x2", "x3"])
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(FunctionModel("interaction", ["x1", "x2", "x3"])))
    data = _data_with_model(path, frame.assign(y=0.0), ["x1", "x2", "x3"], "y", task="regression")
    output = run_check("shap_importance", data, {"max_rows": 50, "background_size": 50})
    assert "exact Shapley values by enumeration" in output.notes[0] and "8 coalitions" in output.notes[0]
    assert output.metrics["additivity_error"].value < 1e-12
    shares = {r["feature"]: r["share"] for r in output.tables["importance"]}
    assert shares["x3"] > shares["x1"]  # x3 acts alone; x1 only through a product with x2

    X, background = frame.iloc[:20], frame.iloc[100:150]
    ours = explain(load_adapter(data.adapter_spec), X, background, ["x1", "x2", "x3"])
    m1, m2, m3 = background.mean()
    m12 = float((background.x1 * background.x2).mean())
    x1, x2, x3 = X.x1.to_numpy(), X.x2.to_numpy(), X.x3.to_numpy()
    expected = np.column_stack([(x1 * m2 - m12 + x1 * x2 - m1 * x2) / 2, (x2 * m1 - m12 + x1 * x2 - x1 * m2) / 2,
                                x3 - m3])
    assert_allclose(ours.values, expected, atol=1e-12)
    assert ours.base_value == pytest.approx(m12 + m3, abs=1e-12)


def test_onnx_tree_shap_equals_tree_shap_on_the_scikit_learn_twin(samples, frame):
    """The demo GBM as ONNX and as the joblib pipeline it was exported from: same SHAP values."""
    from auditkit.adapters.base import AdapterSpec, load_adapter
    from auditkit.methods.shap_values import explain

    onnx_model = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx")))
    sk_model = load_adapter(AdapterSpec(format="joblib", path=str(samples / "credit_gbm.joblib"), trust_pickle=True))
    X, background = frame.iloc[:300], frame.iloc[600:700]
    ours = explain(onnx_model, X, background, FEATURES)
    twin = explain(sk_model, X, background, FEATURES)
    assert "ONNX TreeEnsembleClassifier" in ours.explainer and ours.units == "log-odds"
    assert abs(ours.base_value - twin.base_value) < 1e-6
    # shap stores scikit-learn's double thresholds as floats: an explained or background row
    # whose value sits exactly on a rounded threshold may branch differently there (see
    # tests/methods/test_onnx_trees.py), while the translated ONNX trees branch as onnxruntime
    # does. Every other row must agree within 1e-6.
    equal = np.all(np.abs(ours.values - twin.values) < 1e-6, axis=1)
    assert equal.mean() > 0.98, np.flatnonzero(~equal)
    assert ours.additivity_error < 1e-4  # against the ONNX model's own probability, as log-odds


def test_multiclass_importance_is_mean_abs_shap_summed_over_classes_with_a_table_per_class(samples):
    """#18: shap_importance explains every class of a multiclass model instead of skipping."""
    from task_support import TIER_FEATURES, model_data

    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:400]
    data = model_data(samples / "credit_tier.onnx", frame, TIER_FEATURES, "risk_tier", task="multiclass",
                      reference=pd.read_csv(samples / "credit_train.csv").iloc[:300])
    output = run_check("shap_importance", data, {"max_rows": 150, "background_size": 60})
    assert "one set per class" in output.notes[0] and "softmax logit" in output.notes[0]
    by_class = pd.DataFrame(output.tables["importance_by_class"])
    assert sorted(by_class["class"].unique()) == ["high", "low", "medium"]
    summed = by_class.groupby("feature")["mean_abs_shap"].sum()
    for feature in TIER_FEATURES:
        assert output.metrics[f"mean_abs_shap[{feature}]"].value == pytest.approx(summed[feature], rel=1e-12)
    assert output.metrics["additivity_error"].value < 1e-5  # onnxruntime's float32 margins
    # the planted truth (sample_models/README.md section 5)
    assert output.metrics["rank[n_late_payments]"].value == 1
    assert output.metrics["mean_abs_shap[n_open_accounts]"].value == 0.0
    high = by_class[by_class["class"] == "high"].set_index("feature")["share"]
    assert high["n_late_payments"] > 0.9


def test_regression_attributions_are_in_the_predicted_targets_units_and_add_up_to_the_prediction(samples):
    """#18: the units name the target; base value + a row's SHAP values = the predicted interest rate."""
    from task_support import TIER_FEATURES, model_data

    frame = pd.read_csv(samples / "credit_test.csv").iloc[:300]
    data = model_data(samples / "credit_rate_gbr.onnx", frame, TIER_FEATURES, "interest_rate", task="regression",
                      reference=pd.read_csv(samples / "credit_train.csv").iloc[:200])
    output = run_check("shap_importance", data, {"max_rows": 100, "background_size": 50})
    assert "units: predicted interest_rate" in output.notes[0]
    assert output.metrics["additivity_error"].value < 1e-4  # onnxruntime sums float32 leaf values
    assert "predicted interest_rate" in output.plots[0].data["y_label"]
    # sample_models/README.md: zip_region and n_open_accounts do not enter the rate
    assert output.metrics["rank[debt_ratio]"].value <= 3
    assert output.metrics["mean_abs_shap[zip_region]"].value < 0.02
