"""`slice_performance`: a planted weak slice is found, a null dataset yields no significant
slice, and the statistics equal scipy / scikit-learn / closed forms."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.metrics import roc_auc_score

from check_support import binary_data, run_check

from auditkit.engine.worker import CheckTask, execute
from auditkit.methods.pvalue_adjust import benjamini_hochberg, holm
from auditkit.methods.slices import auc, proportion_test


def _planted(rng: np.random.Generator, n: int, *, weak: bool) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Decisions right 90% of the time, except in the slice `colour = red & size >= its 3rd quartile`
    (about 1/16 of the rows), where they are right half of the time."""
    frame = pd.DataFrame({"size": rng.uniform(0, 100, n), "colour": rng.choice(["red", "green", "blue", "grey"], n),
                          "weight": rng.normal(0, 1, n)})
    in_slice = (frame["colour"] == "red").to_numpy() & (frame["size"] >= np.quantile(frame["size"], 0.75)).to_numpy()
    right = rng.random(n) < np.where(in_slice & weak, 0.5, 0.9)
    y = (rng.random(n) < 0.4).astype(float)
    decision = np.where(right, y, 1 - y)
    scores = np.where(decision == 1, 0.75, 0.25)
    return y, scores, frame


def test_the_planted_weak_slice_is_discovered_first_and_is_significant(seed):
    rng = np.random.default_rng(seed)
    y, scores, frame = _planted(rng, 8000, weak=True)
    data = binary_data(y, scores, frame=frame, features=["size", "colour", "weight"])
    output = run_check("slice_performance", data, {"min_size": 50, "max_depth": 2})
    top = output.tables["slices"][0]
    assert top["source"] == "discovered"
    assert top["slice"].startswith("colour = red & size >= ")  # the planted conjunction, at depth 2
    assert top["significant"] and top["p_adjusted"] < 1e-10
    # its accuracy is 0.5 by construction; the rest's 0.9
    assert top["accuracy_ci"][0] < 0.5 < top["accuracy_ci"][1]
    assert_allclose(top["gap"], 0.4, atol=0.06)  # sampling noise on ~500 rows: sd 0.022
    assert output.metrics["worst_slice_gap"].value == top["gap"]
    tried = output.metrics["slices_tried"].value
    assert tried > 30 and f"{int(tried):,} slices tried" in " ".join(output.notes)


def test_without_a_weak_slice_no_slice_is_significant_after_holm(seed):
    rng = np.random.default_rng(seed + 1)
    y, scores, frame = _planted(rng, 8000, weak=False)
    data = binary_data(y, scores, frame=frame, features=["size", "colour", "weight"])
    output = run_check("slice_performance", data, {"min_size": 50})
    # Holm keeps the family-wise error at 5%: over ~100 slices tried, raw p < 0.05 would flag several
    assert output.metrics["significant_slices"].value == 0
    assert sum(r["p_value"] < 0.05 for r in output.tables["slices"]) >= 1  # uncorrected, some look "weak"


def test_a_declared_slice_is_measured_like_pandas_with_a_wilson_interval(seed):
    rng = np.random.default_rng(seed + 2)
    y, scores, frame = _planted(rng, 3000, weak=True)
    data = binary_data(y, scores, frame=frame, features=["size", "colour", "weight"])
    output = run_check("slice_performance", data, {"discover": False, "slices": [
        {"name": "red", "query": "colour == 'red'"}], "metric": "error_rate"})
    red = (frame["colour"] == "red").to_numpy()
    errors = (np.where(scores >= 0.5, 1.0, 0.0) != y)
    assert_allclose(output.metrics["slice[red]"].value, errors[red].mean(), rtol=0, atol=1e-15)
    assert_allclose(output.metrics["slice_gap[red]"].value, errors[red].mean() - errors[~red].mean(), rtol=0, atol=1e-15)
    k, m = int(errors[red].sum()), int(red.sum())
    z = stats.norm.ppf(0.975)
    centre = (k / m + z * z / (2 * m)) / (1 + z * z / m)
    half = z * np.sqrt(k / m * (1 - k / m) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    assert_allclose(output.metrics["slice[red]"].ci, (centre - half, centre + half), rtol=1e-12)  # Wilson (1927)
    assert output.metrics["slices_tried"].value == 1


def test_roc_auc_per_slice_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed + 3)
    y = (rng.random(2000) < 0.3).astype(float)
    scores = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, 2000), 0, 1).round(2)  # ties
    frame = pd.DataFrame({"g": rng.choice(["a", "b"], 2000)})
    output = run_check("slice_performance", binary_data(y, scores, frame=frame, features=["g"]),
                       {"metric": "roc_auc", "discover": False, "slices": [{"name": "a", "query": "g == 'a'"}],
                        "bootstrap": 100})
    a = (frame["g"] == "a").to_numpy()
    assert_allclose(output.metrics["slice[a]"].value, roc_auc_score(y[a], scores[a]), rtol=0, atol=1e-12)
    assert_allclose(auc(y, scores), roc_auc_score(y, scores), rtol=0, atol=1e-12)


def test_the_one_sided_proportion_test_is_half_the_pooled_chi_squared_test():
    k1, n1, k2, n2 = 70, 100, 850, 1000
    _, p_two_sided, _, _ = stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
    assert_allclose(proportion_test(k1, n1, k2, n2), p_two_sided / 2, rtol=1e-10)


def test_holm_and_benjamini_hochberg_equal_their_definitions():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    # Holm by hand: sorted 0.005, 0.01, 0.03, 0.04, 0.5 times 5, 4, 3, 2, 1 -> 0.025, 0.04, 0.09, 0.08->0.09, 0.5
    assert_allclose(holm(p), [0.04, 0.09, 0.09, 0.025, 0.5], rtol=1e-12)
    assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12)


def test_a_query_that_cannot_be_evaluated_is_named_by_its_key():
    data = binary_data(np.array([0, 1.0] * 50), np.full(100, 0.6))
    outcome = execute(CheckTask("c", "slice_performance", {"slices": [{"name": "s", "query": "nope > 1"}]}, 0, 60), data)
    assert outcome.output is None and "params.slices[0].query" in outcome.error
