"""`influential_instances` against actual leave-one-out refits, and a planted outlier."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import skops.io
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from check_support import run_check

from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.engine.context import AuditData
from auditkit.methods.influence import LinearFit, leave_one_out_steps, linear_fit_of


def _logistic_data(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(0, 2, n), "c": rng.uniform(-1, 1, n)})
    logit = -0.5 + 1.2 * X["a"] - 0.4 * X["b"] + 0.8 * X["c"]
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)


def test_one_step_leave_one_out_matches_actual_logistic_refits(seed):
    rng = np.random.default_rng(seed)
    X, y = _logistic_data(rng, 300)
    model = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(X, y)
    fit, _ = linear_fit_of(model, 1)
    fit, gradient = fit.polished(X.to_numpy(), y.astype(float))
    assert gradient < 1e-9
    steps = leave_one_out_steps(fit, X.to_numpy(), y.astype(float))
    audit = pd.DataFrame(rng.normal(0, 1.5, (200, 3)), columns=list(X.columns))
    leverage_order = np.argsort(-np.abs(steps).sum(axis=1))
    rows = np.r_[leverage_order[:10], rng.choice(300, 10, replace=False)]  # the most influential and others
    for j in rows:
        keep = np.arange(300) != j
        refit = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(X[keep], y[keep])
        actual = refit.predict_proba(audit)[:, 1] - model.predict_proba(audit)[:, 1]
        Z = fit.design(audit.to_numpy())
        estimate = fit.predict(Z, fit.theta + steps[j]) - fit.predict(Z)
        assert np.abs(actual).max() > 1e-6  # removing a row does move the scores (10 rows by > 1e-2)
        # one-step Newton: the error is second order in the step; at n = 300 the most influential rows'
        # changes are ~3% smaller than the refits' (measured), the others' closer still
        assert_allclose(estimate, actual, rtol=0, atol=0.05 * np.abs(actual).max())
        # and the objective is scikit-learn's: Newton iterated to convergence without j is the refit itself
        exact, _ = LinearFit(fit.theta.copy(), True, True, fit.c, fit.alpha).polished(X.to_numpy()[keep],
                                                                                      y[keep].astype(float))
        assert_allclose(exact.theta, np.r_[refit.coef_[0], refit.intercept_], rtol=0, atol=1e-6)  # solver tolerance


@pytest.mark.parametrize("model", [LinearRegression(), Ridge(alpha=3.0)])
def test_least_squares_leave_one_out_is_exact(seed, model):
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(0, 1, (80, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(0, 0.3, 80)
    fitted = model.fit(X, y)
    fit, _ = linear_fit_of(fitted, 1)
    steps = leave_one_out_steps(fit, X, y)
    for j in (0, 17, 79):
        keep = np.arange(80) != j
        refit = type(model)(**model.get_params()).fit(X[keep], y[keep])
        # exact up to the solvers' rounding
        assert_allclose(fit.theta + steps[j], np.r_[refit.coef_, refit.intercept_], rtol=0, atol=1e-10)


def test_the_least_squares_step_of_a_mean_is_a_closed_form():
    fit = LinearFit(np.array([2.0]), True, False, 1.0, 0.0)
    steps = leave_one_out_steps(fit, np.zeros((4, 0)), np.array([1.0, 1.0, 1.0, 5.0]))[:, 0]
    assert_allclose(steps, [1 / 3, 1 / 3, 1 / 3, -1.0], rtol=1e-15)  # means of the three others: 7/3, 7/3, 7/3, 1


def _audit_data(model, X_audit: pd.DataFrame, reference: pd.DataFrame, *, fmt: str = "skops") -> AuditData:
    payload = skops.io.dumps(model)
    path = io.BytesIO(payload)  # noqa: F841 - the adapter reads the bytes from the spec
    from auditkit.adapters.base import ModelBytes, sha256_bytes

    spec = AdapterSpec(format=fmt, path="model.skops", trusted_types=tuple(skops.io.get_untrusted_types(data=payload)),
                       payload=ModelBytes(payload, sha256_bytes(payload), sha256_bytes(payload)))
    adapter = load_adapter(spec)
    scores = adapter.predict(X_audit)
    frame = X_audit.assign(y=0).rename_axis("row")
    return AuditData(frame=frame, features=list(X_audit.columns), target="y", protected=[], task="binary",
                     scores=scores, decisions=(scores >= 0.5).astype(np.int64), y=np.zeros(len(frame)),
                     score_kind="probability", adapter_spec=adapter.spec, threshold=0.5, classes=adapter.classes,
                     reference=reference)


def test_a_planted_outlier_ranks_first_and_its_row_is_named(seed):
    rng = np.random.default_rng(seed + 2)
    X, y = _logistic_data(rng, 400)
    X.loc[123, ["a", "b", "c"]] = [6.0, -8.0, 1.0]  # far out, and labelled against the trend
    y[123] = 0
    model = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y)
    reference = X.assign(y=y)
    X_audit = pd.DataFrame(rng.normal(0, 1, (300, 3)), columns=["a", "b", "c"])
    output = run_check("influential_instances", _audit_data(model, X_audit, reference), {"top_k": 5})
    top = output.tables["influential"][0]
    assert top["row"] == 123 and top["target"] == 0 and top["a"] == 6.0
    second = output.tables["influential"][1]["influence"]
    assert top["influence"] > 3 * second  # it stands out, not merely first
    assert output.metrics["max_influence"].value == top["influence"]
    assert any("one-step Newton" in note for note in output.notes)


def test_other_estimators_are_refitted_row_by_row_and_the_outlier_still_ranks_first(seed):
    rng = np.random.default_rng(seed + 3)
    X, y = _logistic_data(rng, 200)
    X.loc[7, ["a", "b", "c"]] = [6.0, -8.0, 1.0]
    y[7] = 0
    # class weights take the model outside the closed form: the check refits it
    model = LogisticRegression(class_weight="balanced").fit(X, y)
    X_audit = pd.DataFrame(rng.normal(0, 1, (100, 3)), columns=["a", "b", "c"])
    data = _audit_data(model, X_audit, X.assign(y=y))
    output = run_check("influential_instances", data, {"max_refits": 200, "top_k": 3})
    top = output.tables["influential"][0]
    assert top["row"] == 7
    keep = np.arange(200) != 7
    refit = LogisticRegression(class_weight="balanced").fit(X[keep], y[keep])
    base = LogisticRegression(class_weight="balanced").fit(X, y)
    expected = np.mean(np.abs(refit.predict_proba(X_audit)[:, 1] - base.predict_proba(X_audit)[:, 1]))
    assert_allclose(top["influence"], expected, rtol=1e-12)  # the same refits
    assert any(note.startswith("refit noise: 0 ") for note in output.notes)  # lbfgs ignores its random_state
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    tree_output = run_check("influential_instances", _audit_data(tree, X_audit, X.assign(y=y)), {"max_refits": 5})
    assert any(note.startswith("refit noise: ") and "random_state" in note for note in tree_output.notes)
    assert tree_output.metrics["rows_assessed"].value == 5


def test_onnx_models_and_missing_references_are_skipped_with_a_reason(samples):
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:50].rename_axis("row")
    spec = AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx"))
    adapter = load_adapter(spec)
    scores = adapter.predict(frame)
    data = AuditData(frame=frame, features=adapter.input_features, target="defaulted", protected=[], task="binary",
                     scores=scores, decisions=(scores >= 0.5).astype(np.int64), y=frame["defaulted"].to_numpy(float),
                     score_kind="probability", adapter_spec=adapter.spec, threshold=0.5, reference=frame)
    assert "cannot be refitted" in run_check("influential_instances", data).skipped
    rng = np.random.default_rng(0)
    X, y = _logistic_data(rng, 100)
    no_reference = _audit_data(LogisticRegression().fit(X, y), X, None)
    assert "data.reference" in run_check("influential_instances", no_reference).skipped
