"""`calibration` against scikit-learn's calibration_curve, closed forms of ECE/MCE and the Brier
score's decomposition, and a planted miscalibrated group."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from check_support import binary_data, run_check

from auditkit.adapters.base import AdapterSpec
from auditkit.engine.context import AuditData
from auditkit.methods.calibration import BinnedCalibration, brier_decomposition


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities, and outcomes drawn from them (a calibrated score)."""
    p = rng.beta(2, 5, n)
    return (rng.random(n) < p).astype(float), p


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_equals_scikit_learns_calibration_curve(seed, strategy):
    rng = np.random.default_rng(seed)
    y, p = _scores(rng, 4000)
    p = np.clip(p ** 0.7, 0, 1)  # miscalibrated, so the curve is off the diagonal
    output = run_check("calibration", binary_data(y, p), {"bins": 12, "strategy": strategy, "bootstrap": 0})
    prob_true, prob_pred = calibration_curve(y, p, n_bins=12, strategy=strategy)
    records = output.tables["bins"]
    assert len(records) == len(prob_true) >= 8
    # 1e-12: the same sums in another order
    assert_allclose([r["observed_rate"] for r in records], prob_true, rtol=0, atol=1e-12)
    assert_allclose([r["mean_score"] for r in records], prob_pred, rtol=0, atol=1e-12)
    curve = output.plots[0].data["series"][0]
    assert_allclose(curve["y"], prob_true, rtol=0, atol=1e-12)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_and_mce_are_the_count_weighted_mean_and_the_max_of_the_curves_gaps(seed, strategy):
    rng = np.random.default_rng(seed + 1)
    y, p = _scores(rng, 3000)
    p = np.clip(p * 1.3, 0, 1)  # over-confident
    output = run_check("calibration", binary_data(y, p), {"bins": 10, "strategy": strategy, "bootstrap": 0})
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
    # bin counts independently of auditkit's binning: np.histogram on the same edges (the scores are
    # continuous, so no score sits on an edge, where histogram's [a, b) and sklearn's (a, b] differ)
    edges = np.linspace(0, 1, 11) if strategy == "uniform" else np.percentile(p, np.linspace(0, 100, 11))
    counts = np.histogram(p, bins=edges)[0]
    counts = counts[counts > 0]
    gaps = np.abs(prob_true - prob_pred)
    expected_ece = float(np.sum(counts * gaps) / len(p))
    assert expected_ece > 0.02  # non-trivial miscalibration
    # 1e-12: the same sums in another order
    assert_allclose(output.metrics["ece"].value, expected_ece, rtol=0, atol=1e-12)
    assert_allclose(output.metrics["mce"].value, gaps.max(), rtol=0, atol=1e-12)


def test_ece_of_a_toy_example_is_an_exact_fraction():
    y = np.array([0, 1, 1, 1, 0, 0, 0, 1.0])
    p = np.array([0.2, 0.2, 0.8, 0.8, 0.2, 0.2, 0.8, 0.8])
    output = run_check("calibration", binary_data(y, p), {"bins": 2, "bootstrap": 0})
    # bin (0, 0.5]: 4 rows, mean 0.2, rate 1/4; bin (0.5, 1]: 4 rows, mean 0.8, rate 3/4 -> gaps 0.05 each
    assert_allclose(output.metrics["ece"].value, 0.05, rtol=0, atol=1e-15)
    assert_allclose(output.metrics["mce"].value, 0.05, rtol=0, atol=1e-15)


def test_murphys_identity_holds_exactly_for_binned_forecasts(seed):
    rng = np.random.default_rng(seed + 2)
    y, p = _scores(rng, 5000)
    binned = np.clip(np.floor(p * 10) / 10 + 0.05, 0, 1)  # every forecast in a bin is its centre
    output = run_check("calibration", binary_data(y, binned), {"bins": 10, "bootstrap": 0})
    m = {k: v.value for k, v in output.metrics.items()}
    assert m["brier_resolution"] > 0.01 and m["brier_reliability"] > 0  # non-trivial
    assert_allclose(m["brier_score"], brier_score_loss(y, binned), rtol=0, atol=1e-14)
    # 1e-14: sums of 5,000 squares in another order
    assert_allclose(m["brier_reliability"] - m["brier_resolution"] + m["brier_uncertainty"], m["brier_score"],
                    rtol=0, atol=1e-14)
    assert_allclose(m["brier_uncertainty"], y.mean() * (1 - y.mean()), rtol=0, atol=1e-15)


def test_continuous_forecasts_add_the_two_within_bin_terms(seed):
    rng = np.random.default_rng(seed + 3)
    y, p = _scores(rng, 5000)
    parts = brier_decomposition(BinnedCalibration.build(p, y, bins=5, strategy="uniform"))
    murphy = parts.reliability - parts.resolution + parts.uncertainty
    assert abs(parts.brier - murphy) > 1e-5  # the within-bin terms matter here
    # Stephenson, Coelho & Jolliffe (2008): BS = REL - RES + UNC + WBV - 2 WBC; 1e-14: rounding of sums
    assert_allclose(parts.brier, murphy + parts.within_bin_variance - 2 * parts.within_bin_covariance,
                    rtol=0, atol=1e-14)
    assert_allclose(parts.brier, brier_score_loss(y, p), rtol=0, atol=1e-14)


def test_a_calibrated_score_has_a_small_ece_whose_interval_covers_the_sampling_floor(seed):
    rng = np.random.default_rng(seed + 4)
    y, p = _scores(rng, 20000)
    output = run_check("calibration", binary_data(y, p), {"bins": 10, "bootstrap": 300})
    ece = output.metrics["ece"]
    # a calibrated score's ECE is only sampling noise: about sqrt(p(1-p)/n_b) per bin, ~0.01 here
    assert ece.value < 0.015
    assert ece.ci[0] <= ece.value <= ece.ci[1] and ece.level == 0.95


def test_the_noise_floor_is_the_mean_ece_of_calibrated_scores(seed):
    from auditkit.methods.calibration import ece_noise_floor

    rng = np.random.default_rng(seed + 7)
    p = np.repeat([0.1, 0.3, 0.5, 0.7], 60)  # four bins of 60 rows, a score each
    eces = []
    for _ in range(2000):
        y = (rng.random(len(p)) < p).astype(float)
        eces.append(BinnedCalibration.build(p, y, bins=4, strategy="uniform").errors(np.ones((1, len(p))))[0][0])
    floor = ece_noise_floor(BinnedCalibration.build(p, np.zeros(len(p)), bins=4, strategy="uniform"))
    # normal approximation of E|Binomial/n - p| at n = 60: within 5% of the simulated mean (sd of the mean ~1%)
    assert_allclose(np.mean(eces), floor, rtol=0.05)


def test_a_group_with_shifted_scores_is_found_miscalibrated_and_its_gap_measured(seed):
    rng = np.random.default_rng(seed + 5)
    n = 20000
    y, truth = _scores(rng, n)
    group = np.where(rng.random(n) < 0.3, "B", "A")
    scores = np.where(group == "B", np.clip(truth + 0.10, 0, 1), truth)  # B's risk over-stated by 0.10
    frame = pd.DataFrame({"x": np.zeros(n), "g": group})
    output = run_check("calibration", binary_data(y, scores, frame=frame, protected=["g"]),
                       {"bins": 10, "bootstrap": 200})
    a, b = output.metrics["ece[g=A]"], output.metrics["ece[g=B]"]
    assert a.value < 0.02
    # over-stated by 0.10 wherever the clip does not bite: the gap of every bin is about 0.10
    assert 0.08 < b.value < 0.11 and b.ci[0] > a.ci[1]
    assert_allclose(output.metrics["ece_difference[g]"].value, b.value - a.value, rtol=0, atol=1e-15)
    assert {r["group"] for r in output.tables["groups"]} == {"A", "B"}


def test_small_groups_get_no_figure_and_say_why():
    rng = np.random.default_rng(0)
    y, p = _scores(rng, 500)
    frame = pd.DataFrame({"x": np.zeros(500), "g": ["tiny"] * 10 + ["big"] * 490})
    output = run_check("calibration", binary_data(y, p, frame=frame, protected=["g"]),
                       {"bootstrap": 0, "min_group_size": 30})
    assert "ece[g=tiny]" not in output.metrics and "ece[g=big]" in output.metrics
    assert output.metrics["ece_difference[g]"].value is None
    assert any("tiny" in note and "min_group_size" in note for note in output.notes)


def test_multiclass_is_audited_on_the_top_label(seed):
    rng = np.random.default_rng(seed + 6)
    n, k = 3000, 3
    logits = rng.normal(0, 1.5, (n, k))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in proba]).astype(str)
    frame = pd.DataFrame({"x": np.zeros(n), "label": y}).rename_axis("row")
    data = AuditData(frame=frame, features=["x"], target="label", protected=[], task="multiclass", scores=proba,
                     decisions=np.array(["0", "1", "2"], dtype=object)[proba.argmax(axis=1)], y=y.astype(object),
                     score_kind="probability", adapter_spec=AdapterSpec(format="predictions", path=None),
                     classes=["0", "1", "2"])
    output = run_check("calibration", data, {"bootstrap": 0, "bins": 8})
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1).astype(str) == y).astype(float)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=8)
    assert_allclose([r["observed_rate"] for r in output.tables["bins"]], prob_true, rtol=0, atol=1e-12)
    assert "brier_score" not in output.metrics and output.metrics["ece"].value < 0.05
    assert any("top-label" in note for note in output.notes)


def test_regression_and_label_only_models_are_skipped_with_a_reason():
    n = 50
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "label": np.arange(n, dtype=float)}).rename_axis("row")
    data = AuditData(frame=frame, features=["x"], target="label", protected=[], task="regression",
                     scores=np.arange(n, dtype=float), decisions=None, y=np.arange(n, dtype=float),
                     score_kind="value", adapter_spec=AdapterSpec(format="predictions", path=None))
    assert "regression" in run_check("calibration", data).skipped
    y = np.arange(n) % 2
    labels = run_check("calibration", binary_data(y, y.astype(float), score_kind="label"))
    assert "probabilities" in labels.skipped
