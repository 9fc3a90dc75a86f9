"""`performance` against scikit-learn, and its bootstrap intervals against their nominal coverage."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn import metrics as skm

from check_support import binary_data, run_check

from auditkit.adapters.base import AdapterSpec
from auditkit.engine.context import AuditData
from auditkit.methods.stats import BinaryMetrics, MulticlassMetrics, RegressionMetrics, resample_counts

import pandas as pd

SKLEARN_BINARY = {
    "roc_auc": lambda y, d, p: skm.roc_auc_score(y, p),
    "average_precision": lambda y, d, p: skm.average_precision_score(y, p),
    "accuracy": lambda y, d, p: skm.accuracy_score(y, d),
    "balanced_accuracy": lambda y, d, p: skm.balanced_accuracy_score(y, d),
    "precision": lambda y, d, p: skm.precision_score(y, d),
    "recall": lambda y, d, p: skm.recall_score(y, d),
    "f1": lambda y, d, p: skm.f1_score(y, d),
    "log_loss": lambda y, d, p: skm.log_loss(y, p),
    "brier_score": lambda y, d, p: skm.brier_score_loss(y, p),
}


def _labels_and_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(float)
    # rounded scores create ties, which is where AUC and AP implementations differ
    scores = np.clip(np.round(0.25 + 0.35 * y + rng.normal(0, 0.2, n), 2), 0, 1)
    return y, scores


def test_binary_point_estimates_equal_scikit_learn(seed):
    y, p = _labels_and_scores(np.random.default_rng(seed), 3000)
    output = run_check("performance", binary_data(y, p), {"bootstrap": 0})
    d = (p >= 0.5).astype(int)
    assert 0.6 < output.metrics["roc_auc"].value < 0.99  # a non-trivial case
    for name, reference in SKLEARN_BINARY.items():
        # 1e-12: the same sums in another order
        assert_allclose(output.metrics[name].value, reference(y, d, p), rtol=0, atol=1e-12, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(20, 300))
def test_every_bootstrap_resample_equals_scikit_learn_on_the_expanded_rows(draw_seed, n):
    rng = np.random.default_rng(draw_seed)
    y, p = _labels_and_scores(rng, n)
    y[:2] = [0, 1]  # both classes present in the data
    d = (p >= 0.5).astype(float)
    computer = BinaryMetrics(y, d, p)
    counts = resample_counts(rng, n, 2)
    for row in counts:
        rows = np.repeat(np.arange(n), row.astype(int))
        yy, dd, pp = y[rows], d[rows], p[rows]
        if len(np.unique(yy)) < 2 or dd.sum() == 0:
            continue  # undefined for scikit-learn too
        for name, reference in SKLEARN_BINARY.items():
            assert_allclose(computer.compute(name, row[None, :])[0], reference(yy, dd, pp), atol=1e-10, err_msg=name)


def test_multiclass_and_regression_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n, k = 2000, 3
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    d = proba.argmax(axis=1)
    mc = MulticlassMetrics(y, d, proba, k)
    ones = np.ones((1, n))
    assert_allclose(mc.compute("accuracy", ones)[0], skm.accuracy_score(y, d), atol=1e-12)
    assert_allclose(mc.compute("f1_macro", ones)[0], skm.f1_score(y, d, average="macro"), atol=1e-12)
    assert_allclose(mc.compute("log_loss", ones)[0], skm.log_loss(y, proba), atol=1e-12)

    target = rng.normal(10, 3, n)
    prediction = target + rng.normal(0, 1.5, n)
    reg = RegressionMetrics(target, prediction)
    assert_allclose(reg.compute("mae", ones)[0], skm.mean_absolute_error(target, prediction), atol=1e-12)
    assert_allclose(reg.compute("rmse", ones)[0], np.sqrt(skm.mean_squared_error(target, prediction)), atol=1e-12)
    assert_allclose(reg.compute("r2", ones)[0], skm.r2_score(target, prediction), atol=1e-12)


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_population_value_at_about_the_nominal_rate():
    # Population: a large fixed sample whose AUC and accuracy are the "true" values.
    rng = np.random.default_rng(2024)
    y_pop, p_pop = _labels_and_scores(rng, 400_000)
    d_pop = (p_pop >= 0.5).astype(int)
    truth = {"roc_auc": skm.roc_auc_score(y_pop, p_pop), "accuracy": skm.accuracy_score(y_pop, d_pop)}
    covered = {name: 0 for name in truth}
    trials = 150
    for trial in range(trials):
        rows = rng.choice(len(y_pop), 400, replace=False)
        output = run_check("performance", binary_data(y_pop[rows], p_pop[rows]),
                           {"metrics": list(truth), "bootstrap": 400}, seed=trial)
        for name, value in truth.items():
            low, high = output.metrics[name].ci
            covered[name] += low <= value <= high
    for name, hits in covered.items():
        rate = hits / trials
        # 95% nominal; percentile intervals run slightly narrow at n=400. With 150 trials the
        # binomial standard error is 1.8 points, so 0.88-0.99 is about +-3.5 standard errors.
        assert 0.88 <= rate <= 0.99, (name, rate)


def test_intervals_are_seeded_and_reproducible():
    y, p = _labels_and_scores(np.random.default_rng(1), 1000)
    first = run_check("performance", binary_data(y, p), {"bootstrap": 100}, seed=5)
    again = run_check("performance", binary_data(y, p), {"bootstrap": 100}, seed=5)
    other = run_check("performance", binary_data(y, p), {"bootstrap": 100}, seed=6)
    assert first.metrics["roc_auc"].ci == again.metrics["roc_auc"].ci
    assert first.metrics["roc_auc"].ci != other.metrics["roc_auc"].ci


def test_probability_metrics_are_null_with_a_note_for_label_only_models():
    y, p = _labels_and_scores(np.random.default_rng(2), 500)
    labels = (p >= 0.5).astype(float)
    output = run_check("performance", binary_data(y, labels, score_kind="label"), {"bootstrap": 0})
    assert output.metrics["log_loss"].value is None and "not probabilities" in output.metrics["log_loss"].note
    assert output.metrics["accuracy"].value == pytest.approx(skm.accuracy_score(y, labels))


def test_rows_without_a_target_value_are_left_out_and_said_so():
    y, p = _labels_and_scores(np.random.default_rng(3), 600)
    y_missing = y.copy()
    y_missing[:100] = np.nan
    output = run_check("performance", binary_data(y_missing, p), {"metrics": ["roc_auc"], "bootstrap": 0})
    assert output.metrics["roc_auc"].n == 500
    assert output.metrics["roc_auc"].value == pytest.approx(skm.roc_auc_score(y[100:], p[100:]), abs=1e-12)
    assert any("100 of 600 rows have no target" in note for note in output.notes)


def test_a_task_without_target_is_skipped_with_the_reason():
    data = binary_data(None, np.linspace(0, 1, 50))
    output = run_check("performance", data)
    assert output.skipped is not None and "no target" in output.skipped
