"""SHAP per class for multiclass models: equal to shap / closed forms on the source estimator (#18)."""
from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.methods.shap_values import explain_classes

COLUMNS = ["a", "b", "c", "d"]


def _three_classes(seed: int, n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=COLUMNS)
    # class 2 from d alone, 0 vs 1 from a and b; c is noise
    y = np.where(X["d"] > 0.8, 2, np.where(X["a"] + 0.5 * X["b"] > 0, 1, 0))
    return X, y


def _adapter(tmp_path, estimator) -> object:
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    return load_adapter(AdapterSpec("joblib", str(path), trust_pickle=True, feature_names=tuple(COLUMNS)))


def test_random_forest_per_class_shap_equals_shap_tree_explainer(tmp_path, seed):
    import shap

    X, y = _three_classes(seed)
    forest = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(X, y)
    model = _adapter(tmp_path, forest)
    rows, background = X.iloc[:60], X.iloc[300:350]
    ours = explain_classes(model, rows, background, COLUMNS)
    reference = np.asarray(shap.TreeExplainer(forest, data=background.to_numpy(), feature_perturbation="interventional",
                                              model_output="raw").shap_values(rows.to_numpy()))
    assert reference.shape == ours.values.shape == (60, 4, 3) and np.abs(reference).max() > 0.05  # not trivial
    assert_allclose(ours.values, reference, atol=1e-6)  # float64 both sides; shap's float32 thresholds only
    assert ours.units == "probability"
    assert ours.additivity_error < 1e-6  # base + sum = predict_proba of each class


def _enumerated_shapley(f, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The definition, coalition by coalition: phi_j = sum over S without j of
    |S|! (p-|S|-1)! / p! (v(S+j) - v(S)), v(S) = mean over background rows b of f(x_S, b_rest)."""
    from itertools import combinations
    from math import factorial

    p = len(x)

    def v(coalition: tuple[int, ...]) -> np.ndarray:
        hybrid = background.copy()
        hybrid[:, list(coalition)] = x[list(coalition)]
        return f(hybrid).mean(axis=0)

    phi = np.zeros((p, f(background[:1]).shape[1]))
    for j in range(p):
        others = [i for i in range(p) if i != j]
        for size in range(p):
            for coalition in combinations(others, size):
                weight = factorial(size) * factorial(p - size - 1) / factorial(p)
                phi[j] += weight * (v(tuple(sorted(coalition + (j,)))) - v(coalition))
    return phi


def test_multiclass_gradient_boosting_shap_equals_enumerated_shapley_values_of_its_margins(tmp_path, seed):
    """shap's TreeExplainer refuses scikit-learn's multiclass GBM; the reference is the Shapley
    definition enumerated over the 16 coalitions of decision_function, with the same background."""
    X, y = _three_classes(seed)
    gbm = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(X, y)
    model = _adapter(tmp_path, gbm)
    rows, background = X.iloc[:12], X.iloc[300:340]
    ours = explain_classes(model, rows, background, COLUMNS)

    def margins(a: np.ndarray) -> np.ndarray:  # the model compares float32 features
        return gbm.decision_function(pd.DataFrame(np.asarray(a, np.float32).astype(np.float64), columns=COLUMNS))

    reference = np.stack([_enumerated_shapley(margins, x, background.to_numpy()) for x in rows.to_numpy()])
    assert np.abs(reference).max() > 0.1
    assert_allclose(ours.values, reference, atol=1e-6)  # both exact; shap's C code and the sums above round differently
    assert_allclose(ours.base_values, margins(background.to_numpy()).mean(axis=0), atol=1e-6)
    assert ours.units == "margin (softmax logit)"
    assert ours.additivity_error < 1e-6  # base + sum of values = decision_function, to float rounding
    # the planted structure: c plays no part in any class
    assert np.abs(ours.values[:, 2, :]).max() < np.abs(ours.values[:, 3, 2]).mean() / 20


def test_multinomial_logistic_shap_is_the_closed_form_per_class(tmp_path, seed):
    X, y = _three_classes(seed)
    logreg = LogisticRegression(max_iter=1000).fit(X, y)
    model = _adapter(tmp_path, logreg)
    rows, background = X.iloc[:50], X.iloc[300:]
    ours = explain_classes(model, rows, background, COLUMNS)
    mean = background.to_numpy().mean(axis=0)
    for c in range(3):
        # linear SHAP: w_cj (x_j - E[x_j]) (Lundberg & Lee 2017; shap's tests/explainers/test_linear.py)
        assert_allclose(ours.values[:, :, c], (rows.to_numpy() - mean) * logreg.coef_[c], atol=1e-12)
    assert_allclose(ours.raw_output, logreg.decision_function(rows), atol=1e-12)
    assert ours.additivity_error < 1e-12


def test_tier_onnx_and_its_sklearn_source_give_the_same_per_class_values_and_the_planted_truth(samples):
    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:120]
    background = pd.read_csv(samples / "credit_train.csv").iloc[:80]
    features = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount",
                "employment_years", "n_open_accounts", "home_ownership", "purpose", "zip_region"]
    onnx = load_adapter(AdapterSpec("onnx", str(samples / "credit_tier.onnx")))
    sk = load_adapter(AdapterSpec("skops", str(samples / "credit_tier.skops"),
                                  trusted_types=("numpy.dtype", "sklearn.tree._tree.Tree")))
    a = explain_classes(onnx, frame[features], background[features], features)
    b = explain_classes(sk, frame[features], background[features], features)
    assert a.classes == b.classes == ["high", "low", "medium"]
    assert_allclose(a.values, b.values, atol=1e-6)  # the same trees, float32 in both; sums differ in rounding
    assert a.additivity_error < 1e-5 and b.additivity_error < 1e-6  # onnxruntime sums in float32
    per_class = np.abs(a.values).mean(axis=0)  # (features, classes)
    late, accounts = features.index("n_late_payments"), features.index("n_open_accounts")
    # sample_models/README.md section 5: n_late_payments alone decides "high"; n_open_accounts nothing
    assert per_class[:, 0].argmax() == late and per_class[late, 0] > 0.9 * per_class[:, 0].sum()
    assert per_class[accounts].max() == 0.0
